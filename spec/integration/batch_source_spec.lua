-- client:batch with a source function and bulk_update on it (issue 13, item 4: no window
-- barrier). Timing is read from the emulator's request log (arrival times), never from
-- wall-clock thresholds of this process.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

local PATH = "profileAndServices/profile/"

local function pattern(pkey) return pkey:gsub("%p", "%%%0") .. "$" end

-- The shared emulator reset, a client with short retries, and the PKeys of its first 40 profiles.
local function fresh_setup()
  local emu = emulator.shared()
  emu:clear_faults()
  emu:reset()
  local client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05, timeout = 10 })
  local listing = assert(client:get("profileAndServices/profile", { query = { _lineCount = 40 } }))
  local pkeys = {}
  for i, p in ipairs(listing.content) do pkeys[i] = p.PKey end
  return emu, client, pkeys
end

describe("client:batch with a source function", function()
  local emu, client, pkeys

  setup(function()
    emu, client, pkeys = fresh_setup()
    assert.is_true(#pkeys >= 20)
  end)
  teardown(function()
    emu:clear_faults()
    emu:reset()
    client:close()
  end)
  before_each(function()
    emu:clear_faults()
    emu:clear_requests()
  end)

  it("hands results to on_result with a running index and returns a summary, not the results", function()
    local n, seen = 0, {}
    local summary = client:batch(function()
      n = n + 1
      if n > 12 then return nil end
      if n == 12 then return { "GET", PATH .. "@nosuchprofile" } end
      return { method = "PATCH", path = PATH .. pkeys[n], body = { firstName = "s" .. n } }
    end, { concurrency = 4, on_result = function(i, result) seen[i] = result.status end })
    assert.are.same({ count = 12, ok = 11, failed = 1 }, summary)
    assert.are.equal(12, #seen)
    for i = 1, 11 do assert.are.equal(200, seen[i]) end
    assert.is_true(seen[12] >= 400)
    assert.are.equal("s3", assert(client:get(PATH .. pkeys[3])).firstName)
  end)

  it("false waits for an answer; the source is called again after each settle", function()
    local given, in_flight, most = 0, 0, 0
    local summary = client:batch(function()
      if given == 6 then return nil end
      if in_flight >= 2 then return false end
      given, in_flight = given + 1, in_flight + 1
      if in_flight > most then most = in_flight end
      return { "GET", PATH .. pkeys[given] }
    end, { concurrency = 8, on_result = function() in_flight = in_flight - 1 end })
    assert.are.same({ 6, 6, 2 }, { summary.count, summary.ok, most })
  end)

  it("answers misuse with clear errors", function()
    local function on_result() end
    assert.has_error(function() client:batch(function() return nil end) end,
      "campaign.batch: a source function needs option 'on_result' (its results are not collected)")
    assert.has_error(function() client:batch(function() return false end, { on_result = on_result }) end,
      "campaign.batch: the source returned false (wait for a result) with no request in flight or "
        .. "waiting for a retry: it would wait forever")
    assert.has_error(function() client:batch(function() return "GET" end, { on_result = on_result }) end,
      "campaign.batch: the source returned a string (a request table, false for \"not yet\", or nil "
        .. "at the end)")
    local given = 0
    local ok, err = pcall(client.batch, client, function()
      given = given + 1
      if given == 2 then return { "GET", "a/../b" } end
      return given < 2 and { "GET", PATH .. pkeys[1] } or nil
    end, { on_result = on_result })
    assert.is_false(ok)
    assert.matches("^campaign.batch: request 2: ", err)
    assert.has_error(function() client:batch(42) end)
    -- the client is usable after each of them
    assert.are.equal(1, #client:batch({ { "GET", PATH .. pkeys[1] } }))
  end)

  it("a raise of the source stops the batch and is raised as it is", function()
    local boom = { why = "source broke" }
    local given, results = 0, 0
    local ok, err = pcall(client.batch, client, function()
      given = given + 1
      if given == 5 then error(boom) end
      return { "GET", PATH .. pkeys[given] }
    end, { concurrency = 2, on_result = function() results = results + 1 end })
    assert.is_false(ok)
    assert.are.equal(boom, err)
    assert.are.equal(5, given)           -- not asked again
    assert.is_true(results <= 4)
    assert.are.equal(1, #client:batch({ { "GET", PATH .. pkeys[1] } }))
  end)

  it("takes the budget and the pace per attempt; an item past the budget fails unsent", function()
    local paced = campaign.new(emu:client_options { budget = 5, rate = 200, retry_base = 0.01 })
    local n, kinds = 0, {}
    local summary = paced:batch(function()
      n = n + 1
      if n > 8 then return nil end
      return { "GET", PATH .. pkeys[n] }
    end, { concurrency = 4, on_result = function(i, result)
      kinds[i] = result.err and result.err.kind or "ok"
    end })
    paced:close()
    assert.are.same({ count = 8, ok = 5, failed = 3 }, summary)
    local budget = 0
    for _, k in pairs(kinds) do if k == "budget" then budget = budget + 1 end end
    assert.are.equal(3, budget)
    assert.are.equal(5, #emu:requests())
  end)
end)

describe("client:batch with a source, interrupted (campaign.trap_signals)", function()
  -- the flavour under test, and under scripts/memcheck its tool (spec/support/child_lua.lua)
  local child_lua = require "child_lua"
  local LUA, FLAVOUR = child_lua.command(), child_lua.flavour

  it("asks the source no more; every request it gave settles through on_result", function()
    local emu = emulator.shared()
    emu:clear_faults()
    emu:reset()
    assert(emu:call("POST", "/_emulator/load", { latency_ms = 300 }, { auth = false }) == 200)
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write(([[
package.cpath = "build/%s/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local campaign = require "campaign"
local c = campaign.new{org = %q, api_key = %q, token = %q, base_url = %q, retries = 0}
campaign.trap_signals()
local stat = io.open("/proc/self/stat")
local pid = stat:read("*l"):match("^(%%d+)")
stat:close()
local signalled, asked_after, seen, kinds = false, 0, 0, {}
local given, fifth = 0, "?"
local summary = c:batch(function()
  if signalled then asked_after = asked_after + 1 end
  given = given + 1
  if given > 60 then return nil end -- a bound: the spec fails instead of hanging
  if given == 5 then
    -- the signal comes while the source runs (a Ctrl-C at any moment): request 5 is given but
    -- must not start. Not os.execute: system(3) ignores SIGINT in the caller meanwhile.
    signalled = true
    io.popen("kill -INT " .. pid):close()
  end
  return {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}}
end, {concurrency = 3, on_result = function(i, r)
  seen = seen + 1
  kinds[#kinds + 1] = r.err and r.err.kind or "ok"
  if i == 5 then fifth = tostring(r.err and r.err.sent) end
end})
print(summary.count, summary.ok, summary.failed, summary.interrupted, asked_after, seen,
  table.concat(kinds, ","), fifth)
]]):format(FLAVOUR, emu.org, emu.api_key, emu.access_token, emu.base_url))
    f:close()
    local pipe = assert(io.popen("timeout 60 " .. LUA .. " " .. script .. " 2>&1"))
    local out = pipe:read("*a")
    pipe:close()
    os.remove(script)
    emu:call("DELETE", "/_emulator/load", nil, { auth = false })
    local count, ok, failed, signal, asked_after, seen, kinds, fifth =
      out:match("^(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%S+)\t(%S+)")
    assert.is_not_nil(count, out)
    count, ok, failed = tonumber(count), tonumber(ok), tonumber(failed)
    assert.are.equal(2, tonumber(signal))
    assert.are.equal(0, tonumber(asked_after))     -- no request asked for after the signal
    assert.are.equal(count, tonumber(seen))         -- every request given was settled
    assert.are.equal(count, ok + failed)
    assert.are.equal(5, count)
    assert.is_true(ok >= 2 and failed >= 1, out)
    assert.are.equal("false", fifth)                -- given during the signal: never sent
    local _, interrupted = kinds:gsub("interrupted", "")
    assert.are.equal(failed, interrupted)
  end)
end)

describe("bulk_update streams (no window barrier)", function()
  local emu, client, pkeys

  setup(function()
    emu, client, pkeys = fresh_setup()
  end)
  teardown(function()
    emu:clear_faults()
    emu:reset()
    client:close()
  end)
  before_each(function()
    emu:clear_faults()
    emu:clear_requests()
  end)

  -- The PATCHes the emulator logged, and the arrival time of the one to `slow`.
  local function patches(slow)
    local list, slow_at = {}, nil
    for _, r in ipairs(emu:requests()) do
      if r.method == "PATCH" then
        list[#list + 1] = r
        if r.uri:find(slow, 1, true) then slow_at = r.time end
      end
    end
    return list, slow_at
  end

  it("keeps the other slots busy while one PATCH takes 1.5 s (concurrency 4)", function()
    local slow = pkeys[1]
    emu:faults { { method = "PATCH", path = pattern(slow), delay_ms = 1500 } }
    local items = {}
    for i = 1, 40 do items[i] = { pkey = pkeys[(i - 1) % #pkeys + 1], changes = { lastName = "n" .. i } } end
    local order = {}
    local report = workflow.bulk_update(client, items, { concurrency = 4,
      on_item = function(i) order[#order + 1] = i end })
    assert.are.same({ 40, 40, 0 }, { report.total, report.ok, report.failed })
    local list, slow_at = patches(slow)
    assert.are.equal(40, #list)
    -- Every other PATCH reached the server before the slow one was answered (it arrived at
    -- slow_at and was held 1.5 s there). A window of 16 held the 24 later items behind it.
    local before = 0
    for _, r in ipairs(list) do
      if r.time < slow_at + 1.5 then before = before + 1 end
    end
    assert.are.equal(40, before)
    assert.are.equal(1, order[#order])    -- the slow item settled last
  end)

  it("queues a read-back as soon as its PATCH settles (verify)", function()
    local slow = pkeys[1]
    emu:faults { { method = "PATCH", path = pattern(slow), delay_ms = 1500 } }
    local items = {}
    for i = 1, 12 do items[i] = { pkey = pkeys[i], changes = { lastName = "v" .. i } } end
    local report = workflow.bulk_update(client, items, { concurrency = 4, verify = true })
    assert.are.same({ 12, 12, 0 }, { report.total, report.ok, report.failed })
    local slow_at
    local gets_before, gets = 0, 0
    local log = emu:requests()
    for _, r in ipairs(log) do
      if r.method == "PATCH" and r.uri:find(slow, 1, true) then slow_at = r.time end
    end
    for _, r in ipairs(log) do
      if r.method == "GET" then
        gets = gets + 1
        if r.time < slow_at + 1.5 then gets_before = gets_before + 1 end
      end
    end
    assert.are.equal(12, gets)
    assert.are.equal(11, gets_before)      -- every read-back but the slow record's own
  end)

  it("a later row of the slow record waits for it; other records go on", function()
    local slow = pkeys[1]
    emu:faults { { method = "PATCH", path = pattern(slow), delay_ms = 1000 } }
    local items = { { pkey = slow, changes = { firstName = "row1" } } }
    for i = 2, 10 do items[i] = { pkey = pkeys[i], changes = { firstName = "o" .. i } } end
    items[11] = { pkey = slow, changes = { firstName = "row11" } }
    for i = 12, 20 do items[i] = { pkey = pkeys[i - 10], changes = { lastName = "p" .. i } } end
    local report = workflow.bulk_update(client, items, { concurrency = 4 })
    assert.are.same({ 20, 20 }, { report.total, report.ok })
    assert.are.equal("row11", assert(client:get(PATH .. slow)).firstName)
    local first_slow, second_slow, others_before = nil, nil, 0
    local log = emu:requests()
    for _, r in ipairs(log) do
      if r.method == "PATCH" and r.uri:find(slow, 1, true) then
        if first_slow then second_slow = r.time else first_slow = r.time end
      end
    end
    assert.is_true(second_slow >= first_slow + 1)
    for _, r in ipairs(log) do
      if r.method == "PATCH" and not r.uri:find(slow, 1, true) and r.time < first_slow + 1 then
        others_before = others_before + 1
      end
    end
    assert.are.equal(18, others_before)
  end)
end)
