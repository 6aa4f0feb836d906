-- design.md "Retries and tokens": which failures are retried, for which methods, and how long
-- the client waits (Retry-After, else full-jitter backoff capped at retry_max).
local h = require "integration.client_helper"

-- A client that records its events; returns client, events.
local function recording_client(emu, extra)
  local events = {}
  extra = extra or {}
  extra.on_event = function(ev) events[#events + 1] = ev end
  return h.client(emu, extra), events
end

local function of_type(events, type_)
  local out = {}
  for _, ev in ipairs(events) do
    if ev.type == type_ then out[#out + 1] = ev end
  end
  return out
end

describe("retries", function()
  local emu, client, events
  before_each(function()
    emu = h.fresh()
    client, events = recording_client(emu, {retries = 3})
  end)
  after_each(function() client:close() end)

  for _, status in ipairs{429, 502, 503, 504} do
    it("retries a GET after " .. status, function()
      emu:faults{method = "GET", path = "/profileAndServices/profile$", status = status, times = 2}
      local body, res = client:get("profileAndServices/profile", {query = {_lineCount = 1}})
      assert.is_table(body)
      assert.equal(3, res.attempts)
      assert.equal(3, #h.logged(emu, "/profileAndServices/profile"))
      local retries = of_type(events, "retry")
      assert.equal(2, #retries)
      assert.equal(status, retries[1].status)
      assert.equal(1, retries[1].attempt)
    end)
  end

  it("never retries a 500 (ACS validation errors)", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 500}
    local _, err = client:get("profileAndServices/profile")
    assert.equal(500, err.status)
    assert.equal(1, err.attempts)
    assert.equal(0, #of_type(events, "retry"))
  end)

  it("never retries other 4xx", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 400}
    local _, err = client:get("profileAndServices/profile")
    assert.equal(1, err.attempts)
  end)

  it("retries PATCH and DELETE (idempotent) after 503", function()
    local pkey = h.first_pkey(client)
    emu:faults{method = "PATCH", path = "/profile/@", status = 503}
    local _, res = assert(client:patch("profileAndServices/profile/" .. pkey, {phone = "2"}))
    assert.equal(2, res.attempts)
    emu:faults{method = "DELETE", path = "/profile/@", status = 503}
    local _, dres = assert(client:delete("profileAndServices/profile/" .. pkey))
    assert.equal(2, dres.attempts)
  end)

  it("does not retry a POST that reached the server", function()
    emu:faults{method = "POST", path = "/profileAndServices/profile$", status = 503}
    local _, err = client:post("profileAndServices/profile", {email = "once@example.com"})
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    -- a fresh connection (libcurl itself resends once when a kept-alive connection turns out
    -- to be closed before any byte of the answer: the usual keep-alive race, docs/client.md)
    local c = h.client(emu, {retries = 3})
    emu:clear_requests()
    emu:faults{method = "POST", path = "/profileAndServices/profile$", drop = true}
    local _, err2 = c:post("profileAndServices/profile", {email = "once@example.com"})
    c:close()
    assert.equal("network", err2.kind)
    assert.equal(1, err2.attempts)
    assert.equal(1, #h.logged(emu, "/profileAndServices/profile"))
  end)

  it("never lets libcurl resend a POST on a kept-alive connection by itself", function()
    -- libcurl sends a request once more when a reused connection closes before any answer;
    -- the server may have created the record already, so a POST must fail instead
    local c = h.client(emu, {retries = 3})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}})) -- a kept-alive connection
    emu:clear_requests()
    emu:faults{method = "POST", path = "/profileAndServices/profile$", drop = true}
    local body, err = c:post("profileAndServices/profile", {email = "kept@example.com"})
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal(1, err.attempts)
    assert.matches("not sent again", err.message)
    assert.equal(1, #h.logged(emu, "/profileAndServices/profile"))
    -- the client goes on working
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
  end)

  it("counts libcurl's own resend of a GET on a kept-alive connection as an attempt", function()
    local c = h.client(emu, {retries = 0})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    emu:clear_requests()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", drop = true}
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(2, res.attempts)
    assert.equal(2, #h.logged(emu, "/profileAndServices/profile"))
    local results = c:batch({{"GET", "profileAndServices/profile"}})
    assert.equal(1, results[1].attempts)
    c:close()
  end)

  it("retries a POST that was never sent (connection refused)", function()
    local c = h.client(emu, {base_url = "http://127.0.0.1:" .. h.closed_port(), retries = 2})
    local _, err = c:post("profileAndServices/profile", {email = "x@example.com"})
    c:close()
    assert.equal("network", err.kind)
    assert.equal(3, err.attempts)
  end)

  it("gives up after `retries` retries with the last error", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 10}
    local _, err = client:get("profileAndServices/profile")
    assert.equal(503, err.status)
    assert.equal(4, err.attempts)
    emu:clear_faults()
  end)

  it("does not retry with retries = 0", function()
    local c = h.client(emu, {retries = 0})
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503}
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal(1, err.attempts)
  end)

  it("retries a timeout and a dropped connection for a GET", function()
    local c = h.client(emu, {timeout = 0.3, retries = 2})
    emu:faults{method = "GET", path = "/profileAndServices/profile$", delay_ms = 1500, status = 200}
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(2, res.attempts)
    c:close()
    c = h.client(emu, {retries = 2}) -- a fresh connection: see the POST case above
    emu:faults{method = "GET", path = "/profileAndServices/profile$", drop = true}
    local _, res2 = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(2, res2.attempts)
    c:close()
  end)

  it("waits Retry-After seconds", function()
    local c, evs = recording_client(emu, {retries = 1, retry_max = 5})
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503,
               headers = {["Retry-After"] = "1"}}
    local t0 = h.now()
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local took = h.now() - t0
    c:close()
    assert.equal(2, res.attempts)
    assert.equal(1, of_type(evs, "retry")[1].wait)
    assert.truthy(took >= 0.95, "took " .. took)
    assert.truthy(took < 5, "took " .. took)
  end)

  it("waits until a Retry-After HTTP date", function()
    local c, evs = recording_client(emu, {retries = 1, retry_max = 10})
    local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3)
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 429,
               headers = {["Retry-After"] = when}}
    local t0 = h.now()
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local took = h.now() - t0
    c:close()
    assert.equal(2, res.attempts)
    local wait = of_type(evs, "retry")[1].wait
    assert.truthy(wait >= 1 and wait <= 3, "wait " .. wait) -- whole seconds, minus the time spent
    assert.truthy(took >= 0.95, "took " .. took)
  end)

  it("caps Retry-After at retry_max", function()
    local c, evs = recording_client(emu, {retries = 1, retry_max = 0.2})
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503,
               headers = {["Retry-After"] = "3600"}}
    local t0 = h.now()
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local took = h.now() - t0
    c:close()
    assert.equal(0.2, of_type(evs, "retry")[1].wait)
    assert.truthy(took < 3, "took " .. took)
  end)

  it("backs off with full jitter: retry n waits within [0, min(retry_max, base * 2^(n-1))]", function()
    local c, evs = recording_client(emu, {retries = 4, retry_base = 0.05, retry_max = 0.15})
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 4}
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal(5, res.attempts)
    local limits = {0.05, 0.1, 0.15, 0.15}
    local retries = of_type(evs, "retry")
    assert.equal(4, #retries)
    for n, ev in ipairs(retries) do
      assert.truthy(ev.wait >= 0 and ev.wait <= limits[n] + 1e-9, "retry " .. n .. " waited " .. ev.wait)
    end
  end)

  it("draws different waits (jitter is random, per client)", function()
    local waits = {}
    for _ = 1, 3 do
      local c, evs = recording_client(emu, {retries = 3, retry_base = 0.02, retry_max = 0.02})
      emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 3}
      assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
      c:close()
      for _, ev in ipairs(of_type(evs, "retry")) do waits[#waits + 1] = ev.wait end
    end
    local distinct = {}
    for _, w in ipairs(waits) do distinct[w] = true end
    local count = 0
    for _ in pairs(distinct) do count = count + 1 end
    assert.truthy(count > 1)
  end)

  it("emits request, response, retry events in order", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503}
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local types = {}
    for _, ev in ipairs(events) do types[#types + 1] = ev.type end
    assert.same({"request", "response", "retry", "request", "response"}, types)
    assert.equal(2, events[4].attempt)
    assert.is_number(events[3].wait)
  end)

  it("emits an error event for a failed transfer", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", drop = true}
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal("error", events[2].type)
    assert.equal("network", events[2].kind)
    assert.is_string(events[2].message)
  end)
end)
