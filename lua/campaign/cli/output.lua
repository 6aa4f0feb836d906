--- Output helpers of the `campaign` CLI: secret redaction, durations, progress rendering.
-- Pure functions: the caller decides where the text goes.
local output = {}

-- Secrets shorter than this are not searched for: a 3-character "secret" would blank out
-- ordinary words in a response body. Real API keys, client secrets and tokens are far longer.
local MIN_SECRET_LENGTH = 6

-- A run of at least this many characters that a secret starts with is that secret cut short
-- (a message cut inside it, an excerpt's edge): hidden too.
local SECRET_PREFIX = 16

-- text with every occurrence of secret, and every run of SECRET_PREFIX+ characters that starts
-- it, replaced by "***". Plain search (no patterns).
local function redact_one(text, secret)
  local head = #secret > SECRET_PREFIX and secret:sub(1, SECRET_PREFIX) or secret
  local out, start = {}, 1
  while true do
    local i = text:find(head, start, true)
    if not i then break end
    local k = #head
    while k < #secret and text:byte(i + k) == secret:byte(k + 1) do k = k + 1 end
    out[#out + 1] = text:sub(start, i - 1)
    out[#out + 1] = "***"
    start = i + k
  end
  if start == 1 then return text end
  out[#out + 1] = text:sub(start)
  return table.concat(out)
end

--- Returns redact(text) -> text with every occurrence of each secret, and every run of 16 or
-- more characters a secret starts with (what a cut left of it), replaced by "***", and
-- add(secret) for a secret learnt later (a token fetched from IMS). Plain search (no
-- patterns), longest secret first so that a token containing the API key is hidden whole.
function output.redactor(secrets)
  local list = {}
  local function add(secret)
    if type(secret) ~= "string" or #secret < MIN_SECRET_LENGTH then return end
    for _, known in ipairs(list) do
      if known == secret then return end
    end
    list[#list + 1] = secret
    table.sort(list, function(a, b) return #a > #b end)
  end
  for _, secret in pairs(secrets) do add(secret) end
  return function(text)
    text = tostring(text)
    for _, secret in ipairs(list) do text = redact_one(text, secret) end
    return text
  end, add
end

--- "0.4s", "12s", "3m05s", "2h01m".
function output.duration(seconds)
  if seconds ~= seconds or seconds == math.huge then return "?" end
  if seconds < 10 then return string.format("%.1fs", seconds) end
  seconds = math.floor(seconds + 0.5)
  if seconds < 60 then return seconds .. "s" end
  if seconds < 3600 then return string.format("%dm%02ds", math.floor(seconds / 60), seconds % 60) end
  return string.format("%dh%02dm", math.floor(seconds / 3600), math.floor((seconds % 3600) / 60))
end

local function rate_and_eta(state)
  local rate = state.elapsed > 0 and state.done / state.elapsed or 0
  local eta
  if state.total and rate > 0 then eta = (state.total - state.done) / rate end
  return rate, eta
end

-- ", 3 unknown" when some items have an unknown outcome, else nothing.
local function unknown_part(state, sep)
  if state.unknown and state.unknown > 0 then return sep .. state.unknown .. " unknown" end
  return ""
end

-- "  limit 16" (sep first) when the concurrency limit is known (bulk-update), else nothing.
local function limit_part(state, sep)
  if state.limit then return sep .. "limit " .. state.limit end
  return ""
end

--- The terminal progress bar (one line, redrawn with "\r"):
-- `[#########-----------]  450/1000  45%  312/s  2 failed  limit 16  ETA 1.8s`
function output.progress_bar(state, width)
  width = width or 24
  local rate, eta = rate_and_eta(state)
  local bar
  if state.total and state.total > 0 then
    local filled = math.floor(width * state.done / state.total)
    bar = "[" .. string.rep("#", filled) .. string.rep("-", width - filled) .. "]"
    return string.format("%s %d/%d %3d%%  %.0f/s  %d failed%s%s  ETA %s", bar, state.done, state.total,
      math.floor(100 * state.done / state.total), rate, state.failed, unknown_part(state, "  "),
      limit_part(state, "  "), eta and output.duration(eta) or "?")
  end
  return string.format("%d done  %.0f/s  %d failed%s%s", state.done, rate, state.failed,
    unknown_part(state, "  "), limit_part(state, "  "))
end

--- The plain progress line written when stderr is not a terminal (a log file, CI):
-- `progress: 450/1000 done, 2 failed, 312/s, limit 16, ETA 1.8s`
function output.progress_line(state)
  local rate, eta = rate_and_eta(state)
  if state.total then
    return string.format("progress: %d/%d done, %d failed%s, %.0f/s%s, ETA %s", state.done, state.total,
      state.failed, unknown_part(state, ", "), rate, limit_part(state, ", "),
      eta and output.duration(eta) or "?")
  end
  return string.format("progress: %d done, %d failed%s, %.0f/s%s", state.done, state.failed,
    unknown_part(state, ", "), rate, limit_part(state, ", "))
end

--- A progress reporter. `opts`: write(text) (stderr), tty (bool), clock() -> seconds,
-- interval (seconds between plain lines; the bar redraws at most 10 times a second), total.
-- Returns update(done, failed[, unknown[, limit]]) and finish(done, failed[, unknown[, limit]])
-- (limit: the concurrency limit now, shown when given).
function output.progress(opts)
  local clock, write, total = opts.clock, opts.write, opts.total
  local start = clock()
  local interval = opts.tty and 0.1 or (opts.interval or 2)
  local last_shown = start
  -- Reading the clock costs a little; for huge runs look at it only every `stride` items.
  local stride = total and math.max(1, math.floor(total / 2000)) or 1
  local last_width = 0
  local shown_done, shown_failed, shown_unknown
  local function show(done, failed, unknown, now, limit)
    shown_done, shown_failed, shown_unknown = done, failed, unknown
    local state = {done = done, total = total, failed = failed, unknown = unknown, elapsed = now - start,
      limit = limit}
    if opts.tty then
      local text = output.progress_bar(state)
      local pad = last_width > #text and string.rep(" ", last_width - #text) or ""
      last_width = #text
      write("\r" .. text .. pad)
    else
      write(output.progress_line(state) .. "\n")
    end
  end
  local function update(done, failed, unknown, limit)
    if done % stride ~= 0 or (done == shown_done and failed == shown_failed and unknown == shown_unknown) then
      return
    end
    local now = clock()
    if now - last_shown >= interval then
      last_shown = now
      show(done, failed, unknown, now, limit)
    end
  end
  local function finish(done, failed, unknown, limit)
    -- The final state, unless the last line already showed it.
    if done ~= shown_done or failed ~= shown_failed or unknown ~= shown_unknown then
      show(done, failed, unknown, clock(), limit)
    end
    if opts.tty then write("\n") end
  end
  return update, finish
end

-- Terminal safety ------------------------------------------------------------------------------

-- The length of the UTF-8 sequence at `i` when it is well formed (no overlong form, no
-- surrogate, at most U+10FFFF), and its code point; nil for a byte that starts none.
local function utf8_sequence(text, i)
  local b = text:byte(i)
  local len, min, cp
  if b >= 0xC2 and b <= 0xDF then len, min, cp = 2, 0x80, b - 0xC0
  elseif b >= 0xE0 and b <= 0xEF then len, min, cp = 3, 0x800, b - 0xE0
  elseif b >= 0xF0 and b <= 0xF4 then len, min, cp = 4, 0x10000, b - 0xF0
  else return nil end
  for k = 1, len - 1 do
    local c = text:byte(i + k)
    if not c or c < 0x80 or c > 0xBF then return nil end
    cp = cp * 64 + (c - 0x80)
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  return len, cp
end

--- Text from a server made safe for a terminal: C0 control characters (but those in `keep`,
-- e.g. "\n"), DEL and the C1 controls U+0080-U+009F become visible escapes (ESC as `\x` 1b,
-- DEL as `\x` 7f, CSI as `\u009b`), and a byte that is not part of valid UTF-8 becomes
-- `\xNN` (a lone 0x9b is CSI on a Latin-1 terminal). Printable ASCII and valid UTF-8 pass
-- unchanged. The result is valid UTF-8, so it can also go into JSON.
function output.escape(text, keep)
  text = tostring(text)
  if not text:find("[%c\127-\255]") then return text end
  local out, i, n = {}, 1, #text
  while i <= n do
    local s, e = text:find("^[\32-\126]+", i)
    if s then
      out[#out + 1] = text:sub(s, e)
      i = e + 1
    else
      local b = text:byte(i)
      if b < 0x80 then
        local char = string.char(b)
        out[#out + 1] = (keep and keep:find(char, 1, true)) and char or string.format("\\x%02x", b)
        i = i + 1
      else
        local len, cp = utf8_sequence(text, i)
        if not len then
          out[#out + 1] = string.format("\\x%02x", b)
          i = i + 1
        else
          out[#out + 1] = cp <= 0x9F and string.format("\\u%04x", cp) or text:sub(i, i + len - 1)
          i = i + len
        end
      end
    end
  end
  return table.concat(out)
end

--- `s` with every byte that is not part of valid UTF-8 written as `\xNN`; everything else
-- (control characters included) unchanged. For strings that must be encoded as JSON.
function output.to_utf8(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = s:byte(i)
    if b < 0x80 then
      local e = (s:find("[\128-\255]", i) or n + 1) - 1
      out[#out + 1] = s:sub(i, e)
      i = e + 1
    else
      local len = utf8_sequence(s, i)
      if len then
        out[#out + 1] = s:sub(i, i + len - 1)
        i = i + len
      else
        out[#out + 1] = string.format("\\x%02x", b)
        i = i + 1
      end
    end
  end
  return table.concat(out)
end

--- JSON text (from campaign.encode) with DEL and the C1 controls, which JSON allows raw and
-- the encoder leaves as they are, written as \u escapes: the same JSON value, terminal-safe.
-- Only string contents can hold such bytes, so a textual replacement is exact.
function output.json_safe(json)
  if not json:find("[\127\194]") then return json end
  return (json:gsub("\127", "\\u007f"):gsub("\194([\128-\159])", function(c)
    return string.format("\\u%04x", c:byte())
  end))
end

return output
