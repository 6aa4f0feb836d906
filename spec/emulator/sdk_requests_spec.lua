-- Requests exactly as Adobe's Node SDK (aio-lib-campaign-standard, generated from
-- acs-openapi.json) sends them, and the answers ACS gives: status codes, shapes, hrefs, PKeys,
-- both layers of error bodies. See docs/conformance.md for the table of checks.
local emulator = require "emulator"

local SDK_HEADERS = { ["Content-Type"] = "application/json;charset=utf-8", ["Cache-Control"] = "no-cache" }
local BASE = "profileAndServices/profile"

describe("emulator answering SDK-built requests", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function() emu:reset() end)
  teardown(function() emu:reset() end)

  local function call(method, path, body, opts)
    opts = opts or {}
    opts.headers = opts.headers or SDK_HEADERS
    return emu:call(method, path, body, opts)
  end

  local function root() return emu.base_url .. "/" .. emu.org .. "/campaign/" end

  it("decodes the SDK's doubly encoded descending sort (_order=email%2520desc)", function()
    local _, once = call("GET", BASE .. "?_lineCount=5&_order=email%20desc")
    local status, twice, raw = call("GET", BASE .. "?_lineCount=5&_order=email%2520desc")
    assert.equals(200, status, raw)
    assert.equals(5, #twice.content)
    for i = 1, 5 do assert.equals(once.content[i].PKey, twice.content[i].PKey) end
    assert.is_true(twice.content[1].email >= twice.content[5].email)
    local _, asc = call("GET", BASE .. "?_lineCount=5&_order=email")
    assert.is_true(asc.content[1].email < twice.content[1].email)
  end)

  it("still rejects an _order that is not a sortable field, as ACS does (500 RST)", function()
    local status, body = call("GET", BASE .. "?_order=nosuchfield%2520desc")
    assert.equals(500, status)
    assert.equals(500, body.code)
    assert.matches("^RST%-360011", body.message)
  end)

  it("takes filters as path segments and other options as query parameters", function()
    local status, body = call("GET", BASE .. "/byEmail?email=amy.dakota%40mail.com&_lineCount=10")
    assert.equals(200, status)
    assert.equals(1, #body.content)
    assert.equals("amy.dakota@mail.com", body.content[1].email)
  end)

  it("takes path parameters as swagger-client encodes them (%40 PKey, %2F in a relative URL)", function()
    local _, list = call("GET", BASE .. "?_lineCount=1")
    local pkey = list.content[1].PKey
    local status, record = call("GET", BASE .. "/%40" .. pkey:sub(2))
    assert.equals(200, status)
    assert.equals(pkey, record.PKey)
    local s2, services = call("GET", "profileAndServices%2Fservice")
    assert.equals(200, s2)
    assert.is_table(services.content)
    assert.equals(201, (call("POST", BASE .. "/", { email = "trailing.slash@mail.com" })))
  end)

  it("lists as {content, count = {href}, next = {href}, serverSidePagination} with absolute hrefs",
    function()
      local status, body = call("GET", BASE .. "?_lineCount=2")
      assert.equals(200, status)
      assert.equals(2, #body.content)
      assert.is_true(body.serverSidePagination)
      assert.equals(root(), body.count.href:sub(1, #root()))
      assert.equals(root(), body.next.href:sub(1, #root()))
      for _, rec in ipairs(body.content) do
        assert.equals(root() .. BASE .. "/" .. rec.PKey, rec.href)
        assert.matches("^@[%w_%-]+$", rec.PKey)
      end
      local _, count = call("GET", body.count.href)
      assert.is_number(count.count)
    end)

  it("answers createProfile (POST, charset content type) 201 with the whole record", function()
    local status, body = call("POST", BASE, { email = "sdk.user@mail.com" })
    assert.equals(201, status)
    assert.matches("^@[%w_%-]+$", body.PKey)
    assert.equals("sdk.user@mail.com", body.email)
    assert.is_string(body.created)
  end)

  it("answers updateProfile 200 {PKey, href}; getProfile the bare record; delete 200", function()
    local _, created = call("POST", BASE, { email = "sdk.patch@mail.com" })
    local status, answer = call("PATCH", BASE .. "/" .. created.PKey, { phone = "3301020304" })
    assert.equals(200, status)
    assert.same({ PKey = created.PKey, href = root() .. BASE .. "/" .. created.PKey }, answer)
    local gstatus, record = call("GET", BASE .. "/" .. created.PKey)
    assert.equals(200, gstatus)
    assert.is_nil(record.content)
    assert.equals("3301020304", record.phone)
    assert.equals(created.PKey, record.PKey)
    local dstatus = call("DELETE", BASE .. "/" .. created.PKey)
    assert.equals(200, dstatus)
    assert.equals(404, (call("GET", BASE .. "/" .. created.PKey)))
  end)

  it("answers getTransactionalEvent sent as POST (the SDK's method) like the documented GET", function()
    local _, ev = call("POST", "mc" .. emu.org .. "/EVTcartAbandonment",
      { email = "a@b.c", ctx = { cartAmount = "$ 1" } })
    local status, by_post = call("POST", "mc" .. emu.org .. "/EVTcartAbandonment/" .. ev.PKey)
    assert.equals(200, status)
    local _, by_get = call("GET", "mc" .. emu.org .. "/EVTcartAbandonment/" .. ev.PKey)
    assert.equals(ev.PKey, by_post.PKey)
    assert.equals(by_get.status, by_post.status)
    -- ACS's transactional href is relative (acs-api.md §7)
    assert.is_nil(ev.href:match("^https?://"))
  end)

  it("answers the gateway errors with {error_code, message}", function()
    local s1, b1 = call("GET", BASE, nil, { auth = false, headers = SDK_HEADERS })
    assert.equals(403, s1)
    assert.same({ error_code = "403000", message = "Api Key is required" }, b1)
    local s2, b2 = call("GET", BASE, nil, { api_key = "wrong", headers = SDK_HEADERS })
    assert.equals(403, s2)
    assert.equals("403003", b2.error_code)
    local s3, b3 = call("GET", BASE, nil, { token = "expired", headers = SDK_HEADERS })
    assert.equals(401, s3)
    assert.same({ error_code = "401013", message = "Oauth token is not valid" }, b3)
  end)

  it("answers engine errors with {code, message = 'RST-360011 ...'}", function()
    local _, list = call("GET", BASE .. "?_lineCount=1")
    local status, body = call("PATCH", BASE .. "/" .. list.content[1].PKey, { age = 3 })
    assert.equals(500, status)
    assert.equals(500, body.code)
    assert.matches("^RST%-360011", body.message)
  end)
end)
