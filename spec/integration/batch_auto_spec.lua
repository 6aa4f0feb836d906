-- concurrency = "auto" (issue 13, item 3) against the emulator's load model: a gateway that
-- answers 429 above N requests in flight, and pacing in front of the limit.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

local PATH = "profileAndServices/profile"
-- Under valgrind the client's own work per answer is tens of times slower: at 40 ms a batch of
-- 24 in flight then waits on its own handling, a latency rise the limiter rightly answers by
-- not growing. A server latency 10 times longer keeps "the latency holds" true there.
local LATENCY_SCALE = require("child_lua").memcheck == "valgrind" and 10 or 1

describe("client:batch with concurrency = \"auto\"", function()
  local emu

  local function admin(method, path, body)
    local status, decoded = emu:call(method, "/_emulator/" .. path, body, { auth = false })
    assert(status == 200, method .. " " .. path .. " -> " .. tostring(status))
    return decoded
  end

  setup(function()
    emu = emulator.shared()
    emu:clear_faults()
    emu:reset()
  end)
  teardown(function()
    admin("DELETE", "load")
    emu:reset()
  end)
  before_each(function()
    admin("DELETE", "load")
    admin("DELETE", "calls")
  end)

  local function gets(n)
    local k = 0
    return function()
      k = k + 1
      if k > n then return nil end
      return { "GET", PATH, nil, { query = { _lineCount = 1, k = k } } }
    end
  end

  local function run(client, n, opts)
    local limits, failed = {}, 0
    opts.on_result = function(_, result, limit)
      limits[#limits + 1] = limit
      if result.err then failed = failed + 1 end
    end
    local summary = client:batch(gets(n), opts)
    local calls = admin("GET", "calls")
    admin("DELETE", "calls")
    return summary, limits, calls, failed
  end

  it("backs off under a gateway's 429s: fewer refused than a fixed 32, nothing lost", function()
    admin("POST", "load", { latency_ms = 20, limit_inflight = 6 })
    local client = campaign.new(emu:client_options { retries = 8, retry_base = 0.02, retry_max = 0.2 })
    local fixed = select(3, run(client, 200, { concurrency = 32 }))
    local summary, limits, auto = run(client, 200, { concurrency = "auto", concurrency_max = 32 })
    client:close()
    assert.are.same({ count = 200, ok = 200, failed = 0 }, summary)
    for _, l in ipairs(limits) do assert.is_true(l >= 1 and l <= 32) end
    assert.is_true(auto.limited < fixed.limited,
      ("429s: auto %d, fixed 32 %d"):format(auto.limited, fixed.limited))
  end)

  it("grows while the latency holds", function()
    admin("POST", "load", { latency_ms = 40 * LATENCY_SCALE })
    local client = campaign.new(emu:client_options {})
    local summary, limits = run(client, 300, { concurrency = "auto", concurrency_max = 24 })
    client:close()
    assert.are.same({ 300, 300 }, { summary.count, summary.ok })
    assert.are.equal(4, limits[1])          -- the documented start value
    assert.are.equal(24, limits[#limits])   -- up to its bound
  end)

  it("stays under rate: a limit held back by pacing does not grow", function()
    admin("POST", "load", { latency_ms = 20 })
    local client = campaign.new(emu:client_options { rate = 40 })
    local summary, limits = run(client, 60, { concurrency = "auto" })
    client:close()
    assert.are.same({ 60, 60 }, { summary.count, summary.ok })
    local most = 0
    for _, l in ipairs(limits) do most = math.max(most, l) end
    assert.is_true(most < 8, "grew to " .. most)   -- unpaced, it reaches 64 in a few round trips
  end)

  it("answers misuse with clear errors", function()
    local client = campaign.new(emu:client_options {})
    assert.has_error(function() client:batch({}, { concurrency = "fast" }) end,
      "campaign.batch: option 'concurrency' must be an integer from 1 to 256, or \"auto\"")
    assert.has_error(function() client:batch({}, { concurrency = 4, concurrency_max = 8 }) end,
      "campaign.batch: option 'concurrency_max' needs concurrency = \"auto\"")
    assert.has_error(function() client:batch({}, { concurrency = "auto", concurrency_max = 300 }) end,
      "campaign.batch: option 'concurrency_max' must be an integer from 1 to 256")
    assert.has_error(function()
      client:batch({}, { concurrency = "auto", concurrency_max = 4, concurrency_start = 8 })
    end, "campaign.batch: option 'concurrency_start' (8) must not exceed 'concurrency_max' (4)")
    client:close()
  end)

  it("bulk_update takes \"auto\"; on_progress gets the limit, the rate and an ETA", function()
    local client = campaign.new(emu:client_options {})
    local listing = assert(client:get(PATH, { query = { _lineCount = 30 } }))
    local items = {}
    for i, p in ipairs(listing.content) do
      items[i] = { pkey = p.PKey, changes = { lastName = "auto" .. i } }
    end
    local infos = {}
    local report = workflow.bulk_update(client, items, { concurrency = "auto", concurrency_max = 16,
      on_progress = function(done, total, failed, unknown, info)
        infos[#infos + 1] = { done, total, failed, unknown, info }
      end })
    client:close()
    assert.are.same({ #items, #items }, { report.total, report.ok })
    local last = infos[#infos]
    assert.are.same({ #items, #items, 0, 0 }, { last[1], last[2], last[3], last[4] })
    local info = last[5]
    assert.is_true(info.limit >= 1 and info.limit <= 16)
    assert.is_true(info.rate > 0)
    assert.are.equal(0, info.eta)
    assert.are.same({ #items, #items, 0 }, { info.done, info.applied, info.failed })
    assert.has_error(function()
      workflow.bulk_update(client, items, { concurrency = 4, concurrency_max = 8 })
    end)
  end)
end)
