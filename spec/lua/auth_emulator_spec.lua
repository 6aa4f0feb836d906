-- campaign.auth.ims against the emulator's IMS endpoint, with the libcurl client using it.
local campaign = require "campaign"
local emulator = require "emulator"
local auth = require "campaign.auth"
local api = require "campaign.api"

local function ims_calls(emu)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.uri:find("/ims/token/v3", 1, true) then n = n + 1 end
  end
  return n
end

local function api_gets(emu, fragment)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.uri:find(fragment, 1, true) then n = n + 1 end
  end
  return n
end

local function sleep(s)
  local ok, socket = pcall(require, "socket")
  if ok then socket.sleep(s) else os.execute("sleep " .. s) end
end

local function provider_for(emu, extra)
  local opts = { client_id = emu.client_id, client_secret = emu.client_secret,
                 scopes = { "openid", "AdobeID", "campaign_sdk" }, ims_url = emu.ims_url,
                 http = { cafile = emu.cafile } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return auth.ims(opts)
end

local function client_for(emu, provider)
  local opts = emu:client_options { retry_base = 0.01 }
  opts.token = provider
  return campaign.new(opts)
end

describe("auth.ims against the emulator", function()
  local emu

  setup(function() emu = emulator.shared() end)
  before_each(function()
    emu:fresh()
  end)

  it("exchanges the credentials once and the client uses the token", function()
    local provider = provider_for(emu)
    local token, expires_in = provider()
    assert.is_string(token, tostring(expires_in))
    assert.is_true(expires_in > 0)
    local client = client_for(emu, provider)
    for _ = 1, 3 do
      local body, err = api.get_all_profiles(client, { line_count = 1 })
      assert.is_table(body, tostring(err))
    end
    assert.are.equal(1, ims_calls(emu))
    -- the form as IMS received it
    for _, r in ipairs(emu:requests()) do
      if r.uri:find("/ims/token/v3", 1, true) then
        assert.matches("grant_type=client_credentials", r.body, 1, true)
        assert.matches("scope=openid%2CAdobeID%2Ccampaign_sdk", r.body, 1, true)
        local ct = r.headers["content-type"] or r.headers["Content-Type"]
        assert.matches("application/x-www-form-urlencoded", ct, 1, true)
      end
    end
  end)

  it("sends the default scope list when no scopes are given, and IMS accepts it", function()
    local provider = auth.ims { client_id = emu.client_id, client_secret = emu.client_secret,
                                ims_url = emu.ims_url, http = { cafile = emu.cafile } }
    local token, err = provider()
    assert.is_string(token, tostring(err))
    local expected = "scope=" .. auth.DEFAULT_SCOPES:gsub(",", "%%2C")
    local seen = 0
    for _, r in ipairs(emu:requests()) do
      if r.uri:find("/ims/token/v3", 1, true) then
        seen = seen + 1
        assert.matches(expected, r.body, 1, true)
      end
    end
    assert.are.equal(1, seen)
  end)

  it("accepts the token URL itself as ims_url", function()
    local provider = provider_for(emu, { ims_url = emu.ims_url:gsub("/+$", "") .. "/ims/token/v3" })
    local token, err = provider()
    assert.is_string(token, tostring(err))
    for _, r in ipairs(emu:requests()) do
      assert.is_nil(r.uri:find("/ims/token/v3/ims", 1, true))
    end
    assert.are.equal(1, ims_calls(emu))
  end)

  it("fails with kind auth and IMS's error, never the secret, on bad credentials", function()
    local provider = auth.ims { client_id = emu.client_id, client_secret = "wrong-" .. emu.client_secret,
                                ims_url = emu.ims_url, http = { cafile = emu.cafile } }
    local token, err = provider()
    assert.is_nil(token)
    assert.are.equal("auth", err.kind)
    assert.are.equal(400, err.status)
    assert.matches("invalid_client", tostring(err), 1, true)
    assert.is_nil(tostring(err):find(emu.client_secret, 1, true))
    -- and through the client: the call fails with kind auth, nothing sent to ACS
    local client = client_for(emu, provider)
    local body, cerr = api.get_all_profiles(client)
    assert.is_nil(body)
    assert.are.equal("auth", cerr.kind)
    assert.is_nil(tostring(cerr):find(emu.client_secret, 1, true))
    assert.are.equal(0, api_gets(emu, "/profileAndServices/"))
  end)

  it("a 401 mid-run (tokens expired by the server) refreshes once and the call succeeds", function()
    local provider = provider_for(emu)
    local client = client_for(emu, provider)
    assert.is_table((api.get_all_profiles(client, { line_count = 1 })))
    assert.are.equal(1, ims_calls(emu))
    emu:expire_tokens()
    local body, err = api.get_all_profiles(client, { line_count = 1 })
    assert.is_table(body, tostring(err))
    assert.are.equal(2, ims_calls(emu))
    assert.are.equal(3, api_gets(emu, "/profileAndServices/profile"))   -- 1 + (401, retried)
    assert.is_table((api.get_all_profiles(client, { line_count = 1 })))
    assert.are.equal(2, ims_calls(emu))
  end)

  describe("over HTTPS", function()
    local tls
    setup(function() tls = emulator.start { tls = true, profiles = 5 } end)
    teardown(function() if tls then tls:stop() end end)

    it("verifies IMS's certificate against the given cafile, and refuses without it", function()
      assert.matches("^https://", tls.ims_url)
      local token, err = provider_for(tls)()
      assert.is_string(token, tostring(err))
      local untrusted = auth.ims { client_id = tls.client_id, client_secret = tls.client_secret,
                                   ims_url = tls.ims_url, http = { timeout = 5 } }
      local none, terr = untrusted()
      assert.is_nil(none)
      assert.are.equal("auth", terr.kind)
      assert.are.equal("tls", terr.cause)
      assert.is_nil(tostring(terr):find(tls.client_secret, 1, true))
    end)
  end)

  describe("with tokens living 2 s (--token-ttl 2)", function()
    local short
    setup(function() short = emulator.start { token_ttl = 2, profiles = 10 } end)
    teardown(function() if short then short:stop() end end)

    it("caches the token, then refreshes it ahead of expiry: no 401 on the way", function()
      short:clear_requests()
      local provider = provider_for(short)
      local client = client_for(short, provider)
      local _, left = provider()
      assert.is_true(left > 1 and left <= 2, "left " .. tostring(left))
      assert.is_table((api.get_all_profiles(client, { line_count = 1 })))
      assert.is_table((api.get_all_profiles(client, { line_count = 1 })))
      assert.are.equal(1, ims_calls(short))
      sleep(2.1)
      assert.is_table((api.get_all_profiles(client, { line_count = 1 })))
      assert.are.equal(2, ims_calls(short))
      -- one GET per call: the refresh happened before the request, not after a 401
      assert.are.equal(3, api_gets(short, "/profileAndServices/profile"))
    end)
  end)
end)
