-- The campaign client under load. One process, one client, one result line (see common.lua).
--   lua5.4 bench/client_bench.lua --base-url URL --org ORG [--cafile F] [--token T --api-key K]
--     --mode get|patch|batch|bulk|memory [--path P] [--concurrency N] [--batch-size N] [--batch-method M]
--     [--seconds S] [--max-requests N] [--http2 on|off] [--checkpoints 10000,100000] [--warmup N]
-- get/patch: sequential calls on one client (keep-alive); batch: client:batch of batch-size
-- PATCH requests at the given concurrency, repeated; bulk: workflow.bulk_update of batch-size
-- items (the path's record) at the given concurrency, repeated; memory: sequential GETs, printing peak RSS
-- at each checkpoint (rss_kb_<n>=...), the bytes per queued batch item and per transfer in flight.
-- --warmup N (batch mode): N untimed batches first, as bench/openresty's handler does with its
-- `warmup`, so that a row comparing the two compares steady states (connections, JIT traces).
local common = require "common"
local campaign = require "campaign"

local opts = common.parse_args(arg, {
  org = "bench", token = "bench-token", api_key = "bench-api-key", mode = "get",
  path = "profileAndServices/profile/@bench", concurrency = 16, batch_size = 1000,
  seconds = 3, http2 = "on", checkpoints = "10000,100000", batch_method = "PATCH", warmup = 0,
})

local client = campaign.new{
  org = opts.org, api_key = opts.api_key, token = opts.token, base_url = opts.base_url,
  cafile = opts.cafile, http2 = opts.http2 == "on", retries = 0,
}

local changes = { phone = "3301020304", firstName = "John" }

local function failed_results(results)
  local bad = 0
  for i = 1, #results do
    local r = results[i]
    -- a result is {status, body, err, attempts, headers} (docs/client.md)
    if type(r) ~= "table" or r.err ~= nil or not r.status or r.status >= 400 then bad = bad + 1 end
  end
  return bad
end

local function batch_requests(n)
  local requests = {}
  local body = opts.batch_method ~= "GET" and changes or nil
  for i = 1, n do requests[i] = { opts.batch_method, opts.path, body } end
  return requests
end

local modes = {}

function modes.get()
  return common.run_for(opts, function()
    local body = client:get(opts.path)
    return 1, body and 0 or 1
  end)
end

function modes.patch()
  return common.run_for(opts, function()
    local body = client:patch(opts.path, changes)
    return 1, body and 0 or 1
  end)
end

function modes.batch()
  local requests = batch_requests(opts.batch_size)
  for _ = 1, opts.warmup do client:batch(requests, { concurrency = opts.concurrency }) end
  return common.run_for(opts, function()
    local results = client:batch(requests, { concurrency = opts.concurrency })
    return #requests, failed_results(results)
  end)
end

function modes.bulk()
  local workflow = require "campaign.workflow"
  local resource, pkey = opts.path:match("^(.*)/([^/]+)$")
  local items = {}
  for i = 1, opts.batch_size do items[i] = { pkey = pkey, changes = changes } end
  return common.run_for(opts, function()
    local report = workflow.bulk_update(client, items,
      { concurrency = opts.concurrency, resource = resource })
    return report.total, report.failed
  end)
end

function modes.memory()
  local extra = {}
  local requests, failures = 0, 0
  local start = common.now()
  for checkpoint in opts.checkpoints:gmatch("%d+") do
    checkpoint = tonumber(checkpoint)
    while requests < checkpoint do
      if not client:get(opts.path) then failures = failures + 1 end
      requests = requests + 1
    end
    collectgarbage()
    extra[#extra + 1] = { "rss_kb_" .. checkpoint, common.proc_kb("VmHWM") }
  end
  local seconds = common.now() - start
  -- bytes per transfer in flight: 256 GETs at concurrency 1, then at 64 (a fresh client each,
  -- results dropped); the extra peak RSS over the 63 extra transfers in flight. Measured before
  -- the big batch below, whose peak would hide it (VmHWM only grows).
  local peaks = {}
  for _, concurrency in ipairs({ 1, 64 }) do
    local c = campaign.new{
      org = opts.org, api_key = opts.api_key, token = opts.token, base_url = opts.base_url,
      cafile = opts.cafile, http2 = opts.http2 == "on", retries = 0,
    }
    local gets = {}
    for i = 1, 256 do gets[i] = { "GET", opts.path } end
    collectgarbage()
    failures = failures + failed_results(c:batch(gets, { concurrency = concurrency }))
    peaks[concurrency] = common.proc_kb("VmHWM")
    c:close()
    collectgarbage()
  end
  extra[#extra + 1] = { "bytes_per_inflight", math.floor((peaks[64] - peaks[1]) * 1024 / 63) }
  -- bytes per queued batch item: peak RSS growth over one batch of batch-size PATCH requests
  -- (the request tables, the in-flight transfers and the results all held at once), averaged.
  collectgarbage()
  do
    local before = common.proc_kb("VmHWM")
    local batch = batch_requests(opts.batch_size)
    local results = client:batch(batch, { concurrency = opts.concurrency })
    failures = failures + failed_results(results)
    local after = common.proc_kb("VmHWM")
    extra[#extra + 1] = { "bytes_per_batch_item", math.floor((after - before) * 1024 / #batch) }
  end
  return requests, failures, seconds, extra
end

if not modes[opts.mode] then error("unknown --mode " .. tostring(opts.mode), 0) end
local requests, failures, seconds, extra = modes[opts.mode]()
print(common.result_line(requests, failures, seconds, extra))
os.exit(failures == 0)
