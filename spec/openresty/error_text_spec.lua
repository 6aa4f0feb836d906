-- campaign.ngx makes error text as the C client does (docs/errors.md "Text from the server"):
-- valid UTF-8, cut on a character boundary, the client's secrets redacted before any cut; sets
-- err.sent on transport failures; refuses plain http to a host that is not loopback.
local emulator = require "emulator"
local harness = require "openresty.harness"

-- The same 1,203-character token as spec/integration/client_error_text_spec.lua.
local function long_token()
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
  local out = {}
  for i = 1, 1203 do
    local k = (i * 37 + math.floor(i / 7)) % #alphabet + 1
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

local function assert_no_piece(text, secret, what)
  for i = 1, #secret - 15 do
    local piece = secret:sub(i, i + 15)
    assert.is_nil(text:find(piece, 1, true), what .. " holds the secret's characters "
      .. i .. ".." .. (i + 15) .. ": " .. text:sub(1, 200))
  end
end

describe("campaign.ngx error text", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1, upstream = emu.base_url, read_timeout = "1s" }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
  end)

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  -- GET path with retries = 0; the message, whether campaign.encode takes it, tostring, body.
  local GET = [[
    local _, err = client{ retries = 0, token = params.token }:get(params.path)
    local encodes = pcall(campaign.encode, err.message)
    return { err = err, encodes = encodes, text = tostring(err),
      body_encodes = type(err.body) ~= "string" or pcall(campaign.encode, err.body) }
  ]]

  it("a Latin-1 text body: a valid UTF-8 message that keeps the readable text", function()
    emu:faults { { method = "GET", path = "/latin1$", status = 500,
      body = "Erreur interne: donn\xe9es invalides" } }
    local r = eval(GET, { path = "latin1" })
    assert.equal(500, r.err.status)
    assert.is_true(r.encodes)
    assert.equal("Erreur interne: donn\xef\xbf\xbdes invalides", r.err.message)
  end)

  it("a 1,023-byte ASCII text ending with é: cut before the é", function()
    emu:faults { { method = "GET", path = "/long$", status = 500, body = ("a"):rep(1023) .. "é" } }
    local r = eval(GET, { path = "long" })
    assert.is_true(r.encodes)
    assert.equal(("a"):rep(1023), r.err.message)
  end)

  it("a body cut at the excerpt's edge inside a character keeps err.body on a boundary", function()
    emu:faults { { method = "GET", path = "/excerpt$", status = 500, body = "x" .. ("é"):rep(3000) } }
    local r = eval(GET, { path = "excerpt" })
    assert.is_true(r.body_encodes)
    assert.equal(4095, #r.err.body)
  end)

  it("a 502 whose HTML title echoes a 1,203-character token: no 16 characters of it remain", function()
    local token = long_token()
    emu:faults { { method = "GET", path = "/echo$", status = 502,
      body = "<html><head><title>Bad gateway: Authorization: Bearer " .. token
        .. "</title></head><body>" .. token .. "</body></html>" } }
    local r = eval(GET, { path = "echo", token = token })
    assert.equal(502, r.err.status)
    assert.equal("Bad gateway: Authorization: Bearer <redacted>", r.err.message)
    assert_no_piece(r.err.message, token, "err.message")
    assert_no_piece(r.text, token, "tostring(err)")
    assert_no_piece(r.err.body, token, "err.body")
  end)

  it("a token cut by the body excerpt (its start only in the first 4,096 bytes) is redacted", function()
    local token = long_token()
    emu:faults { { method = "GET", path = "/edge$", status = 502,
      body = ("<!-- pad -->"):rep(290) .. "<title>" .. ("t"):rep(10) .. " " .. token .. "</title>" } }
    local r = eval(GET, { path = "edge", token = token })
    assert.equal(("t"):rep(10) .. " <redacted>", r.err.message)
    assert_no_piece(r.err.body, token, "err.body")
  end)

  it("err.sent: false when nothing was reached, true after the request went out", function()
    local closed = "http://127.0.0.1:" .. harness.free_port()
    emu:faults {
      { method = "POST", path = "/profile$", drop = true, times = 1 },
      { method = "GET", path = "/profile$", delay_ms = 2500, times = 1 },
      { method = "GET", path = "/gone$", status = 503, times = 1 },
    }
    local r = eval([[
      local out = {}
      _, out.refused = client{ base_url = params.closed, retries = 0 }:post("profileAndServices/profile", {})
      local c = client{ retries = 0, timeout = 1 } -- cosocket read timeout (capture: proxy_read_timeout)
      _, out.dropped = c:post("profileAndServices/profile", { email = "dropped@example.com" })
      _, out.slow = c:get("profileAndServices/profile")
      _, out.http = c:get("gone")
      return out
    ]], { closed = closed })
    assert.equal("network", r.refused.kind)
    assert.is_false(r.refused.sent)
    assert.equal("network", r.dropped.kind)
    assert.is_true(r.dropped.sent)
    assert.equal("timeout", r.slow.kind)
    assert.is_true(r.slow.sent)
    assert.equal("http", r.http.kind)
    assert.is_nil(r.http.sent)
  end)

  it("refuses plain http to a host that is not loopback unless allow_http = true", function()
    local r = eval([[
      local function try(opts)
        opts.org, opts.api_key, opts.token = "acme", "k", "t"
        local ok, e = pcall(cngx.new, opts)
        return ok and "ok" or e
      end
      return {
        remote = try{ base_url = "http://example.com" },
        allowed = try{ base_url = "http://example.com", allow_http = true },
        loopback = try{ base_url = "http://127.0.0.1:9" },
        localhost = try{ base_url = "http://localhost:9" },
        v6 = try{ base_url = "http://[::1]:9" },
        tls = try{ base_url = "https://example.com" },
        bad = try{ base_url = "http://example.com", allow_http = "yes" },
      }
    ]])
    assert.matches("option 'base_url' is plain http:// to a host that is not loopback", r.remote, 1, true)
    assert.equal("ok", r.allowed)
    assert.equal("ok", r.loopback)
    assert.equal("ok", r.localhost)
    assert.equal("ok", r.v6)
    assert.equal("ok", r.tls)
    assert.matches("option 'allow_http' must be a boolean", r.bad, 1, true)
  end)
end)
