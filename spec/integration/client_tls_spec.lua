-- HTTPS: verification on by default, cafile, insecure, HTTP/2 negotiation.
local campaign = require "campaign"
local emulator = require "emulator"

describe("TLS", function()
  local tls

  setup(function() tls = emulator.start{tls = true, http2 = true} end)
  teardown(function() if tls then tls:stop() end end)

  local function client(extra)
    local opts = tls:client_options{retries = 0, timeout = 5}
    for k, v in pairs(extra or {}) do opts[k] = v end
    if opts.cafile == false then opts.cafile = nil end -- false: the system CA store only
    return campaign.new(opts)
  end

  it("talks HTTPS to the emulator with its CA as cafile", function()
    assert.matches("^https://", tls.base_url)
    local c = client()
    local body, res = c:get("profileAndServices/profile", {query = {_lineCount = 1}})
    c:close()
    assert.equal(1, #body.content)
    assert.equal(200, res.status)
  end)

  it("negotiates HTTP/2 when offered and keeps the connection", function()
    local c = client()
    local _, first = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    local _, second = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal("2", first.http_version)
    assert.equal(1, first.new_connections)
    assert.equal(0, second.new_connections)
  end)

  it("multiplexes a batch over one HTTP/2 connection", function()
    local c = client()
    local requests = {}
    for i = 1, 12 do requests[i] = {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}}} end
    local results = c:batch(requests, {concurrency = 6})
    c:close()
    local opened = 0
    for _, r in ipairs(results) do
      assert.equal(200, r.status)
      opened = opened + r.new_connections
    end
    assert.equal(1, opened)
  end)

  it("works over HTTP/1.1 with http2 = false", function()
    local c = client{http2 = false}
    local _, res = assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal("1.1", res.http_version)
  end)

  it("refuses a server whose CA it does not know: kind tls, not retried", function()
    local c = client{cafile = false, retries = 2}
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("tls", err.kind)
    assert.equal(1, err.attempts)
    assert.matches("%-> tls: ", tostring(err))
  end)

  it("refuses when cafile cannot be read: kind tls", function()
    local c = client{cafile = "/nonexistent/ca.pem"}
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal("tls", err.kind)
  end)

  it("skips verification only with insecure = true", function()
    local c = client{cafile = false, insecure = true}
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
  end)
end)
