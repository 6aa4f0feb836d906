-- bulk_update's hardening (red team 2026-12-03): rows of one PKey in input order (item 6),
-- outcomes that are not known (item 9), stops by a signal (item 4) and by a raising callback
-- or iterator (item 14b). Fake clients only: the batch contract of docs/client.md is played
-- by hand, including the signal contract (campaign.trap_signals) that the C module may lack.
local campaign = require "campaign"
local workflow = require "campaign.workflow"

local PATH = "profileAndServices/profile/"

local function ok_result() return { status = 200, body = { PKey = "x" }, attempts = 1 } end

-- A client whose batch answers each request with answer(request, k) (a result table) and
-- calls on_result in the order `order(n)` gives (default: index order).
local function client_with(answer, order)
  local client = { batches = {}, calls = 0 }
  function client.get() return {}, { status = 200 } end
  function client.batch(_, requests, opts)
    client.batches[#client.batches + 1] = requests
    local results = {}
    local idx = order and order(#requests) or nil
    for n = 1, #requests do
      local k = idx and idx[n] or n
      client.calls = client.calls + 1
      results[k] = answer(requests[k], k)
      if opts and opts.on_result then opts.on_result(k, results[k]) end
    end
    return results
  end
  return client
end

local function reversed(n)
  local t = {}
  for i = 1, n do t[i] = n - i + 1 end
  return t
end

local function sums_up(report)
  assert.are.equal(report.total, report.ok + report.failed + report.unknown)
end

-- Temporarily gives the C module a signal flag (the contract of campaign.interrupted).
local function with_signal(value, fn)
  local saved = rawget(campaign, "interrupted")
  campaign.interrupted = function() return value() end
  local ok, err = pcall(fn)
  campaign.interrupted = saved
  if not ok then error(err, 0) end
end

describe("bulk_update: rows of one PKey (item 6)", function()
  it("never puts two rows of one record in a window: the later row is applied last", function()
    local stored = {}
    -- Concurrency may answer a window in any order: this batch applies it backwards.
    local client = client_with(function(r)
      stored[r[2]] = r[3].phone
      return ok_result()
    end, reversed)
    local items = {
      { pkey = "@a", changes = { phone = "a1" } },
      { pkey = "@b", changes = { phone = "b1" } },
      { pkey = "@a", changes = { phone = "a2" } },
      { pkey = "@c", changes = { phone = "c1" } },
      { pkey = "@a", changes = { phone = "a3" } },
      { pkey = "@b", changes = { phone = "b2" } },
    }
    local report = workflow.bulk_update(client, items, { window = 8 })
    assert.are.same({ 6, 6, 0, 0 }, { report.total, report.ok, report.failed, report.unknown })
    assert.are.equal("a3", stored[PATH .. "@a"])
    assert.are.equal("b2", stored[PATH .. "@b"])
    assert.are.equal("c1", stored[PATH .. "@c"])
    for _, batch in ipairs(client.batches) do
      local seen = {}
      for _, r in ipairs(batch) do
        assert.is_nil(seen[r[2]], "two rows of " .. r[2] .. " in one window")
        seen[r[2]] = true
      end
    end
  end)

  it("keeps memory bounded when every row names the same record", function()
    local stored, taken, max_ahead = nil, 0, 0
    local client
    client = client_with(function(r)
      stored = r[3].n
      return ok_result()
    end)
    local report = workflow.bulk_update(client, function()
      if taken == 200 then return nil end
      taken = taken + 1
      if taken - client.calls > max_ahead then max_ahead = taken - client.calls end
      return { pkey = "@same", changes = { n = taken } }
    end, { window = 4 })
    assert.are.same({ 200, 200 }, { report.total, report.ok })
    assert.are.equal(200, stored)
    assert.are.equal(200, #client.batches)
    assert.is_true(max_ahead <= 2 * 4 + 1, "read " .. max_ahead .. " rows ahead")
  end)
end)

describe("bulk_update: outcomes (item 9)", function()
  it("reports a transport failure that may have reached ACS as unknown, not failed", function()
    local errs = {
      ["@t"] = campaign.error { kind = "timeout", message = "slow" },                 -- sent unknown
      ["@s"] = campaign.error { kind = "timeout", sent = true, message = "slow" },
      ["@n"] = campaign.error { kind = "network", sent = false, message = "refused" }, -- never left
      ["@h"] = campaign.error { kind = "http", status = 503, message = "busy" },
      ["@l"] = campaign.error { kind = "tls", message = "unknown CA" },
      ["@j"] = campaign.error { kind = "json", status = 200, message = "bad body" },
    }
    local client = client_with(function(r)
      local err = errs[r[2]:sub(#PATH + 1)]
      if err then return { err = err, status = err.status, attempts = 3 } end
      return ok_result()
    end)
    local items = {}
    for _, p in ipairs { "@ok", "@t", "@s", "@n", "@h", "@l", "@j" } do
      items[#items + 1] = { pkey = p, changes = { a = 1 } }
    end
    local outcomes = {}
    local report = workflow.bulk_update(client, items, {
      on_item = function(i, outcome) outcomes[i] = outcome end,
    })
    sums_up(report)
    assert.are.same({ 7, 1, 3, 3 }, { report.total, report.ok, report.failed, report.unknown })
    assert.are.same({ [2] = "unknown", [3] = "unknown", [4] = "failed", [5] = "failed", [6] = "failed",
      [7] = "unknown" }, report.outcomes)
    assert.are.same({ "applied", "unknown", "unknown", "failed", "failed", "failed", "unknown" }, outcomes)
    assert.are.equal("timeout", report.errors[2].kind)
  end)

  it("with verify, a read-back that fails leaves the item unknown (the PATCH was accepted)", function()
    local client = client_with(function(r)
      if r[1] == "GET" and r[2]:find("@g", 1, true) then
        return { err = campaign.error { kind = "http", status = 503, message = "busy" }, status = 503 }
      end
      if r[1] == "GET" then return { status = 200, body = { a = 1 } } end
      return ok_result()
    end)
    local report = workflow.bulk_update(client, {
      { pkey = "@v", changes = { a = 1 } }, { pkey = "@g", changes = { a = 1 } },
    }, { verify = true })
    sums_up(report)
    assert.are.same({ 1, 0, 1 }, { report.ok, report.failed, report.unknown })
    assert.are.equal("unknown", report.outcomes[2])
  end)
end)

describe("bulk_update: stopped by a signal (item 4)", function()
  local function items_of(n, counter)
    return function()
      if counter.taken == n then return nil end
      counter.taken = counter.taken + 1
      return { pkey = "@p" .. counter.taken, changes = { a = counter.taken } }
    end
  end

  it("stops taking items at the first interrupted result; nothing taken is lost", function()
    -- The trap_signals contract: after the signal (during item 3 of the second window) the
    -- batch answers item 3 as aborted in flight (sent = true) and the rest as never sent.
    local windows = 0
    local client = { batches = 0 }
    function client.get() return {} end
    function client.batch(_, requests, opts)
      windows = windows + 1
      local results = {}
      for k = 1, #requests do
        local r
        if windows == 2 and k == 3 then
          r = { err = campaign.error { kind = "interrupted", sent = true, message = "interrupted" } }
        elseif windows == 2 and k > 3 then
          r = { err = campaign.error { kind = "interrupted", sent = false, message = "interrupted" } }
        else
          r = ok_result()
        end
        results[k] = r
        opts.on_result(k, r)
      end
      return results
    end
    local counter = { taken = 0 }
    local settled = {}
    local report
    with_signal(function() return windows >= 2 and 15 or nil end, function()
      report = workflow.bulk_update(client, items_of(100, counter), { window = 5,
        on_item = function(i, outcome) settled[#settled + 1] = i .. outcome end })
    end)
    assert.are.equal(2, windows)
    assert.are.equal(10, counter.taken)        -- two windows taken, no more
    assert.are.equal(15, report.interrupted)
    sums_up(report)
    assert.are.same({ 10, 7, 2, 1, 2 }, { report.total, report.ok, report.failed, report.unknown,
      report.not_sent })
    assert.are.same({ [8] = "unknown", [9] = "not_sent", [10] = "not_sent" }, report.outcomes)
    assert.are.equal(10, #settled)
  end)

  it("stops before the next window when campaign.interrupted() is set", function()
    local flag
    local client = client_with(function() flag = 2 return ok_result() end)
    local counter = { taken = 0 }
    local report
    with_signal(function() return flag end, function()
      report = workflow.bulk_update(client, items_of(100, counter), { window = 4 })
    end)
    assert.are.equal(1, #client.batches)
    assert.are.equal(2, report.interrupted)
    sums_up(report)
    -- no item of the second window was even taken
    assert.are.same({ 4, 4, 0, 0 }, { report.total, report.ok, report.failed, report.not_sent })
    assert.are.equal(4, counter.taken)
  end)

  it("keeps the report when the interpreter's interrupt is raised through client:batch", function()
    -- lua.c's SIGINT hook raises "interrupted!" in whatever Lua code runs: here in on_result,
    -- which the batch re-raises (docs/client.md).
    local client = {}
    function client.get() return {} end
    local windows = 0
    function client.batch(_, requests, opts)
      windows = windows + 1
      for k = 1, #requests do
        if windows == 2 and k == 2 then error("interrupted!") end
        opts.on_result(k, ok_result())
      end
      return {}
    end
    local counter = { taken = 0 }
    local ok, err = pcall(workflow.bulk_update, client, items_of(100, counter), { window = 3 })
    assert.is_false(ok)
    assert.is_true(campaign.is_error(err))
    assert.are.equal("interrupted", err.kind)
    assert.matches("interrupted!$", err.cause)
    assert.matches("interrupted!", tostring(err), 1, true)
    local report = err.report
    sums_up(report)
    assert.are.same({ 6, 4, 0, 2 }, { report.total, report.ok, report.failed, report.unknown })
    assert.are.same({ [5] = "unknown", [6] = "unknown" }, report.outcomes)
    assert.are.equal(6, counter.taken)
  end)

  it("keeps the report when the interrupt is raised in bulk_update's own code while it waits", function()
    -- Here through opts.sleep before a second read-back attempt, as the hook would in any Lua
    -- code. No window: row 3 (@p1 again) goes out as soon as row 1 settled, before the wait.
    local reads = 0
    local client = client_with(function(r)
      if r[1] == "GET" then
        reads = reads + 1
        return { status = 200, body = { a = r[2]:find("@p2", 1, true) and 0 or 1 } }
      end
      return ok_result()
    end)
    local ok, err = pcall(workflow.bulk_update, client, {
      { pkey = "@p1", changes = { a = 1 } }, { pkey = "@p2", changes = { a = 1 } },
      { pkey = "@p1", changes = { a = 1 } },
    }, { verify = true, verify_attempts = 2, sleep = function() error("interrupted!", 0) end })
    assert.is_false(ok)
    assert.are.equal("interrupted", err.kind)
    local report = err.report
    sums_up(report)
    assert.are.same({ 3, 2, 0, 1, 0 }, { report.total, report.ok, report.failed, report.unknown,
      report.not_sent })
    assert.are.same({ [2] = "unknown" }, report.outcomes)
    assert.are.equal(3, reads)
  end)

  it("settles rows waiting for their PKey as not sent", function()
    local flag
    local client = client_with(function() flag = 2 return ok_result() end)
    local report
    with_signal(function() return flag end, function()
      report = workflow.bulk_update(client, {
        { pkey = "@a", changes = { n = 1 } }, { pkey = "@a", changes = { n = 2 } },
        { pkey = "@b", changes = { n = 3 } },
      }, { window = 4 })
    end)
    sums_up(report)
    assert.are.same({ 3, 2, 1 }, { report.total, report.ok, report.not_sent })
    assert.are.equal("not_sent", report.outcomes[2])
  end)
end)

describe("bulk_update: a raising callback or iterator (item 14b)", function()
  it("on_progress: stops taking items, settles the window, raises kind callback with the report", function()
    local client = client_with(function() return ok_result() end)
    local items = {}
    for i = 1, 20 do items[i] = { pkey = "@p" .. i, changes = { a = i } } end
    local ok, err = pcall(workflow.bulk_update, client, items, { window = 4,
      on_progress = function(done) if done == 6 then error("progress broke") end end })
    assert.is_false(ok)
    assert.is_true(campaign.is_error(err))
    assert.are.equal("callback", err.kind)
    assert.matches("progress broke", err.cause, 1, true)
    assert.matches("progress broke", tostring(err), 1, true)
    local report = err.report
    sums_up(report)
    assert.are.same({ 8, 8 }, { report.total, report.ok })   -- the second window was in flight
    assert.are.equal(2, #client.batches)
  end)

  it("the items iterator: the item being taken is not sent, the earlier ones are kept", function()
    local client = client_with(function() return ok_result() end)
    local n = 0
    local ok, err = pcall(workflow.bulk_update, client, function()
      n = n + 1
      if n == 7 then error({ why = "bad input" }) end
      return { pkey = "@p" .. n, changes = { a = n } }
    end, { window = 4 })
    assert.is_false(ok)
    assert.are.equal("callback", err.kind)
    assert.are.same({ why = "bad input" }, err.cause)
    local report = err.report
    sums_up(report)
    -- items are taken one at a time as slots free (no window being filled): 1..6 were sent
    assert.are.same({ 6, 6, 0, 0 }, { report.total, report.ok, report.failed, report.not_sent })
  end)

  it("on_item that raises is not called again; the run stops with the report", function()
    local client = client_with(function() return ok_result() end)
    local calls = 0
    local ok, err = pcall(workflow.bulk_update, client, {
      { pkey = "@a", changes = { a = 1 } }, { pkey = "@b", changes = { a = 1 } },
    }, { on_item = function() calls = calls + 1 error("item hook") end })
    assert.is_false(ok)
    assert.are.equal("callback", err.kind)
    assert.are.equal(1, calls)
    assert.are.same({ 2, 2 }, { err.report.total, err.report.ok })
  end)
end)
