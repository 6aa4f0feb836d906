-- GET /bench?seconds=S&concurrency=C&transport=T[&warmup=N]: campaign.ngx batches of 1000 GETs
-- at concurrency C until S seconds have passed, after N untimed ones (default 0; the C client's
-- --warmup); answers `requests=N failures=N seconds=S rps=R`
-- (bench/common.lua's line). T: "capture" (ngx.location.capture through the example's internal
-- proxy location and its keep-alive upstream; the default) or "cosocket" (the built-in
-- cosocket transport, straight to the server, pool of C connections).
-- luacheck: read globals ngx
local cngx = require "campaign.ngx"

local M = {}

function M.handle()
  local args = ngx.req.get_uri_args()
  local seconds = tonumber(args.seconds) or 2
  local concurrency = tonumber(args.concurrency) or 16
  local options = {
    base_url = os.getenv("BENCH_BASE_URL"), org = os.getenv("BENCH_ORG"),
    api_key = os.getenv("BENCH_API_KEY"), token = os.getenv("BENCH_TOKEN"), retries = 0,
  }
  local transport = args.transport or "capture"
  if transport == "capture" then
    options.upstream = "campaign_bench"
  elseif transport == "cosocket" then
    options.transport, options.pool_size = "cosocket", concurrency
  else
    return ngx.say("bad transport ", transport)
  end
  local client = cngx.new(options)
  local path = os.getenv("BENCH_PATH")
  local batch = {}
  for i = 1, 1000 do batch[i] = { "GET", path } end
  for _ = 1, tonumber(args.warmup) or 0 do client:batch(batch, { concurrency = concurrency }) end
  local requests, failures = 0, 0
  ngx.update_time()
  local start = ngx.now()
  repeat
    local results = client:batch(batch, { concurrency = concurrency })
    for i = 1, #results do
      local r = results[i]
      if r.err ~= nil or not r.status or r.status >= 400 then failures = failures + 1 end
    end
    requests = requests + #results
    ngx.update_time()
  until ngx.now() - start >= seconds
  local elapsed = ngx.now() - start
  ngx.say(("requests=%d failures=%d seconds=%.3f rps=%.1f"):format(requests, failures, elapsed,
    requests / elapsed))
end

return M
