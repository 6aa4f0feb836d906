-- Discrepancies found by the session-2 audit (clients built from the ACS docs and from
-- Adobe's Node SDK and its e2e tests): each case failed before its fix.
local emulator = require "emulator"

local PROFILES = "profileAndServices/profile"

describe("emulator audit fixes", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function() emu:reset() end)
  teardown(function() emu:reset() end)

  local function get(path, opts) return emu:call("GET", path, nil, opts) end
  local function amy()
    local _, body = get(PROFILES .. "/byEmail?email=amy.dakota%40mail.com")
    return body.content[1]
  end

  local function expect_engine_error(status, body, text)
    assert.equals(500, status)
    assert.matches("^RST%-360011", body.message)
    assert.is_truthy(body.message:find(text, 1, true), body.message)
  end

  describe("string lengths (SDK e2e create -> update -> get)", function()
    it("stores a firstName longer than its 30-character length as sent", function()
      local status, created = emu:call("POST", PROFILES, { email = "acssdk.e2e@example.com",
        firstName = "ACSSDK_Test_First_deadbeef" })
      assert.equals(201, status)
      local value = "UPDATED_ACSSDK_Test_First_deadbeef"
      assert.equals(34, #value)
      local p_status, p_body = emu:call("PATCH", PROFILES .. "/" .. created.PKey, { firstName = value })
      assert.equals(200, p_status)
      assert.equals(created.PKey, p_body.PKey)
      assert.is_string(p_body.href)
      local _, again = get(PROFILES .. "/" .. created.PKey)
      assert.equals(value, again.firstName)
      -- the metadata still tells the data model's length
      local _, meta = get("profileAndServices/resourceType/profile")
      assert.equals("30", meta.content.firstName.length)
    end)

    it("stores multi-byte text as sent (16 x 'é' is 16 characters, 32 bytes)", function()
      local pkey = amy().PKey
      local value = string.rep("é", 16)
      assert.equals(200, (emu:call("PATCH", PROFILES .. "/" .. pkey, { firstName = value })))
      local _, again = get(PROFILES .. "/" .. pkey)
      assert.equals(value, again.firstName)
    end)
  end)

  describe("history metadata (SDK e2e getMetadataForResource('history'))", function()
    it("answers profileAndServices/resourceType/history like the other resources", function()
      local status, meta = get("profileAndServices/resourceType/history")
      assert.equals(200, status)
      assert.equals("history", meta.name)
      assert.equals("nms:recipient", meta.schema)
      assert.equals("/profileAndServices/history/", meta.data)
      assert.equals("collection", meta.content.events.type)
      assert.equals("subHisto", meta.content.events.resTarget)
      assert.equals("string", meta.content.email.type)
      assert.is_true(meta.content.email.readOnly)
      assert.is_nil(meta.content.cusCrmId)
      local _, filters = get(meta.filters.href)
      assert.matches("/history/byEmail%?email=", filters.byEmail.data)
      local m_status, same = get(meta.href)
      assert.equals(200, m_status)
      assert.equals(meta.PKey, same.PKey)
      assert.equals(200, (get("profileAndServices/resourceType/" .. meta.PKey)))
      local _, ext = get("profileAndServicesExt/resourceType/history")
      assert.is_table(ext.content.cusCrmId)
      assert.equals(404, (get("customResources/resourceType/history")))
    end)
  end)

  describe("a bad PKey is judged before the resource (SDK e2e updateCustomResource)", function()
    local function expect_invalid_pkey(status, body, key)
      expect_engine_error(status, body, "'" .. key .. "' is not a valid constant.")
    end
    local HEX = "cus7f3a9c2e4b1d"
    local WELL_FORMED = "@" .. string.rep("Q", 100)

    it("answers the invalid-PKey 500 for a bad key on an unknown custom resource", function()
      for _, api in ipairs { "profileAndServicesExt", "customResources", "profileAndServices" } do
        local path = api .. "/" .. HEX .. "/@gibberish"
        local status, body = emu:call("PATCH", path, { name = "x" })
        expect_invalid_pkey(status, body, "@gibberish")
        status, body = get(path)
        expect_invalid_pkey(status, body, "@gibberish")
        status, body = emu:call("DELETE", path)
        expect_invalid_pkey(status, body, "@gibberish")
        -- a name without "@": a PATCH/DELETE takes it as a key; a GET may be a projection (404)
        status, body = emu:call("PATCH", api .. "/" .. HEX .. "/notapkey", { name = "x" })
        expect_invalid_pkey(status, body, "notapkey")
        assert.equals(404, (get(api .. "/" .. HEX .. "/email")))
      end
      -- a well-formed key, or no key: the resource does not exist
      assert.equals(404, (emu:call("PATCH", "profileAndServicesExt/" .. HEX .. "/" .. WELL_FORMED,
        { a = 1 })))
      assert.equals(404, (get("profileAndServicesExt/" .. HEX)))
      assert.equals(404, (get("profileAndServicesExt/" .. HEX .. "/byName?name=x")))
    end)

    it("answers it for a write whose body is the key (the SDK's swapped arguments)", function()
      for _, raw in ipairs { "@gibberish", '"@gibberish"', ' "@gibberish"\n' } do
        for _, path in ipairs { "profileAndServicesExt/" .. HEX .. "/", "profileAndServicesExt/" .. HEX,
          "profileAndServicesExt/cusProduct/", "customResources/cusStore/" .. WELL_FORMED } do
          local status, body = emu:call("PATCH", path, nil, { raw = raw })
          expect_invalid_pkey(status, body, "@gibberish")
        end
      end
      local p_status, p_body = emu:call("POST", "profileAndServicesExt/cusProduct", nil,
        { raw = "@gibberish" })
      expect_invalid_pkey(p_status, p_body, "@gibberish")
      -- other non-object bodies stay 400
      assert.equals(400, (emu:call("PATCH", PROFILES .. "/" .. amy().PKey, nil, { raw = '"gibberish"' })))
    end)
  end)

  describe("count.href of every listing (acs-api.md section 4: GET it -> {count = n})", function()
    local function count_of(listing_body)
      assert.is_string(listing_body.count.href)
      local status, body = get(listing_body.count.href)
      assert.equals(200, status, listing_body.count.href)
      for key in pairs(body) do assert.equals("count", key) end
      return body.count
    end

    it("counts subscriptions of a profile and of a service", function()
      local pkey = amy().PKey
      local _, subs = get(PROFILES .. "/" .. pkey .. "/subscriptions/?_lineCount=1")
      assert.matches("/subscriptions//_count%?", subs.count.href)
      local _, all = get(PROFILES .. "/" .. pkey .. "/subscriptions/?_lineCount=500")
      assert.equals(#all.content, count_of(subs))
      local _, services = get("profileAndServices/service")
      local svc = services.content[1]
      local _, svc_subs = get(svc.subscriptions.href .. "?_lineCount=1")
      local _, svc_all = get(svc.subscriptions.href .. "?_lineCount=500")
      assert.equals(#svc_all.content, count_of(svc_subs))
    end)

    it("counts privacy requests, history, history events and filtered history", function()
      for i = 1, 3 do
        assert.equals(201, (emu:call("POST", "privacy/privacyTool", { name = "PT" .. i,
          namespaceName = "AMCDS2",
          reconciliationValue = "amy.dakota@mail.com", type = "access" })))
      end
      local _, privacy = get("privacy/privacyTool?_lineCount=1")
      assert.equals(3, count_of(privacy))
      local _, history = get("profileAndServices/history?_lineCount=2")
      local _, profiles = get(PROFILES .. "?_lineCount=1")
      assert.equals(count_of(profiles), count_of(history))
      local _, by_email = get("profileAndServices/history/byEmail?email=amy.dakota%40mail.com")
      assert.matches("/history/byEmail/_count%?", by_email.count.href)
      assert.equals(1, count_of(by_email))
      local _, hist = get("profileAndServices/history/" .. amy().PKey)
      local _, events = get(hist.events.href .. "?_lineCount=1")
      local _, all_events = get(hist.events.href)
      assert.equals(#all_events.content, count_of(events))
    end)

    it("counts a projection, and refuses _count after a single record (404)", function()
      local _, emails = get(PROFILES .. "/email?_lineCount=3")
      local _, profiles = get(PROFILES .. "?_lineCount=1")
      assert.equals(count_of(profiles), count_of(emails))
      assert.equals(count_of(profiles), select(2, get(PROFILES .. "/email/_count")).count)
      assert.equals(404, (get(PROFILES .. "/" .. amy().PKey .. "/_count")))
      assert.equals(404, (get("workflow/execution/WKF1/_count")))
    end)
  end)

  describe("transactional events (acs-api.md section 7)", function()
    it("echoes scheduled and expiration as sent, on the POST and on later GETs", function()
      local sent = { email = "test@example.com", scheduled = "2017-12-01 08:00:00.768Z",
        expiration = "2017-12-31T08:00:00.768Z",
        ctx = { cartAmount = "$ 125", lastProduct = "Leather motorbike jacket", firstName = "Jack" } }
      local status, ev = emu:call("POST", "mcacme/EVTcartAbandonment", sent)
      assert.equals(201, status)
      assert.equals("", ev.email)
      assert.same({ cartAmount = "", lastProduct = "", firstName = "" }, ev.ctx)
      assert.equals(sent.scheduled, ev.scheduled)
      assert.equals(sent.expiration, ev.expiration)
      for _, method in ipairs { "GET", "POST" } do
        local g_status, again = emu:call(method, ev.href)
        assert.equals(200, g_status)
        assert.equals(sent.scheduled, again.scheduled)
        assert.equals(sent.expiration, again.expiration)
        assert.equals("", again.email)
      end
    end)
  end)

  describe("privacy requests (OpenAPI GDPRRequest, ACS docs)", function()
    it("takes namespace as namespaceName, any case of regulation, and titles 'label (name)'", function()
      local status, req = emu:call("POST", "privacy/privacyTool", { name = "PT11832", namespace = "AMCDS2",
        reconciliationValue = "amy.dakota@mail.com", regulation = "GDPR", label = "Delete customers",
        type = "access" })
      assert.equals(201, status)
      assert.equals("AMCDS2", req.namespaceName)
      assert.equals("AMCDS2", req.namespace.title)
      assert.equals("gdpr", req.regulation)
      assert.equals("Delete customers (PT11832)", req.title)
      local _, again = get(req.href)
      assert.equals("Delete customers (PT11832)", again.title)
      local c_status, ccpa = emu:call("POST", "privacy/privacyTool", { name = "PT2", namespaceName = "AMCDS2",
        reconciliationValue = "x@y.z", regulation = "CCPA", type = "delete" })
      assert.equals(201, c_status)
      assert.equals("ccpa", ccpa.regulation)
      assert.equals("PT2", ccpa.title)
      local d_status, d_body = emu:call("POST", "privacy/privacyTool", { namespace = "AMCDS2",
        namespaceName = "OTHER", reconciliationValue = "x@y.z", type = "access" })
      expect_engine_error(d_status, d_body, "name different namespaces")
      local e_status, e_body = emu:call("POST", "privacy/privacyTool", { namespace = "AMCDS2",
        reconciliationValue = "x@y.z", regulation = "HIPAA", type = "access" })
      expect_engine_error(e_status, e_body, "enumeration")
    end)
  end)

  describe("signal trigger (ACS:triggering-a-signal-activity sample)", function()
    it("accepts the docs' parameters but contentURL, refused with the published lines", function()
      local _, wf = get("workflow/execution/WKF1")
      local trigger = wf.activities.activity.signal1.trigger.href
      local params = { audience = "audience", email = "anna.varney@mail.com", template = "05",
        contentURL = "http://www.adobe.com", test = "true", segmentCode = "my segment",
        attribute = "2019-04-03 08:17:19.100Z" }
      local status, body = emu:call("POST", trigger, { source = "API", parameters = params })
      assert.equals(500, status)
      assert.equals("RST-360011 An error has occurred - please contact your administrator.\n"
        .. "'contentURL' parameter isn't defined in signal activity.\n"
        .. "XTK-170006 Unable to parse expression 'HandleTrigger(@name, $(source), $({parameters}))'.\n"
        .. "RST-360000 Error while assessing 'HandleTrigger(@name, $(source), $({parameters}))' expression "
        .. "('xtk:workflow:execution/activities/signal/trigger' resource)", body.message)
      params.contentURL = nil
      assert.equals(200, (emu:call("POST", trigger, { source = "API", parameters = params })))
      local t_status, t_body = emu:call("POST", trigger, { source = "API", parameters = { test = "maybe" } })
      expect_engine_error(t_status, t_body, "'test' parameter must be of type 'boolean'.\nXTK-170006 "
        .. "Unable to parse expression 'HandleTrigger(")
    end)
  end)

  describe("IMS: legacy JWT exchange, IMS profile (acs-api.md section 2, ACS:troubleshooting)", function()
    local function b64url(s)
      local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      local out = {}
      for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
        for j = 1, chars do
          local idx = math.floor(n / 2 ^ (6 * (4 - j))) % 64
          out[#out + 1] = alphabet:sub(idx + 1, idx + 1)
        end
      end
      return table.concat(out)
    end
    local function jwt(claims)
      return b64url('{"alg":"RS256"}') .. "." .. b64url(claims) .. ".c2lnbmF0dXJl"
    end
    local function exchange(fields)
      local parts = {}
      for _, kv in ipairs(fields) do parts[#parts + 1] = kv[1] .. "=" .. kv[2] end
      return emu:call("POST", emu.ims_url .. "/ims/exchange/jwt", nil,
        { auth = false, form = table.concat(parts, "&") })
    end

    it("exchanges a JWT for a token whose expires_in is in milliseconds", function()
      local claims = '{"exp":' .. (os.time() + 3600) .. ',"iss":"X@AdobeOrg","aud":"https://ims-na1.'
        .. 'adobelogin.com/c/' .. emu.client_id
        .. '","https://ims-na1.adobelogin.com/s/ent_campaign_sdk":true}'
      local status, body = exchange { { "client_id", emu.client_id }, { "client_secret", emu.client_secret },
        { "jwt_token", jwt(claims) } }
      assert.equals(200, status)
      assert.equals("bearer", body.token_type)
      assert.equals(86399000, body.expires_in)
      assert.equals(200, (emu:call("GET", PROFILES .. "?_lineCount=1", nil, { token = body.access_token })))
      -- the same credential checks as the token endpoint, and a JWT-shaped, unexpired jwt_token
      local w_status, w_body = exchange { { "client_id", emu.client_id }, { "client_secret", "nope" },
        { "jwt_token", jwt(claims) } }
      assert.equals(400, w_status)
      assert.equals("invalid_client", w_body.error)
      local m_status, m_body = exchange { { "client_id", emu.client_id },
        { "client_secret", emu.client_secret } }
      assert.equals(400, m_status)
      assert.equals("invalid_request", m_body.error)
      for _, token in ipairs { "notajwt", jwt('{"exp":' .. (os.time() - 10) .. '}') } do
        local b_status, b_body = exchange { { "client_id", emu.client_id },
          { "client_secret", emu.client_secret }, { "jwt_token", token } }
        assert.equals(400, b_status)
        assert.equals("invalid_token", b_body.error)
      end
      assert.equals(405, (emu:call("GET", emu.ims_url .. "/ims/exchange/jwt", nil, { auth = false })))
    end)

    it("answers the IMS profile with the tenant as prodCtx.organization_id; Bearer required", function()
      local status, body = emu:call("GET", emu.ims_url .. "/ims/profile/v1", nil,
        { headers = { Authorization = "Bearer " .. emu.access_token } })
      assert.equals(200, status)
      local ctx = body.projectedProductContext[1].prodCtx
      assert.equals(emu.org, ctx.organization_id)
      assert.equals("dma_tartan", ctx.serviceCode)
      assert.equals("ACTIVE", ctx.statusCode)
      local n_status, n_body = emu:call("GET", emu.ims_url .. "/ims/profile/v1", nil, { auth = false })
      assert.equals(401, n_status)
      assert.equals("invalid_token", n_body.error)
      assert.equals(401, (emu:call("GET", emu.ims_url .. "/ims/profile/v1", nil, { auth = false,
        headers = { Authorization = "Bearer nope" } })))
    end)
  end)
end)
