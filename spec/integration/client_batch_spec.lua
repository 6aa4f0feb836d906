-- client:batch on libcurl multi: order, bounded concurrency, retries that do not block the
-- others, the 401 rule, per-request results and on_result.
local campaign = require "campaign"
local h = require "integration.client_helper"

local function pkeys(client, n)
  local body = assert(client:get("profileAndServices/profile", {query = {_lineCount = n}}))
  local out = {}
  for i, p in ipairs(body.content) do out[i] = p.PKey end
  return out
end

describe("client:batch", function()
  local emu, client
  before_each(function()
    emu = h.fresh()
    client = h.client(emu)
  end)
  after_each(function() client:close() end)

  it("returns results in request order", function()
    local keys = pkeys(client, 20)
    local requests = {}
    for i, k in ipairs(keys) do requests[i] = {"GET", "profileAndServices/profile/" .. k} end
    local results = client:batch(requests, {concurrency = 5})
    assert.equal(#keys, #results)
    for i, r in ipairs(results) do
      assert.equal(200, r.status)
      assert.equal(keys[i], r.body.PKey)
      assert.is_nil(r.err)
      assert.equal(1, r.attempts)
      assert.is_table(r.headers)
    end
  end)

  it("runs at most `concurrency` transfers at once, and that many in parallel", function()
    emu:faults{method = "GET", path = "/slowbatch/", delay_ms = 300, status = 200, times = 9}
    local inflight, max_inflight = 0, 0
    local c = h.client(emu, {on_event = function(ev)
      if ev.type == "request" then
        inflight = inflight + 1
        if inflight > max_inflight then max_inflight = inflight end
      elseif ev.type == "response" or ev.type == "error" then
        inflight = inflight - 1
      end
    end})
    local requests = {}
    for i = 1, 9 do requests[i] = {"GET", "slowbatch/" .. i} end
    local t0 = h.now()
    local results = c:batch(requests, {concurrency = 3})
    local took = h.now() - t0
    c:close()
    assert.equal(3, max_inflight)
    for _, r in ipairs(results) do assert.equal(200, r.status) end
    -- three waves of 0.3 s: well under the 2.7 s of one at a time, at least 0.9 s
    assert.truthy(took >= 0.85, "took " .. took)
    assert.truthy(took < 2.5, "took " .. took)
  end)

  it("tells on_event which request each event is about", function()
    local seen = {}
    local c = h.client(emu, {on_event = function(ev)
      if ev.type == "response" then seen[ev.index] = ev.url end
    end})
    c:batch({{"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}},
             {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 2}}}})
    c:close()
    assert.matches("_lineCount=1$", seen[1])
    assert.matches("_lineCount=2$", seen[2])
  end)

  it("calls on_result once per request with its index and result", function()
    local keys = pkeys(client, 6)
    local requests, seen = {}, {}
    for i, k in ipairs(keys) do requests[i] = {"GET", "profileAndServices/profile/" .. k} end
    local results = client:batch(requests, {concurrency = 2, on_result = function(i, result)
      assert.is_nil(seen[i])
      seen[i] = result
    end})
    for i = 1, #keys do assert.equal(results[i], seen[i]) end
  end)

  it("raises an error of on_result from batch (it stops the batch: batch_callback_spec.lua)", function()
    local keys = pkeys(client, 4)
    local requests = {}
    for i, k in ipairs(keys) do requests[i] = {"GET", "profileAndServices/profile/" .. k} end
    local ok, err = pcall(client.batch, client, requests,
      {on_result = function() error("progress bar broke") end})
    assert.is_false(ok)
    assert.matches("progress bar broke$", err)
  end)

  it("does not hold the others while one waits for its retry", function()
    emu:faults{method = "GET", path = "/waiting$", status = 503, headers = {["Retry-After"] = "1"}}
    local c = h.client(emu, {retry_max = 5})
    local order = {}
    local requests = {{"GET", "waiting"}}
    for i = 2, 6 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local t0 = h.now()
    local results = c:batch(requests, {concurrency = 2, on_result = function(i) order[#order + 1] = i end})
    local took = h.now() - t0
    c:close()
    assert.equal(1, order[#order]) -- the retried one finishes last
    assert.equal(2, results[1].attempts)
    assert.equal(500, results[1].status) -- no such route: the gateway's 500 (never retried)
    for i = 2, 6 do assert.equal(200, results[i].status) end
    assert.truthy(took >= 0.95 and took < 4, "took " .. took)
  end)

  it("applies the retry rules per method", function()
    emu:faults{
      {method = "GET", path = "/profileAndServices/profile$", status = 502},
      {method = "POST", path = "/profileAndServices/profile$", status = 503},
    }
    local results = client:batch{
      {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}},
      {"POST", "profileAndServices/profile", {email = "batch.post@example.com"}},
    }
    assert.equal(200, results[1].status)
    assert.equal(2, results[1].attempts)
    assert.equal(503, results[2].status)
    assert.equal(1, results[2].attempts)
    assert.equal("http", results[2].err.kind)
    assert.equal("POST", results[2].err.method)
  end)

  it("reports each failure in its own result", function()
    local keys = pkeys(client, 2)
    local results = client:batch{
      {"GET", "profileAndServices/profile/" .. keys[1]},
      {"GET", "profileAndServices/profile/@" .. ("Missing0"):rep(10)}, -- well-formed, no such record
      {"PATCH", "profileAndServices/profile/" .. keys[2], {gender = "invalid"}},
      {"POST", "profileAndServices/profile", {email = "made.in.batch@example.com"}},
    }
    assert.equal(keys[1], results[1].body.PKey)
    assert.equal(404, results[2].status)
    assert.is_true(campaign.is_error(results[2].err))
    assert.is_nil(results[2].body)
    assert.equal(500, results[3].status)
    assert.equal("RST-360011", results[3].err.codes[1])
    assert.equal(201, results[4].status)
    assert.equal("made.in.batch@example.com", results[4].body.email)
  end)

  it("sends bodies and headers like single calls", function()
    local keys = pkeys(client, 3)
    emu:clear_requests()
    local requests = {}
    for i, k in ipairs(keys) do
      requests[i] = {"PATCH", "profileAndServices/profile/" .. k, {phone = "0" .. i},
                     {headers = {["X-Batch"] = tostring(i)}}}
    end
    local results = client:batch(requests, {concurrency = 3})
    for i = 1, 3 do assert.equal(keys[i], results[i].body.PKey) end
    for _, r in ipairs(h.logged(emu, "/profile/@")) do
      assert.equal("Bearer " .. emu.access_token, r.headers.authorization)
      assert.equal(emu.api_key, r.headers["x-api-key"])
      assert.equal("application/json;charset=utf-8", r.headers["content-type"])
      local i = tonumber(r.headers["x-batch"])
      assert.same({phone = "0" .. i}, emu.json.decode(r.body))
    end
    for i, k in ipairs(keys) do
      assert.equal("0" .. i, assert(client:get("profileAndServices/profile/" .. k)).phone)
    end
  end)

  it("takes named requests {method=, path=, body=, opts=} too, as campaign.ngx does", function()
    local keys = pkeys(client, 2)
    emu:clear_requests()
    local results = client:batch({
      {method = "PATCH", path = "profileAndServices/profile/" .. keys[1], body = {phone = "0111"},
       opts = {headers = {["X-Batch"] = "named"}}},
      {"GET", "profileAndServices/profile/" .. keys[2]},
    })
    assert.equal(keys[1], results[1].body.PKey)
    assert.equal(keys[2], results[2].body.PKey)
    local patch = h.logged(emu, "/profile/" .. keys[1])[1]
    assert.equal("PATCH", patch.method)
    assert.equal("named", patch.headers["x-batch"])
    assert.same({phone = "0111"}, emu.json.decode(patch.body))
    assert.has_error(function() client:batch({{path = "profileAndServices/profile"}}) end)
  end)

  it("refreshes the token once for a wave of 401s and resends each request once", function()
    local calls = {}
    local old = emu:new_token()
    local c = h.client(emu, {token = function(force)
      calls[#calls + 1] = force
      if force then return emu:new_token() end
      return old
    end})
    emu:expire_tokens()
    local requests = {}
    for i = 1, 4 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local results = c:batch(requests, {concurrency = 4})
    c:close()
    for i = 1, 4 do
      assert.equal(200, results[i].status)
      assert.equal(2, results[i].attempts)
    end
    assert.same({false, true}, calls)
  end)

  it("fails every request with kind auth when there is no token", function()
    local c = h.client(emu, {token = function() return nil, "no credentials" end})
    local seen = 0
    local results = c:batch({{"GET", "a"}, {"GET", "b"}}, {on_result = function() seen = seen + 1 end})
    c:close()
    assert.equal(2, seen)
    for i = 1, 2 do
      assert.equal("auth", results[i].err.kind)
      assert.equal(0, results[i].attempts)
    end
    assert.equal(0, #h.logged(emu, "/campaign/"))
  end)

  it("returns raw bodies on request", function()
    local results = client:batch{
      {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}, raw = true}}}
    assert.is_string(results[1].body)
  end)

  it("reuses its connections across batches", function()
    local requests = {}
    for i = 1, 8 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local opened = {}
    for round = 1, 3 do
      local results = client:batch(requests, {concurrency = 4})
      opened[round] = 0
      for _, r in ipairs(results) do
        assert.equal(200, r.status)
        opened[round] = opened[round] + r.new_connections
      end
    end
    -- 24 requests, at most 4 at once: never more than 4 connections in all (how many the first
    -- batch needed depends on timing, so a later one may still open the rest)
    assert.truthy(opened[1] >= 1, "first batch opened " .. opened[1])
    assert.truthy(opened[1] + opened[2] + opened[3] <= 4,
                  ("opened %d, %d, %d"):format(opened[1], opened[2], opened[3]))
  end)

  it("handles many requests with the default concurrency", function()
    local requests = {}
    for i = 1, 200 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local results = client:batch(requests)
    assert.equal(200, #results)
    for _, r in ipairs(results) do assert.equal(200, r.status) end
  end)
end)
