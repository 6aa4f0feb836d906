-- campaign.auth.ims with a fake HTTP client and an injected clock.
local auth = require "campaign.auth"
local fake = require "lua.fake_client"

local SECRET = "s3cr3t+/=value"

-- An IMS answering each token request with a new token; `answers` may override the body.
local function ims(answers)
  local n = 0
  return fake.new(function(c)
    n = n + 1
    local a = answers and answers[n]
    if type(a) == "function" then return a(c) end
    if a then return a[1], a[2] end
    return '{"access_token":"tok' .. n .. '","token_type":"bearer","expires_in":100}', { status = 200 }
  end)
end

local function provider_with(http, extra)
  local now = 1000
  local opts = {
    client_id = "cid", client_secret = SECRET, scopes = { "openid", "AdobeID", "campaign_sdk" },
    ims_url = "http://127.0.0.1:9/", http = http, clock = function() return now end,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return auth.ims(opts), function(t) now = t end
end

local function decode_form(s)
  local t = {}
  for k, v in s:gmatch("([^&=]+)=([^&]*)") do
    t[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return t
end

describe("auth.ims", function()
  it("POSTs the client_credentials form to <ims_url>/ims/token/v3 and returns the token", function()
    local http = ims()
    local provider = provider_with(http)
    local token, expires_in = provider()
    assert.are.equal("tok1", token)
    assert.are.equal(90, expires_in)   -- 100 s minus the default 10% margin
    local c = http.calls[1]
    assert.are.equal("POST", c.method)
    assert.are.equal("http://127.0.0.1:9/ims/token/v3", c.path)
    assert.is_true(c.opts.raw)
    assert.are.equal("application/x-www-form-urlencoded", c.opts.headers["Content-Type"])
    assert.are.same({ grant_type = "client_credentials", client_id = "cid", client_secret = SECRET,
                      scope = "openid,AdobeID,campaign_sdk" }, decode_form(c.body))
    assert.is_nil(c.body:find(SECRET, 1, true))   -- form-encoded, not raw
  end)

  it("raises a misuse at the line that called auth.ims, whichever option is wrong", function()
    for _, opts in ipairs {
      { client_id = 5, client_secret = "s" },
      { client_id = "c", client_secret = "s", scopes = "a,,b" },
      { client_id = "c", client_secret = "s", scopes = {} },
      { client_id = "c", client_secret = "s", scopes = { 1 } },
    } do
      local ok, err = pcall(function() local _ = auth.ims(opts) end)
      assert.is_false(ok)
      assert.matches("^spec/lua/auth_spec%.lua:%d+: campaign%.auth%.ims: option '", err)
    end
  end)

  it("accepts scopes as a comma-separated string", function()
    local http = ims()
    local provider = provider_with(http, { scopes = "openid,campaign_sdk" })
    provider()
    assert.are.equal("openid,campaign_sdk", decode_form(http.calls[1].body).scope)
  end)

  describe("scope", function()
    local DOCUMENTED = "openid,AdobeID,campaign_sdk,additional_info.projectedProductContext,"
      .. "campaign_config_server_general,deliverability_service_general"

    it("defaults to the documented list (docs/acs-api.md section 2) when scopes is not given", function()
      assert.are.equal(DOCUMENTED, auth.DEFAULT_SCOPES)
      local http = ims()
      local provider = auth.ims { client_id = "cid", client_secret = SECRET, http = http,
                                  ims_url = "http://127.0.0.1:9" }
      assert.are.equal("tok1", (provider()))
      local form = decode_form(http.calls[1].body)
      assert.are.same({ grant_type = "client_credentials", client_id = "cid", client_secret = SECRET,
                        scope = DOCUMENTED }, form)
      -- commas percent-encoded like every form value
      assert.matches("&scope=openid%2CAdobeID%2Ccampaign_sdk%2Cadditional_info.projectedProductContext",
                     http.calls[1].body, 1, true)
    end)

    it("scopes = false sends no scope at all", function()
      local http = ims()
      local provider = provider_with(http, { scopes = false })
      assert.are.equal("tok1", (provider()))
      local body = http.calls[1].body
      assert.are.same({ grant_type = "client_credentials", client_id = "cid", client_secret = SECRET },
                      decode_form(body))
      assert.is_nil(body:find("scope", 1, true))
    end)

    it("joins a list, and drops the blanks around each scope of a string or a list", function()
      for _, case in ipairs {
        { "openid, AdobeID , campaign_sdk", "openid,AdobeID,campaign_sdk" },
        { { "openid", " AdobeID" }, "openid,AdobeID" },
        { { "openid,AdobeID", "campaign_sdk" }, "openid,AdobeID,campaign_sdk" },
        { "campaign_sdk", "campaign_sdk" },
      } do
        local http = ims()
        provider_with(http, { scopes = case[1] })()
        assert.are.equal(case[2], decode_form(http.calls[1].body).scope)
      end
    end)

    it("raises on empty, blank-separated or non-string scopes, naming false", function()
      for _, bad in ipairs { "", " ", {}, "openid,,AdobeID", "openid,", { "openid", "" },
                             "openid AdobeID", { 1 }, { x = "openid" }, true, 3 } do
        local ok, msg = pcall(auth.ims, { client_id = "cid", client_secret = SECRET, scopes = bad })
        assert.is_false(ok, tostring(bad))
        assert.matches("option 'scopes'", tostring(msg), 1, true)
        assert.is_nil(tostring(msg):find(SECRET, 1, true))
      end
      local _, msg = pcall(auth.ims, { client_id = "cid", client_secret = SECRET, scopes = "" })
      assert.matches("false", msg, 1, true)
    end)
  end)

  it("takes ims_url as a base URL or as the token URL itself, trailing slash or not", function()
    local keys = {}
    local cache = {
      get = function(key) keys[#keys + 1] = key end,
      set = function() end,
    }
    for _, url in ipairs {
      "https://ims-na1.adobelogin.com", "https://ims-na1.adobelogin.com/",
      "https://ims-na1.adobelogin.com/ims/token/v3", "https://ims-na1.adobelogin.com/ims/token/v3/",
    } do
      local http = ims()
      provider_with(http, { ims_url = url, cache = cache })()
      assert.are.equal("https://ims-na1.adobelogin.com/ims/token/v3", http.calls[1].path, url)
    end
    -- one token URL, one cache key
    for i = 2, #keys do assert.are.equal(keys[1], keys[i]) end
    assert.matches("^campaign%.ims|https://ims%-na1%.adobelogin%.com|cid|", keys[1])
    -- a base with a path prefix keeps it
    local http = ims()
    provider_with(http, { ims_url = "http://127.0.0.1:9/proxy/" })()
    assert.are.equal("http://127.0.0.1:9/proxy/ims/token/v3", http.calls[1].path)
    local http2 = ims()
    provider_with(http2, { ims_url = "http://127.0.0.1:9/proxy/ims/token/v3" })()
    assert.are.equal("http://127.0.0.1:9/proxy/ims/token/v3", http2.calls[1].path)
  end)

  it("caches the token and refreshes it ahead of expiry", function()
    local http = ims()
    local provider, set_time = provider_with(http)
    assert.are.equal("tok1", (provider()))
    set_time(1089)
    local token, left = provider()
    assert.are.equal("tok1", token)
    assert.are.equal(1, left)
    assert.are.equal(1, #http.calls)
    set_time(1090)
    assert.are.equal("tok2", (provider()))
    assert.are.equal(2, #http.calls)
  end)

  it("fetches a new token when called with force_refresh = true", function()
    local http = ims()
    local provider = provider_with(http)
    assert.are.equal("tok1", (provider()))
    assert.are.equal("tok2", (provider(true)))
    assert.are.equal("tok2", (provider()))
    assert.are.equal(2, #http.calls)
  end)

  it("honours refresh_margin and caps the default margin at one hour", function()
    local provider = provider_with(ims(), { refresh_margin = 30 })
    local _, left = provider()
    assert.are.equal(70, left)
    local day = ims { { '{"access_token":"t","expires_in":86399}', { status = 200 } } }
    local _, left2 = provider_with(day)()
    assert.are.equal(86399 - 3600, left2)
  end)

  it("reads legacy millisecond expires_in and decoded (table) answers", function()
    local http = ims { { { access_token = "t", expires_in = 86399992 }, { status = 200 } } }
    local _, left = provider_with(http)()
    assert.is_true(math.abs(left - (86399.992 - 3600)) < 1e-6)
    assert.are.equal(86399, auth.normalize_expires_in("86399"))
    assert.are.equal(86399.992, auth.normalize_expires_in(86399992))
    assert.is_nil(auth.normalize_expires_in("soon"))
  end)

  it("fails with kind auth and IMS's error, never the secret", function()
    local http = ims { function()
      return nil, { kind = "http", status = 400, code = nil,
        body = { error = "invalid_client", error_description = "bad secret " .. SECRET } }
    end }
    local token, err = provider_with(http)()
    assert.is_nil(token)
    assert.are.equal("auth", err.kind)
    assert.are.equal(400, err.status)
    assert.are.equal("invalid_client", err.code)
    assert.matches("invalid_client", err.message, 1, true)
    assert.is_nil(tostring(err):find(SECRET, 1, true))
    assert.is_nil(err.message:find(SECRET, 1, true))
  end)

  it("reports an OAuth error answered with 200 (invalid_scope) like a 400's, never the secret", function()
    local description = "scope campaign_sdk is not allowed for client " .. SECRET
    for _, answer in ipairs {
      { error = "invalid_scope", error_description = description },                    -- decoded
      require("campaign").encode { error = "invalid_scope", error_description = description }, -- raw
    } do
      local http = ims { { answer, { status = 200 } } }
      local token, err = provider_with(http)()
      assert.is_nil(token)
      assert.are.equal("auth", err.kind)
      assert.are.equal(200, err.status)
      assert.are.equal("invalid_scope", err.code)
      assert.matches("IMS token exchange failed: 200 invalid_scope: scope campaign_sdk is not allowed",
                     err.message, 1, true)
      assert.is_nil(err.message:find(SECRET, 1, true))
      assert.is_nil(tostring(err):find(SECRET, 1, true))
    end
    -- only error, or only error_description
    local _, e1 = provider_with(ims { { '{"error":"invalid_scope"}', { status = 200 } } })()
    assert.are.equal("IMS token exchange failed: 200 invalid_scope", e1.message)
    local _, e2 = provider_with(ims { { '{"error_description":"no"}', { status = 200 } } })()
    assert.are.equal("IMS token exchange failed: 200 error: no", e2.message)
    assert.is_nil(e2.code)
  end)

  it("words a 400 and a 200 OAuth error the same way", function()
    local body = { error = "invalid_scope", error_description = "bad scope" }
    local _, e400 = provider_with(ims { function()
      return nil, { kind = "http", status = 400, body = body, message = "400 Bad Request" }
    end })()
    local _, e200 = provider_with(ims { { body, { status = 200 } } })()
    assert.are.equal("IMS token exchange failed: 400 invalid_scope: bad scope", e400.message)
    assert.are.equal("IMS token exchange failed: 200 invalid_scope: bad scope", e200.message)
    assert.are.equal(e400.code, e200.code)
    -- a 400 whose body is raw JSON text
    local _, eraw = provider_with(ims { function()
      return nil, { kind = "http", status = 400, body = '{"error":"invalid_client","error_description":"x"}' }
    end })()
    assert.are.equal("IMS token exchange failed: 400 invalid_client: x", eraw.message)
    assert.are.equal("invalid_client", eraw.code)
  end)

  it("fails with kind auth on a network error, a non-JSON or a token-less answer", function()
    local cases = {
      function() return nil, { kind = "network", message = "Couldn't connect" } end,
      function() return "<html>gateway</html>", { status = 200 } end,
      function() return '{"token_type":"bearer"}', { status = 200 } end,
    }
    for _, case in ipairs(cases) do
      local token, err = provider_with(ims { case })()
      assert.is_nil(token)
      assert.are.equal("auth", err.kind)
      assert.is_nil(err.message:find(SECRET, 1, true))
    end
  end)

  it("keeps the token in a pluggable cache whose key holds no secret", function()
    local store, keys = {}, {}
    local cache = {
      get = function(key) keys[#keys + 1] = key local e = store[key] if e then return e[1], e[2] end end,
      set = function(key, token, valid_until) store[key] = { token, valid_until } end,
    }
    local http = ims()
    local p1 = provider_with(http, { cache = cache })
    local p2 = provider_with(http, { cache = cache })
    assert.are.equal("tok1", (p1()))
    assert.are.equal("tok1", (p2()))   -- a second provider (another worker) reuses it
    assert.are.equal(1, #http.calls)
    for _, k in ipairs(keys) do assert.is_nil(k:find(SECRET, 1, true)) end
  end)

  it("with lock/unlock, a refresh done by another worker meanwhile is reused", function()
    local store, events = {}, {}
    local cache = {
      get = function(key) local e = store[key] if e then return e[1], e[2] end end,
      set = function(key, token, valid_until) store[key] = { token, valid_until } end,
      lock = function(key)
        events[#events + 1] = "lock"
        -- while this worker waited, another stored a fresh token
        store[key] = { "other-worker-token", 5000 }
        return true
      end,
      unlock = function() events[#events + 1] = "unlock" end,
    }
    local http = ims()
    local provider = provider_with(http, { cache = cache })
    assert.are.equal("other-worker-token", (provider()))
    assert.are.equal(0, #http.calls)
    assert.are.same({ "lock", "unlock" }, events)
  end)

  it("unlocks after a failed exchange and reports a lock failure as kind auth", function()
    local unlocked = 0
    local cache = {
      get = function() end, set = function() end,
      lock = function() return true end, unlock = function() unlocked = unlocked + 1 end,
    }
    local http = ims { function() return nil, { kind = "timeout", message = "slow" } end }
    local token, err = provider_with(http, { cache = cache })()
    assert.is_nil(token)
    assert.are.equal("auth", err.kind)
    assert.are.equal(1, unlocked)
    cache.lock = function() return nil, "timeout" end
    local t2, e2 = provider_with(ims(), { cache = cache })()
    assert.is_nil(t2)
    assert.are.equal("auth", e2.kind)
  end)

  it("inside OpenResty, reads the time from ngx.now by default", function()
    local now = 500
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", { now = function() return now end, update_time = function() end })
    finally(function() rawset(_G, "ngx", saved) end)
    local http = ims()
    local provider = auth.ims { client_id = "cid", client_secret = SECRET, http = http,
                                ims_url = "http://127.0.0.1:9" }
    assert.are.equal("tok1", (provider()))
    now = 589
    assert.are.equal("tok1", (provider()))
    now = 591
    assert.are.equal("tok2", (provider()))
  end)

  it("raises on bad options, without the secret in the message", function()
    local base = { client_id = "cid", client_secret = SECRET }
    local function with(k, v)
      local o = {}
      for kk, vv in pairs(base) do o[kk] = vv end
      o[k] = v
      return o
    end
    for _, o in ipairs {
      with("client_id", nil), with("client_secret", 42), with("scopes", 3), with("ims_url", "ftp://x"),
      with("refresh_margin", -1), with("clock", "now"), with("cache", { get = print }),
      with("timeout", 3),
    } do
      local ok, msg = pcall(auth.ims, o)
      assert.is_false(ok)
      assert.is_nil(tostring(msg):find(SECRET, 1, true))
    end
    assert.has_error(function() auth.ims() end)
  end)
end)
