-- IMS token endpoint and the gateway checks in front of every API call.
local emulator = require "emulator"

local function form(t)
  local parts = {}
  for _, kv in ipairs(t) do
    parts[#parts + 1] = kv[1] .. "=" .. kv[2]
  end
  return table.concat(parts, "&")
end

describe("emulator auth", function()
  local emu
  setup(function()
    emu = emulator.shared()
    emu:reset()
  end)
  teardown(function() emu:reset() end)

  local PATH = "profileAndServices/profile?_lineCount=1"

  describe("gateway", function()
    it("accepts the printed access token with the API key", function()
      assert.equals(200, (emu:call("GET", PATH)))
    end)

    it("answers 403 403000 without an API key", function()
      local status, body = emu:call("GET", PATH, nil, { headers = { ["X-Api-Key"] = false } })
      assert.equals(403, status)
      assert.same({ error_code = "403000", message = "Api Key is required" }, body)
    end)

    it("answers 403 403003 with a wrong API key", function()
      local status, body = emu:call("GET", PATH, nil, { api_key = "not-the-key" })
      assert.equals(403, status)
      assert.equals("403003", body.error_code)
    end)

    it("answers 401 401013 without, with an unknown, or with a malformed token", function()
      for _, auth in ipairs { false, "Bearer nope", "Basic abc", "Bearer" } do
        local status, body = emu:call("GET", PATH, nil, { headers = { Authorization = auth } })
        assert.equals(401, status, tostring(auth))
        assert.same({ error_code = "401013", message = "Oauth token is not valid" }, body)
      end
    end)

    it("answers 400 with the gateway message for another tenant in the URL", function()
      local status, body = emu:call("GET", "/otherorg/campaign/profileAndServices/profile")
      assert.equals(400, status)
      assert.matches("Check your URI", body.message)
    end)
  end)

  describe("IMS", function()
    local function token_request(fields)
      return emu:call("POST", emu.ims_url .. "/ims/token/v3", nil, { auth = false, form = form(fields) })
    end

    it("issues a bearer token for the right client credentials, usable at once", function()
      local status, body = token_request {
        { "grant_type", "client_credentials" }, { "client_id", emu.client_id },
        { "client_secret", emu.client_secret }, { "scope", "openid,AdobeID,campaign_sdk" } }
      assert.equals(200, status)
      assert.equals("bearer", body.token_type)
      assert.equals(86399, body.expires_in)
      assert.is_string(body.access_token)
      assert.are_not.equal(emu.access_token, body.access_token)
      assert.equals(200, (emu:call("GET", PATH, nil, { token = body.access_token })))
    end)

    it("answers 400 invalid_client for a wrong client_id or client_secret", function()
      for _, fields in ipairs {
        { { "grant_type", "client_credentials" }, { "client_id", "nope" }, { "client_secret",
          emu.client_secret } },
        { { "grant_type", "client_credentials" }, { "client_id", emu.client_id }, { "client_secret",
          "nope" } },
      } do
        local status, body = token_request(fields)
        assert.equals(400, status)
        assert.equals("invalid_client", body.error)
        assert.is_string(body.error_description)
      end
    end)

    it("answers 400 for another grant type", function()
      local status, body = token_request { { "grant_type", "password" }, { "client_id", emu.client_id },
        { "client_secret", emu.client_secret } }
      assert.equals(400, status)
      assert.equals("unsupported_grant_type", body.error)
    end)

    it("never echoes the client secret", function()
      local _, _, raw = token_request { { "grant_type", "client_credentials" }, { "client_id",
        emu.client_id },
        { "client_secret", emu.client_secret .. "x" } }
      assert.is_nil(raw:find(emu.client_secret, 1, true))
    end)
  end)

  describe("token expiry", function()
    it("POST /_emulator/tokens/expire invalidates every current token; reset restores the printed one",
      function()
      local fresh = emu:new_token()
      assert.equals(200, (emu:call("GET", PATH, nil, { token = fresh })))
      emu:expire_tokens()
      assert.equals(401, (emu:call("GET", PATH)))
      assert.equals(401, (emu:call("GET", PATH, nil, { token = fresh })))
      emu:reset()
      assert.equals(200, (emu:call("GET", PATH)))
    end)

    it("tokens expire after --token-ttl seconds", function()
      local e = emulator.start{ token_ttl = 1, profiles = 1 }
      finally(function() e:stop() end)
      local status, body = e:call("POST", "/ims/token/v3", nil, { auth = false,
        form = form { { "grant_type", "client_credentials" }, { "client_id", e.client_id },
          { "client_secret", e.client_secret } } })
      assert.equals(200, status)
      assert.equals(1, body.expires_in)
      assert.equals(200, (e:call("GET", PATH, nil, { token = body.access_token })))
      emulator.run("sleep 1.3")
      assert.equals(401, (e:call("GET", PATH, nil, { token = body.access_token })))
      assert.equals(401, (e:call("GET", PATH)))
    end)
  end)
end)
