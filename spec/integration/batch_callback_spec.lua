-- client:batch when on_result raises (docs/client.md): the batch stops (no new request, the
-- transfers in flight aborted), the callback's own error is raised from batch, and the client
-- stays usable. And the C stack stays balanced around every callback, however many items.
local h = require "integration.client_helper"

-- How many Lua frames fit on the stack from here: fewer when C code below left slots behind.
local function depth()
  local max = 0
  local function down(n)
    max = n
    return 1 + down(n + 1)
  end
  pcall(down, 1)
  return max
end

local function closed_requests(n)
  local requests = {}
  for i = 1, n do requests[i] = {"GET", "x/" .. i} end
  return requests
end

-- A client whose every request is refused at once (nothing listens on its port).
local function refused_client(emu, extra)
  local opts = {base_url = "http://127.0.0.1:" .. h.closed_port(), retries = 0}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return h.client(emu, opts)
end

describe("client:batch with a raising on_result", function()
  local emu, client
  before_each(function()
    emu = h.fresh()
    client = h.client(emu)
  end)
  after_each(function() client:close() end)

  it("raises the callback's own error value", function()
    local boom = setmetatable({}, {__tostring = function() return "boom" end})
    local requests = {}
    for i = 1, 3 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local ok, err = pcall(client.batch, client, requests, {on_result = function() error(boom) end})
    assert.is_false(ok)
    assert.equal(boom, err)
    ok, err = pcall(client.batch, client, requests, {on_result = function() error("progress bar broke") end})
    assert.is_false(ok)
    assert.matches("progress bar broke$", err)
  end)

  it("starts no request after the raise, and the server saw no more than were in flight", function()
    local started, calls = 0, 0
    local c = h.client(emu, {on_event = function(ev)
      if ev.type == "request" then started = started + 1 end
    end})
    local requests = {}
    for i = 1, 30 do
      requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1, stopcheck = i}}}
    end
    local ok = pcall(c.batch, c, requests, {concurrency = 2, on_result = function()
      calls = calls + 1
      error("stop")
    end})
    c:close()
    assert.is_false(ok)
    assert.equal(1, calls)
    assert.equal(2, started)
    assert.truthy(#h.logged(emu, "stopcheck=") <= 2)
  end)

  it("aborts the transfers in flight and leaves the client usable", function()
    emu:faults{method = "GET", path = "/slowcallback$", delay_ms = 3000, status = 200}
    local requests = {
      {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}},
      {"GET", "slowcallback"},
    }
    local t0 = h.now()
    local ok, err = pcall(client.batch, client, requests, {concurrency = 2, on_result = function(i)
      error("stop at " .. i, 0)
    end})
    local took = h.now() - t0
    assert.is_false(ok)
    assert.equal("stop at 1", err)
    assert.truthy(took < 2, "took " .. took .. " s: the slow transfer was waited for")
    -- the pool (with the aborted handle) serves the next batch, single calls work too
    local results = client:batch({requests[1], requests[1], requests[1]}, {concurrency = 2})
    for i = 1, 3 do assert.equal(200, results[i].status) end
    assert.truthy(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
  end)

  it("stops at the first raise among 20000 failing requests", function()
    local started, calls = 0, 0
    local c = refused_client(emu, {on_event = function(ev)
      if ev.type == "request" then started = started + 1 end
    end})
    local ok, err = pcall(c.batch, c, closed_requests(20000), {concurrency = 64,
      on_result = function()
        calls = calls + 1
        error("boom", 0)
      end})
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.equal(1, calls)
    assert.truthy(started <= 64, started .. " requests started")
    local results = c:batch(closed_requests(3))
    c:close()
    for i = 1, 3 do assert.equal("network", results[i].err.kind) end
  end)

  it("keeps the stack balanced around a raising on_event, item after item", function()
    local baseline, last
    local quiet = refused_client(emu)
    quiet:batch(closed_requests(1), {on_result = function() baseline = depth() end})
    quiet:close()
    local n = 5000
    local c = refused_client(emu, {on_event = function() error("logger broke") end})
    local results = c:batch(closed_requests(n), {concurrency = 64, on_result = function(i)
      if i == n then last = depth() end
    end})
    c:close()
    assert.equal(n, #results)
    assert.is_number(last)
    -- one slot left behind per raising hook call would be 10000 slots: thousands of frames less
    -- (LuaJIT's compiled frames move the figure by a few; Lua 5.1 counts call frames, and its
    -- figure may come out higher later: only a loss tells a leak)
    assert.truthy(last >= baseline - 100, "depth " .. baseline .. " then " .. last)
  end)
end)
