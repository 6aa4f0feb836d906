-- Shared pieces of the Lua benchmark drivers: argument parsing, a wall clock, peak RSS, and the
-- one result line every driver prints (the format raw_curl prints too):
--   requests=N failures=N seconds=S rps=R [key=value...]
local socket = require "socket"

local common = {}

common.now = socket.gettime

-- Parses `--name value` pairs (and bare `--flag`s listed in flags) into a table keyed by name
-- with dashes turned into underscores.
function common.parse_args(argv, defaults, flags)
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  local i = 1
  while i <= #argv do
    local name = argv[i]:match("^%-%-(.+)$")
    if not name then error("unexpected argument " .. argv[i], 0) end
    local key = name:gsub("-", "_")
    if flags and flags[key] then
      opts[key] = true
      i = i + 1
    else
      if argv[i + 1] == nil then error("missing value for --" .. name, 0) end
      local value = argv[i + 1]
      opts[key] = tonumber(value) or value
      i = i + 2
    end
  end
  return opts
end

-- Kibibytes from /proc/self/status: "VmHWM" (peak RSS) or "VmRSS" (current).
function common.proc_kb(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+)"))
end

function common.result_line(requests, failures, seconds, extra)
  local parts = {
    ("requests=%d failures=%d seconds=%.3f rps=%.1f"):format(requests, failures, seconds,
      seconds > 0 and requests / seconds or 0),
  }
  for _, kv in ipairs(extra or {}) do parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]) end
  return table.concat(parts, " ")
end

-- Runs step() until `seconds` have passed or `max_requests` calls were made; step returns the
-- number of requests it made and how many of them failed.
function common.run_for(opts, step)
  local requests, failures = 0, 0
  local start = common.now()
  local deadline = start + opts.seconds
  local max = opts.max_requests or math.huge
  repeat
    local n, bad = step()
    requests = requests + n
    failures = failures + bad
  until common.now() >= deadline or requests >= max
  return requests, failures, common.now() - start
end

return common
