-- bench/pacing_bench.lua: the accuracy of the client's `rate` (docs/benchmarks.md "Pacing").
-- One batch of GETs at --rate (default 50) and --burst (default 1), concurrency 8, a little
-- longer than --seconds (default 60); the start time of every attempt comes from on_event
-- "request". Prints `sent=` (starts within the first --seconds after the first start),
-- `expected=` (rate * seconds), `max1s=` (most starts in any 1 s window) and `rps=`.
--   lua bench/pacing_bench.lua --base-url URL --org ORG --path PATH --token T --api-key K
--                              [--cafile F] [--rate 50] [--burst 1] [--seconds 60]
local campaign = require "campaign"

local opts = {}
local i = 1
while arg[i] do
  opts[arg[i]:gsub("^%-%-", ""):gsub("%-", "_")] = arg[i + 1]
  i = i + 2
end
local rate = tonumber(opts.rate or "50")
local burst = tonumber(opts.burst or "1")
local seconds = tonumber(opts.seconds or "60")

local starts = {}
local client = campaign.new{
  base_url = opts.base_url, org = opts.org, token = opts.token, api_key = opts.api_key,
  cafile = opts.cafile, rate = rate, burst = burst,
  on_event = function(ev)
    if ev.type == "request" then starts[#starts + 1] = campaign.gettime() end
  end,
}
local n = math.floor(rate * (seconds + 2)) + burst
local reqs = {}
for k = 1, n do reqs[k] = {"GET", opts.path} end
local results = client:batch(reqs, {concurrency = 8})
for k = 1, n do
  if not results[k].status or results[k].status >= 300 then
    io.stderr:write("request ", k, " failed: ", tostring(results[k].err), "\n")
    os.exit(1)
  end
end
table.sort(starts)
local sent, t0 = 0, starts[1]
for _, s in ipairs(starts) do if s < t0 + seconds then sent = sent + 1 end end
local best, j = 0, 1
for k = 1, #starts do
  while starts[k] - starts[j] >= 1 do j = j + 1 end
  if k - j + 1 > best then best = k - j + 1 end
end
print(("rps=%.3f sent=%d expected=%d max1s=%d"):format(sent / seconds, sent,
  math.floor(rate * seconds), best))
