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

--- The terminal progress bar (one line, redrawn with "\r"):
-- `[#########-----------]  450/1000  45%  312/s  2 failed  ETA 1.8s`
function output.progress_bar(state, width)
  width = width or 24
  local rate, eta = rate_and_eta(state)
  local bar
  if state.total and state.total > 0 then
    local filled = math.floor(width * state.done / state.total)
    bar = "[" .. string.rep("#", filled) .. string.rep("-", width - filled) .. "]"
    return string.format("%s %d/%d %3d%%  %.0f/s  %d failed  ETA %s", bar, state.done, state.total,
      math.floor(100 * state.done / state.total), rate, state.failed, eta and output.duration(eta) or "?")
  end
  return string.format("%d done  %.0f/s  %d failed", state.done, rate, state.failed)
end

--- The plain progress line written when stderr is not a terminal (a log file, CI):
-- `progress: 450/1000 done, 2 failed, 312/s, ETA 1.8s`
function output.progress_line(state)
  local rate, eta = rate_and_eta(state)
  if state.total then
    return string.format("progress: %d/%d done, %d failed, %.0f/s, ETA %s", state.done, state.total,
      state.failed, rate, eta and output.duration(eta) or "?")
  end
  return string.format("progress: %d done, %d failed, %.0f/s", state.done, state.failed, rate)
end

--- A progress reporter. `opts`: write(text) (stderr), tty (bool), clock() -> seconds,
-- interval (seconds between plain lines; the bar redraws at most 10 times a second), total.
-- Returns update(done, failed) and finish(done, failed).
function output.progress(opts)
  local clock, write, total = opts.clock, opts.write, opts.total
  local start = clock()
  local interval = opts.tty and 0.1 or (opts.interval or 2)
  local last_shown = start
  -- Reading the clock costs a little; for huge runs look at it only every `stride` items.
  local stride = total and math.max(1, math.floor(total / 2000)) or 1
  local last_width = 0
  local shown_done, shown_failed
  local function show(done, failed, now)
    shown_done, shown_failed = done, failed
    local state = {done = done, total = total, failed = failed, elapsed = now - start}
    if opts.tty then
      local text = output.progress_bar(state)
      local pad = last_width > #text and string.rep(" ", last_width - #text) or ""
      last_width = #text
      write("\r" .. text .. pad)
    else
      write(output.progress_line(state) .. "\n")
    end
  end
  local function update(done, failed)
    if done % stride ~= 0 or (done == shown_done and failed == shown_failed) then return end
    local now = clock()
    if now - last_shown >= interval then
      last_shown = now
      show(done, failed, now)
    end
  end
  local function finish(done, failed)
    -- The final state, unless the last line already showed it.
    if done ~= shown_done or failed ~= shown_failed then show(done, failed, clock()) end
    if opts.tty then write("\n") end
  end
  return update, finish
end

return output
