-- What an error copies from a server's answer (docs/errors.md "Text from the server"): valid
-- UTF-8 whatever the server sent, cut on a character boundary, the client's secrets redacted
-- before any cut; and err.sent on transport failures (docs/errors.md "Transport failures").
-- The emulator's faults are the scriptable loopback server here.
local campaign = require "campaign"
local h = require "integration.client_helper"

-- campaign.encode raises on invalid UTF-8 ("invalid UTF-8 in string"): the report writer's test.
local function assert_utf8(s)
  assert.is_string(s)
  local ok, e = pcall(campaign.encode, s)
  assert.is_true(ok, tostring(e))
  if utf8 then assert.is_not_nil(utf8.len(s), "not valid UTF-8") end -- Lua 5.4
end

-- A 1,203-character bearer token (the size of the red team's), of token characters only.
local function long_token()
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
  local out = {}
  for i = 1, 1203 do
    local k = (i * 37 + math.floor(i / 7)) % #alphabet + 1
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

-- Fails when any 16-character piece of secret appears in text.
local function assert_no_piece(text, secret, what)
  for i = 1, #secret - 15 do
    local piece = secret:sub(i, i + 15)
    assert.is_nil(text:find(piece, 1, true), what .. " holds the secret's characters "
      .. i .. ".." .. (i + 15) .. ": " .. text:sub(1, 200))
  end
end

describe("error messages from a server's answer", function()
  local emu
  before_each(function() emu = h.fresh() end)

  local function get(path, extra)
    local c = h.client(emu, extra or {retries = 0})
    local body, err = c:get(path)
    c:close()
    assert.is_nil(body)
    return err
  end

  it("a Latin-1 text body: the message is valid UTF-8 and keeps the readable text", function()
    emu:faults{{method = "GET", path = "/latin1$", status = 500,
      body = "Erreur interne: donn\233es invalides"}}
    local err = get("latin1")
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert_utf8(err.message)
    assert.equal("Erreur interne: donn\239\191\189es invalides", err.message) -- U+FFFD
    assert_utf8(tostring(err))
  end)

  it("a 1,023-byte ASCII text ending with é: cut before the é, not inside it", function()
    emu:faults{{method = "GET", path = "/long$", status = 500, body = ("a"):rep(1023) .. "é"}}
    local err = get("long")
    assert_utf8(err.message)
    assert.equal(("a"):rep(1023), err.message)
  end)

  it("a long UTF-8 title: cut at 1,024 bytes at most, on a character boundary", function()
    emu:faults{{method = "GET", path = "/title$", status = 502,
      body = "<html><head><title>x" .. ("é"):rep(700) .. "</title></head></html>"}}
    local err = get("title")
    assert_utf8(err.message)
    assert.equal("x" .. ("é"):rep(511), err.message) -- 1,023 bytes: the next é would pass 1,024
  end)

  it("a request id header that is not UTF-8 is made valid too", function()
    emu:faults{{method = "GET", path = "/rid$", status = 503, body = "busy",
      headers = {["X-Request-Id"] = "req-\255\254-1"}}}
    local err = get("rid")
    assert_utf8(err.request_id)
    assert.equal("req-\239\191\189\239\191\189-1", err.request_id)
  end)

  it("a body cut at the excerpt's edge inside a character keeps err.body on a boundary", function()
    emu:faults{{method = "GET", path = "/excerpt$", status = 500, body = "x" .. ("é"):rep(3000)}}
    local err = get("excerpt")
    assert_utf8(err.body)
    assert.equal(4095, #err.body)
  end)
end)

describe("secrets in error messages", function()
  local emu
  before_each(function() emu = h.fresh() end)

  it("a 502 whose HTML title echoes a 1,203-character token: no 16 characters of it remain", function()
    local token = long_token()
    emu:faults{{method = "GET", path = "/echo$", status = 502,
      body = "<html><head><title>Bad gateway: Authorization: Bearer " .. token
        .. "</title></head><body>" .. token .. "</body></html>"}}
    local c = h.client(emu, {retries = 0, token = token})
    local body, err = c:get("echo")
    c:close()
    assert.is_nil(body)
    assert.equal(502, err.status)
    assert.equal("Bad gateway: Authorization: Bearer <redacted>", err.message)
    assert_no_piece(err.message, token, "err.message")
    assert_no_piece(tostring(err), token, "tostring(err)")
    assert_no_piece(err.body, token, "err.body")
  end)

  it("a token cut by the body excerpt (its start only in the first 4,096 bytes) is redacted", function()
    local token = long_token()
    -- the title starts 3,500 bytes in: the excerpt the title is read from ends 596 bytes into the token
    emu:faults{{method = "GET", path = "/edge$", status = 502,
      body = ("<!-- pad -->"):rep(290) .. "<title>" .. ("t"):rep(10) .. " " .. token .. "</title>"}}
    local c = h.client(emu, {retries = 0, token = token})
    local _, err = c:get("edge")
    c:close()
    assert.equal(("t"):rep(10) .. " <redacted>", err.message)
    assert_no_piece(err.body, token, "err.body")
  end)

  it("redacts the API key echoed in a plain-text body", function()
    emu:faults{{method = "GET", path = "/key$", status = 403, body = "key " .. emu.api_key .. " refused"}}
    local c = h.client(emu, {retries = 0})
    local _, err = c:get("key")
    c:close()
    assert.equal("key <redacted> refused", err.message)
    assert.is_nil(err.body:find(emu.api_key, 1, true))
  end)

  it("redacts a secret echoed in a JSON error's message", function()
    emu:faults{{method = "GET", path = "/json$", status = 401,
      body = {code = 401, message = "token " .. emu.access_token .. " expired"}}}
    local c = h.client(emu, {retries = 0})
    local _, err = c:get("json")
    c:close()
    assert.equal("token <redacted> expired", err.message)
  end)
end)

describe("err.sent on transport failures", function()
  local emu
  before_each(function() emu = h.fresh() end)

  it("connection refused: sent == false (the request certainly never left)", function()
    local c = campaign.new{org = "acme", api_key = "k", token = "t", retries = 0,
                           base_url = "http://127.0.0.1:1"}
    local _, err = c:post("profileAndServices/profile", {email = "x@example.com"})
    c:close()
    assert.equal("network", err.kind)
    assert.is_false(err.sent)
  end)

  it("a server that reads the request and closes without answering: sent == true", function()
    emu:faults{{method = "POST", path = "/profile$", drop = true}}
    local c = h.client(emu, {retries = 0})
    local _, err = c:post("profileAndServices/profile", {email = "dropped@example.com"})
    c:close()
    assert.equal("network", err.kind)
    assert.is_true(err.sent)
  end)

  it("a server that stalls past the timeout: kind timeout, sent == true", function()
    emu:faults{{method = "GET", path = "/profile$", delay_ms = 1500}}
    local c = h.client(emu, {retries = 0, timeout = 0.3})
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
  end)

  it("an http error has no sent field (the answer says what happened)", function()
    emu:faults{{method = "GET", path = "/gone$", status = 503}}
    local c = h.client(emu, {retries = 0})
    local _, err = c:get("gone")
    c:close()
    assert.equal("http", err.kind)
    assert.is_nil(err.sent)
  end)
end)
