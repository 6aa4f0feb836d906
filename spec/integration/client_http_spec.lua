-- The C client against the emulator: what goes on the wire and what comes back.
local campaign = require "campaign"
local h = require "integration.client_helper"

describe("client requests", function()
  local emu, client
  before_each(function()
    emu = h.fresh()
    client = h.client(emu)
  end)
  after_each(function() client:close() end)

  it("sends the ACS headers on every request", function()
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local r = h.logged(emu, "/profileAndServices/profile")[1]
    assert.equal("GET", r.method)
    assert.equal("Bearer " .. emu.access_token, r.headers["authorization"])
    assert.equal(emu.api_key, r.headers["x-api-key"])
    assert.equal("no-cache", r.headers["cache-control"])
    assert.equal("application/json", r.headers["accept"])
    -- as ACS's documentation and Adobe's SDK send it: on every call, with a body or not
    assert.equal("application/json;charset=utf-8", r.headers["content-type"])
    assert.matches("^lua%-campaign/" .. campaign._VERSION:gsub("%.", "%%.") .. " libcurl/%d+%.%d+%.%d+ ",
                   r.headers["user-agent"])
    assert.truthy(r.headers["user-agent"]:find((jit and jit.version) or _VERSION, 1, true))
  end)

  it("sends a JSON body with its content type, and custom headers", function()
    local pkey = h.first_pkey(client)
    emu:clear_requests()
    assert(client:patch("profileAndServices/profile/" .. pkey, {phone = "3301020304"},
                        {headers = {["X-Trace"] = "abc", Accept = "application/json;v=2"}}))
    local r = h.logged(emu, pkey)[1]
    assert.equal("PATCH", r.method)
    assert.equal("application/json;charset=utf-8", r.headers["content-type"])
    assert.equal("abc", r.headers["x-trace"])
    assert.equal("application/json;v=2", r.headers["accept"]) -- a default can be replaced
    assert.same({phone = "3301020304"}, emu.json.decode(r.body))
  end)

  it("labels a POST without a body as JSON, not as a form", function()
    client:post("profileAndServices/noSuchResource", nil) -- only what was sent matters here
    local r = h.logged(emu, "/profileAndServices/noSuchResource")[1]
    assert.equal("POST", r.method)
    assert.equal("application/json;charset=utf-8", r.headers["content-type"])
    assert.equal("", r.body or "")
  end)

  it("sends no Authorization header with token = false, and the gateway answers 401013", function()
    local anonymous = h.client(emu, {token = false})
    local body, err = anonymous:get("profileAndServices/profile")
    anonymous:close()
    assert.is_nil(body)
    assert.equal(401, err.status)
    assert.equal("401013", err.code)
    local r = h.logged(emu, "/profileAndServices/profile")[1]
    assert.is_nil(r.headers["authorization"])
    assert.equal(emu.api_key, r.headers["x-api-key"])
  end)

  it("uses opts.user_agent", function()
    local c = h.client(emu, {user_agent = "acme-sync/2.0"})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal("acme-sync/2.0", h.logged(emu, "/profileAndServices/profile")[1].headers["user-agent"])
  end)

  it("GET returns the decoded body and res = {status, headers, attempts, elapsed}", function()
    local pkey = h.first_pkey(client)
    local body, res = client:get("profileAndServices/profile/" .. pkey)
    assert.equal(pkey, body.PKey)
    assert.equal(200, res.status)
    assert.equal(1, res.attempts)
    assert.is_number(res.elapsed)
    assert.truthy(res.elapsed >= 0 and res.elapsed < 5)
    assert.matches("^application/json", res.headers["content-type"])
  end)

  it("PATCH returns {PKey, href}; GET sees the change", function()
    local pkey = h.first_pkey(client)
    local body, res = client:patch("profileAndServices/profile/" .. pkey, {firstName = "Zoë"})
    assert.equal(200, res.status)
    assert.equal(pkey, body.PKey)
    -- the href is absolute and of the same origin: accepted as a path
    local again = assert(client:get(body.href))
    assert.equal("Zoë", again.firstName)
  end)

  it("POST answers 201 with the record; DELETE removes it", function()
    local body, res = client:post("profileAndServices/profile", {email = "new.one@example.com"})
    assert.equal(201, res.status)
    assert.equal("new.one@example.com", body.email)
    local _, dres = client:delete("profileAndServices/profile/" .. body.PKey)
    assert.truthy(dres.status == 200 or dres.status == 204)
    local none, err = client:get("profileAndServices/profile/" .. body.PKey)
    assert.is_nil(none)
    assert.equal(404, err.status)
  end)

  it("request() takes any method with opts.body, and raw = true returns the body text", function()
    local pkey = h.first_pkey(client)
    local text, res = client:request("get", "profileAndServices/profile/" .. pkey, {raw = true})
    assert.equal(200, res.status)
    assert.is_string(text)
    assert.truthy(text:find(pkey, 1, true))
    local body = assert(client:request("PATCH", "profileAndServices/profile/" .. pkey,
                                       {body = '{"lastName":"Raw"}'}))
    assert.equal(pkey, body.PKey)
    assert.equal("Raw", assert(client:get("profileAndServices/profile/" .. pkey)).lastName)
  end)

  it("keeps the method when a body goes with it (GET, DELETE) and sends none for HEAD", function()
    local pkey = h.first_pkey(client)
    emu:clear_requests()
    client:request("GET", "profileAndServices/profile/" .. pkey, {body = "{}"})
    client:request("DELETE", "profileAndServices/nothing/" .. pkey, {body = {reason = "test"}})
    -- the emulator has no HEAD route (405): what matters is that no body is awaited
    local _, err = client:request("HEAD", "profileAndServices/profile/" .. pkey)
    local logged = h.logged(emu, pkey)
    assert.equal("GET", logged[1].method)
    assert.equal("DELETE", logged[2].method)
    assert.same({reason = "test"}, emu.json.decode(logged[2].body))
    assert.equal(405, err.status)
    assert.equal("HEAD", err.method)
  end)

  it("gives an empty table for a 2xx with an empty body", function()
    emu:faults{method = "GET", path = "/emptybody$", status = 200, body = ""}
    local body, res = client:get("emptybody")
    assert.same({}, body)
    assert.equal(200, res.status)
  end)

  it("sends a query table once encoded, as the server sees it", function()
    assert(client:get("profileAndServices/profile", {query = {_order = "email desc", _lineCount = 2}}))
    local r = h.logged(emu, "/profileAndServices/profile")[1]
    assert.equal("/" .. emu.org .. "/campaign/profileAndServices/profile?_lineCount=2&_order=email%20desc",
                 r.uri)
  end)

  it("follows a next.href verbatim", function()
    local page = assert(client:get("profileAndServices/profile", {query = {_lineCount = 2}}))
    assert.is_string(page.next.href)
    emu:clear_requests()
    local page2 = assert(client:get(page.next.href))
    assert.equal(2, #page2.content)
    assert.are_not.equal(page.content[1].PKey, page2.content[1].PKey)
    local uri = h.logged(emu)[1].uri
    assert.equal(page.next.href:gsub("^https?://[^/]+", ""), uri)
  end)

  it("keeps one connection alive across calls", function()
    local _, first = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(1, first.new_connections)
    for _ = 1, 20 do
      local _, res = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
      assert.equal(0, res.new_connections)
    end
    local pkey = h.first_pkey(client)
    local _, res = assert(client:patch("profileAndServices/profile/" .. pkey, {phone = "1"}))
    assert.equal(0, res.new_connections)
  end)

  it("reports events without secrets", function()
    local events = {}
    local c = h.client(emu, {on_event = function(ev) events[#events + 1] = ev end})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal(2, #events)
    assert.equal("request", events[1].type)
    assert.equal("GET", events[1].method)
    assert.equal(1, events[1].attempt)
    assert.equal("response", events[2].type)
    assert.equal(200, events[2].status)
    assert.is_number(events[2].elapsed)
    for _, ev in ipairs(events) do
      for _, v in pairs(ev) do
        if type(v) == "string" then
          assert.is_nil(v:find(emu.access_token, 1, true))
          assert.is_nil(v:find(emu.api_key, 1, true))
        end
      end
    end
  end)

  it("ignores an error raised by on_event", function()
    local c = h.client(emu, {on_event = function() error("hook broke") end})
    local body = c:get("profileAndServices/profile", {query = {_lineCount = 1}})
    c:close()
    assert.is_table(body)
  end)

  it("refuses to be used from its own callback", function()
    local inner_err
    local c
    c = h.client(emu, {on_event = function(ev)
      if ev.type == "request" then
        local ok, e = pcall(c.get, c, "profileAndServices/profile")
        if not ok then inner_err = e end
      end
    end})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.matches("client is busy", inner_err)
  end)
end)
