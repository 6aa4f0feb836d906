-- bench/bulk_bench.lua: workflow.bulk_update against the emulator's load model (docs/benchmarks.md
-- "Bulk jobs"). One measurement per process, one result line (bench/common.lua's format):
--   lua5.4 bench/bulk_bench.lua --base-url URL --org ORG --token T --api-key K --mode MODE ...
-- Modes:
--   bound  --concurrency C --items N [--latency 50 --jitter 250 --seed 7]: PATCH latency uniform
--          in [latency, latency + jitter) (seeded), N items over distinct PKeys; prints the time,
--          the mean latency the emulator applied (GET /_emulator/calls: delay_ms / delayed),
--          bound = C / mean latency, rps and ratio = rps / bound.
--   fixed  --concurrency C --items N [--latency 20 --capacity 8]: the capacity mode (latency x
--          max(1, inflight / capacity)); prints the time.
--   auto   the same with concurrency = "auto"; prints `unavailable=1` (exit 0) when the client
--          refuses it (tried on an empty item list: nothing is sent).
--   rss    --file F --lines N --concurrency 64 --campaign bin/campaign: writes F (N NDJSON rows
--          cycling over the emulator's profiles), runs `campaign bulk-update F` under
--          /usr/bin/time and prints the client process's peak RSS (rss_kb) and its wall time.
-- Every mode checks afterwards that the emulator's records equal the input (the last row of
-- each PKey wins), that every item was reported exactly once and applied, and that the
-- emulator saw exactly one PATCH per item; any loss fails the run (exit 1). The load model is
-- switched off again at the end, whatever happened.
local common = require "common"
local campaign = require "campaign"
local workflow = require "campaign.workflow"

local opts = common.parse_args(arg, {
  org = "bench", token = "bench-token", api_key = "bench-api-key", mode = "bound",
  concurrency = 16, items = 2000, latency = 50, jitter = 250, seed = 7, capacity = 8,
  lines = 1000000, campaign = "bin/campaign", timeout = 600,
})

-- The admin API through the curl command (the client only speaks to /<org>/campaign/).
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function admin(method, route, body)
  local url = opts.base_url .. "/_emulator/" .. route
  local cmd = "curl -sS --max-time 60 -X " .. method .. " " .. q(url)
  if opts.cafile then cmd = cmd .. " --cacert " .. q(opts.cafile) end
  if body then
    cmd = cmd .. " -H 'Content-Type: application/json' --data-binary " .. q(campaign.encode(body))
  end
  local p = io.popen(cmd)
  local text = p:read("a")
  p:close()
  local ok, decoded = pcall(campaign.decode, text)
  if not ok or type(decoded) ~= "table" then
    error("admin " .. method .. " " .. route .. ": " .. text:sub(1, 200), 0)
  end
  return decoded
end

local function fail(msg)
  pcall(admin, "DELETE", "load")
  io.stderr:write("bulk_bench: ", msg, "\n")
  os.exit(1)
end

-- The emulator's profile PKeys, in a stable order.
local function pkeys()
  local list = admin("GET", "records/profile")
  local keys = {}
  for _, rec in ipairs(list.content or list) do keys[#keys + 1] = rec.PKey end
  table.sort(keys)
  if #keys == 0 then fail("the emulator has no profiles") end
  return keys
end

local keys = pkeys()
-- A tag of this run: the stored values must come from this run, not from an earlier one.
local tag = ("%d%04d"):format(os.time(), math.random(0, 9999))
local function value_of(i) return "b" .. tag .. "-" .. i end

-- Each PKey's last value (the last row of a PKey wins) against the stored records.
local function check_records(n)
  local expected, count = {}, 0
  for i = 1, n do
    local k = keys[(i - 1) % #keys + 1]
    if not expected[k] then count = count + 1 end
    expected[k] = value_of(i)
  end
  local list = admin("GET", "records/profile")
  local bad = 0
  for _, rec in ipairs(list.content or list) do
    local want = expected[rec.PKey]
    if want then
      if rec.firstName ~= want then bad = bad + 1 end
      expected[rec.PKey] = nil
      count = count - 1
    end
  end
  if bad > 0 or count ~= 0 then
    fail(("records differ from the input: %d wrong, %d missing"):format(bad, count))
  end
end

local function new_client()
  return campaign.new{
    org = opts.org, api_key = opts.api_key, token = opts.token, base_url = opts.base_url,
    cafile = opts.cafile, retries = 0, timeout = 60,
  }
end

local function items(n)
  local list = {}
  for i = 1, n do list[i] = { pkey = keys[(i - 1) % #keys + 1], changes = { firstName = value_of(i) } } end
  return list
end

-- One bulk_update run; fails unless every item was reported once and applied.
local function run_bulk(concurrency, n)
  local client = new_client()
  local list = items(n)
  local seen, twice = {}, 0
  local start = common.now()
  local report, err = workflow.bulk_update(client, list, {
    concurrency = concurrency, resource = "profileAndServices/profile",
    on_item = function(i, outcome)
      if seen[i] then twice = twice + 1 end
      seen[i] = outcome
    end,
  })
  local seconds = common.now() - start
  if not report then fail("bulk_update: " .. tostring(err)) end
  local lost = 0
  for i = 1, n do if seen[i] ~= "applied" then lost = lost + 1 end end
  if report.total ~= n or report.ok ~= n or lost > 0 or twice > 0 then
    local first = next(report.errors)
    fail(("items lost: total %d ok %d failed %d unknown %d, %d not applied, %d reported twice%s"):format(
      report.total, report.ok, report.failed, report.unknown, lost, twice,
      first and (": " .. tostring(report.errors[first])) or ""))
  end
  client:close()
  return seconds
end

local function check_calls(n)
  local calls = admin("GET", "calls")
  if calls.delayed ~= n then
    fail(("the emulator delayed %s PATCHes for %d items (a retry or a lost request)"):format(
      tostring(calls.delayed), n))
  end
  return calls
end

local modes = {}

function modes.bound()
  local n, c = opts.items, opts.concurrency
  admin("DELETE", "load")
  admin("POST", "load", { latency_ms = opts.latency, jitter_ms = opts.jitter, seed = opts.seed,
    methods = { "PATCH" } })
  admin("DELETE", "calls")
  local seconds = run_bulk(c, n)
  local calls = check_calls(n)
  admin("DELETE", "load")
  check_records(n)
  local mean_ms = calls.delay_ms / calls.delayed
  local bound = c / (mean_ms / 1000)
  local rps = n / seconds
  print(common.result_line(n, 0, seconds, {
    { "mean_ms", ("%.2f"):format(mean_ms) }, { "bound", ("%.1f"):format(bound) },
    { "ratio", ("%.4f"):format(rps / bound) }, { "peak_inflight", calls.peak_inflight } }))
end

local function capacity_run(concurrency)
  local n = opts.items
  admin("DELETE", "load")
  admin("POST", "load", { latency_ms = opts.latency, capacity = opts.capacity, methods = { "PATCH" } })
  admin("DELETE", "calls")
  local seconds = run_bulk(concurrency, n)
  local calls = check_calls(n)
  admin("DELETE", "load")
  check_records(n)
  print(common.result_line(n, 0, seconds, {
    { "mean_ms", ("%.2f"):format(calls.delay_ms / calls.delayed) },
    { "peak_inflight", calls.peak_inflight } }))
end

function modes.fixed() capacity_run(opts.concurrency) end

function modes.auto()
  -- An empty list: the options are checked (a misuse raises) and nothing is sent.
  local ok, err = pcall(workflow.bulk_update, new_client(), {}, { concurrency = "auto" })
  if not ok then
    io.stderr:write("bulk_bench: concurrency = \"auto\" refused by this client: ", tostring(err), "\n")
    print("requests=0 failures=0 seconds=0 rps=0 unavailable=1")
    return
  end
  capacity_run("auto")
end

function modes.rss()
  local file, n, c = opts.file, opts.lines, opts.concurrency
  if not file then fail("--file is needed") end
  local f = assert(io.open(file, "w"))
  local buf = {}
  for i = 1, n do
    buf[#buf + 1] = ('{"PKey":"%s","firstName":"%s"}\n'):format(keys[(i - 1) % #keys + 1], value_of(i))
    if #buf == 10000 then f:write(table.concat(buf)); buf = {} end
  end
  f:write(table.concat(buf))
  f:close()
  admin("DELETE", "load")
  admin("DELETE", "calls")
  local report = file .. ".report"
  local time_out = file .. ".time"
  local env = ("CAMPAIGN_BASE_URL=%s CAMPAIGN_ORG=%s CAMPAIGN_API_KEY=%s CAMPAIGN_ACCESS_TOKEN=%s"):format(
    q(opts.base_url), q(opts.org), q(opts.api_key), q(opts.token))
  local cmd = ("%s timeout %d /usr/bin/time -o %s -f 'rss_kb=%%M elapsed=%%e' %s bulk-update %s "
    .. "--concurrency %d --report %s --no-progress"):format(env, opts.timeout, q(time_out),
    q(opts.campaign), q(file), c, q(report))
  local start = common.now()
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  local seconds = common.now() - start
  local tf = io.open(time_out)
  local timing = tf and tf:read("a") or ""
  if tf then tf:close() end
  local rss_kb = tonumber(timing:match("rss_kb=(%d+)"))
  if not ok or not rss_kb then fail("campaign bulk-update failed: " .. out:sub(1, 500) .. timing) end
  -- the report: one line per input line, each applied, none twice
  local seen, count, bad = {}, 0, 0
  for line in io.lines(report) do
    local no = tonumber(line:match('"line":(%d+)'))
    if not no or seen[no] or not line:find('"ok":true', 1, true) then bad = bad + 1 end
    if no then seen[no] = true end
    count = count + 1
  end
  if count ~= n or bad > 0 then
    fail(("report: %d lines for %d items, %d bad or repeated"):format(count, n, bad))
  end
  local calls = admin("GET", "calls")
  if calls.calls ~= n then fail(("the emulator counted %d calls for %d lines"):format(calls.calls, n)) end
  check_records(n)
  os.remove(report)
  os.remove(time_out)
  print(common.result_line(n, 0, seconds, { { "rss_kb", rss_kb } }))
end

if not modes[opts.mode] then error("unknown --mode " .. tostring(opts.mode), 0) end
local ok, err = pcall(modes[opts.mode])
if not ok then fail(tostring(err)) end
