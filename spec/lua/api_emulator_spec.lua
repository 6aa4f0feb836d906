-- campaign.api against the emulator: every function's request as the server logged it
-- (method, path, query, body) and the answer it gives back.
local campaign = require "campaign"
local seed_records = require "seed_records"
local emulator = require "emulator"
local api = require "campaign.api"

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The logged requests to the API (not IMS, not the admin API), split into path and query.
local function api_requests(emu)
  local out = {}
  for _, r in ipairs(emu:requests()) do
    local path, qs = r.uri:match("^([^?]*)%??(.*)$")
    local root = "/" .. emu.org .. "/campaign/"
    if path:sub(1, #root) == root then
      local query = {}
      for k, v in qs:gmatch("([^&=]+)=([^&]*)") do query[percent_decode(k)] = percent_decode(v) end
      out[#out + 1] = { method = r.method, path = path:sub(#root + 1), query = query, raw_query = qs,
                        body = r.body, headers = r.headers }
    end
  end
  return out
end

describe("campaign.api against the emulator", function()
  local emu, client

  -- Calls fn, asserts it succeeded and that exactly one API request went out as expected.
  -- Returns the body and the logged request.
  local function expect(fn, method, path, query, body)
    emu:clear_requests()
    local result, err = fn()
    assert.is_not_nil(result, tostring(err))
    local reqs = api_requests(emu)
    assert.are.equal(1, #reqs, "requests sent: " .. #reqs)
    local r = reqs[1]
    assert.are.equal(method, r.method)
    assert.are.equal(path, r.path)
    assert.are.same(query or {}, r.query)
    if body == nil then
      assert.is_true(r.body == nil or r.body == "" or r.body == campaign.null, "unexpected body")
    else
      assert.are.same(body, campaign.decode(r.body))
    end
    return result, r
  end

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:reset()
    emu:clear_faults()
    client = campaign.new(emu:client_options { retries = 0 })
  end)

  local function amy() return seed_records.amy(client) end

  it("profiles: list, filter, get, create, update, delete, history", function()
    local list = expect(function() return api.get_all_profiles(client, { line_count = 2 }) end,
      "GET", "profileAndServices/profile", { _lineCount = "2" })
    assert.are.equal(2, #list.content)
    local found = expect(function()
      return api.get_all_profiles(client, { filters = { "byEmail" }, email = "amy.dakota@mail.com" })
    end, "GET", "profileAndServices/profile/byEmail", { email = "amy.dakota@mail.com" })
    local pkey = found.content[1].PKey
    local profile = expect(function() return api.get_profile(client, pkey) end,
      "GET", "profileAndServices/profile/" .. pkey)
    assert.are.equal("amy.dakota@mail.com", profile.email)

    local created, r = expect(function()
      return api.create_profile(client, { email = "new.one@mail.com" })
    end,
      "POST", "profileAndServices/profile", nil, { email = "new.one@mail.com" })
    assert.is_string(created.PKey)
    assert.matches("application/json", r.headers["content-type"] or "", 1, true)
    local patched = expect(function() return api.update_profile(client, created.PKey, { phone = "0102" }) end,
      "PATCH", "profileAndServices/profile/" .. created.PKey, nil, { phone = "0102" })
    assert.are.equal(created.PKey, patched.PKey)
    expect(function() return api.delete_profile(client, created.PKey) end,
      "DELETE", "profileAndServices/profile/" .. created.PKey)
    local gone, err = api.get_profile(client, created.PKey)
    assert.is_nil(gone)
    assert.are.equal(404, err.status)

    local history = expect(function() return api.get_history_of_profile(client, pkey) end,
      "GET", "profileAndServices/history/" .. pkey)
    assert.is_table(history)
  end)

  it("sends the descending order encoded once (%20, never %2520) and force_pagination", function()
    local _, r = expect(function()
      return api.get_all_profiles(client, { order = "email", descending = true, force_pagination = true })
    end, "GET", "profileAndServices/profile", { _order = "email desc", _forcePagination = "true" })
    assert.matches("_order=email%20desc", r.raw_query, 1, true)
    assert.is_nil(r.raw_query:find("%25", 1, true))
  end)

  -- The official Node SDK's listing option names and their snake_case forms: the exact URI the
  -- emulator logged (the client sorts the query keys), and the same answer as the project's names.
  describe("listing options under the SDK's names", function()
    local function uri(fn)
      emu:clear_requests()
      local result, err = fn()
      assert.is_not_nil(result, tostring(err))
      local reqs = api_requests(emu)
      assert.are.equal(1, #reqs, "requests sent: " .. #reqs)
      assert.are.equal("GET", reqs[1].method)
      return result, reqs[1].path .. (reqs[1].raw_query ~= "" and "?" .. reqs[1].raw_query or "")
    end
    local function pkeys(list)
      local out = {}
      for i, rec in ipairs(list.content) do out[i] = rec.PKey end
      return out
    end
    local cases = {
      { { hasCustomFilter = true, filters = { "byEmail" }, email = "amy.dakota@mail.com" },
        { custom_filter = true, filters = { "byEmail" }, email = "amy.dakota@mail.com" },
        "profileAndServicesExt/profile/byEmail?email=amy.dakota@mail.com" },
      { { has_custom_filter = true, lineCount = 2 }, { custom_filter = true, line_count = 2 },
        "profileAndServicesExt/profile?_lineCount=2" },
      { { lineCount = 3, order = "email", descendingSort = true },
        { line_count = 3, order = "email", descending = true },
        "profileAndServices/profile?_lineCount=3&_order=email%20desc" },
      { { lineCount = 3, order = "email", descending_sort = true },
        { line_count = 3, order = "email", descending = true },
        "profileAndServices/profile?_lineCount=3&_order=email%20desc" },
      { { filters = { "byText" }, text = "D", hasCustomFilter = true, lineCount = 4, order = "lastName",
          descendingSort = true },
        { filters = { "byText" }, text = "D", custom_filter = true, line_count = 4, order = "lastName",
          descending = true },
        "profileAndServicesExt/profile/byText?_lineCount=4&_order=lastName%20desc&text=D" },
    }
    for _, case in ipairs(cases) do
      local sdk, own, want = case[1], case[2], case[3]
      it("GET " .. want, function()
        local got, sent = uri(function() return api.get_all_profiles(client, sdk) end)
        assert.are.equal(want, sent)
        local same, sent_own = uri(function() return api.get_all_profiles(client, own) end)
        assert.are.equal(want, sent_own)
        assert.is_true(#got.content >= 1)
        assert.are.same(pkeys(same), pkeys(got))
      end)
    end

    it("services and org units take them too", function()
      local _, sent = uri(function()
        return api.get_all_services(client, { hasCustomFilter = true, lineCount = 1 })
      end)
      assert.are.equal("profileAndServicesExt/service?_lineCount=1", sent)
      _, sent = uri(function()
        return api.get_all_org_units(client, { lineCount = 2, order = "label", descendingSort = true })
      end)
      assert.are.equal("profileAndServicesExt/orgUnitBase?_lineCount=2&_order=label%20desc", sent)
    end)

    it("an alias and the project's name with different values raise and send nothing", function()
      emu:clear_requests()
      local ok, msg = pcall(api.get_all_profiles, client, { custom_filter = true, hasCustomFilter = false })
      assert.is_false(ok)
      assert.matches("'custom_filter' and 'hasCustomFilter'", msg, 1, true)
      assert.are.equal(0, #api_requests(emu))
    end)
  end)

  it("get_profile unwraps the {content = {profile}} shape", function()
    local pkey = amy().PKey
    emu:config { wrap_single_get = true }
    local profile, err = api.get_profile(client, pkey)
    emu:config { wrap_single_get = false }
    assert.is_table(profile, tostring(err))
    assert.are.equal(pkey, profile.PKey)
    assert.are.equal("amy.dakota@mail.com", profile.email)
  end)

  it("services: list with a filter, get, create", function()
    local list = expect(function()
      return api.get_all_services(client, { filters = { "byChannel" }, channel = "email" })
    end, "GET", "profileAndServices/service/byChannel", { channel = "email" })
    assert.is_true(#list.content >= 1)
    local svc = list.content[1]
    local got = expect(function() return api.get_service(client, svc.PKey) end,
      "GET", "profileAndServices/service/" .. svc.PKey)
    assert.are.equal(svc.PKey, got.PKey)
    local body = { label = "My newsletter", messageType = "email", name = "email_newsletter",
                   start = "2019-10-06" }
    local created = expect(function() return api.create_service(client, body) end,
      "POST", "profileAndServices/service", nil, body)
    assert.are.equal("email_newsletter", created.name)
  end)

  it("metadata and the Ext API", function()
    local meta = expect(function() return api.get_metadata_for_resource(client, "profile") end,
      "GET", "profileAndServices/resourceType/profile")
    assert.is_table(meta.content.email)
    local ext = expect(function() return api.get_metadata_for_resource_ext(client, "profile") end,
      "GET", "profileAndServicesExt/resourceType/profile")
    assert.is_table(ext.content.cusCrmId)
    local records = expect(function()
      return api.get_all_profile_and_services_ext(client, "profile", { line_count = 2 })
    end, "GET", "profileAndServicesExt/profile", { _lineCount = "2" })
    assert.is_not_nil(records.content[1].cusCrmId)
    expect(function() return api.get_custom_resources(client) end, "GET", "profileAndServicesExt")
  end)

  it("custom resources: linked (Ext) and unlinked (customResources)", function()
    local stores = expect(function() return api.get_all_basic_custom_resources(client, "cusStore") end,
      "GET", "customResources/cusStore")
    assert.is_true(#stores.content >= 1)
    local store = expect(function()
      return api.get_custom_resource(client, "cusStore", stores.content[1].PKey, { basic = true })
    end, "GET", "customResources/cusStore/" .. stores.content[1].PKey)
    assert.are.equal(stores.content[1].PKey, store.PKey)

    local products = expect(function()
      return api.get_all_custom_resources(client, "cusProduct",
        { filters = { "byCategory" }, category = "apparel" })
    end, "GET", "profileAndServicesExt/cusProduct/byCategory", { category = "apparel" })
    assert.is_true(#products.content >= 1)
    local pkey = products.content[1].PKey
    local one = expect(function() return api.get_custom_resource(client, "cusProduct", pkey) end,
      "GET", "profileAndServicesExt/cusProduct/" .. pkey)
    assert.are.equal(pkey, one.PKey)
    local rec = { sku = "P-200", name = "Jacket", category = "apparel", price = 99 }
    local created = expect(function() return api.create_custom_resource(client, "cusProduct", rec) end,
      "POST", "profileAndServicesExt/cusProduct", nil, rec)
    expect(function()
      return api.update_custom_resource(client, "cusProduct", created.PKey, { price = 89 })
    end,
      "PATCH", "profileAndServicesExt/cusProduct/" .. created.PKey, nil, { price = 89 })
    local after = assert(api.get_custom_resource(client, "cusProduct", created.PKey))
    assert.are.equal(89, after.price)
    expect(function() return api.delete_custom_resource(client, "cusProduct", created.PKey) end,
      "DELETE", "profileAndServicesExt/cusProduct/" .. created.PKey)
  end)

  it("organizational units", function()
    local units = expect(function() return api.get_all_org_units(client) end,
      "GET", "profileAndServicesExt/orgUnitBase")
    local emea
    for _, u in ipairs(units.content) do if u.name == "emea" then emea = u end end
    assert.is_table(emea)
    local pkey = amy().PKey
    local with_unit = expect(function() return api.get_profile_with_org_unit(client, pkey) end,
      "GET", "profileAndServicesExt/profile/" .. pkey)
    assert.is_table(with_unit.orgUnit)
    expect(function() return api.update_profile_org_unit(client, pkey, emea.PKey) end,
      "PATCH", "profileAndServicesExt/profile/" .. pkey, nil, { orgUnit = { PKey = emea.PKey } })
    assert.are.equal(emea.PKey, assert(api.get_profile_with_org_unit(client, pkey)).orgUnit.PKey)
    expect(function() return api.update_org_unit(client, emea.PKey, { label = "EMEA region" }) end,
      "PATCH", "profileAndServicesExt/orgUnitBase/" .. emea.PKey, nil, { label = "EMEA region" })
  end)

  it("workflows: get, control, trigger a signal", function()
    local wf = expect(function() return api.get_workflow(client, "WKF1") end,
      "GET", "workflow/execution/WKF1")
    local trigger = wf.activities.activity.signal1.trigger.href
    assert.matches("^https?://", trigger)
    local _, r = expect(function()
      return api.trigger_signal_activity(client, trigger, { parameters = { audience = "vip" } })
    end, "POST", trigger:match("/campaign/(.*)$"), nil, { source = "API", parameters = { audience = "vip" } })
    assert.is_table(r)
    expect(function() return api.control_workflow(client, "WKF2", "Start") end,
      "POST", "workflow/execution/WKF2/commands", nil, { method = "start" })
  end)

  it("transactional events: send, then read the status with GET (tenant from the client)", function()
    local event = { email = "jack@mail.com", ctx = { cartAmount = "$ 125", firstName = "Jack" } }
    local sent = expect(function()
      return api.send_transactional_event(client, "EVTcartAbandonment", event)
    end,
      "POST", "mc" .. emu.org .. "/EVTcartAbandonment", nil, event)
    assert.are.equal("pending", sent.status)
    local got = expect(function()
      return api.get_transactional_event(client, "EVTcartAbandonment", sent.PKey)
    end,
      "GET", "mc" .. emu.org .. "/EVTcartAbandonment/" .. sent.PKey)
    assert.are.equal(sent.PKey, got.PKey)
    -- the relative href ACS returns, followed as is
    local again = expect(function() return api.get_data_from_relative_url(client, sent.href) end,
      "GET", sent.href)
    assert.are.equal(sent.PKey, again.PKey)
  end)

  it("privacy requests: create, list, data file; post_data_to_url", function()
    local request = { name = "PT11832", namespaceName = "AMCDS2", reconciliationValue = "amy.dakota@mail.com",
                      regulation = "gdpr", label = "Access Amy", type = "access" }
    local created = expect(function() return api.create_gdpr_request(client, request) end,
      "POST", "privacy/privacyTool", nil, request)
    local list = expect(function() return api.get_gdpr_request(client) end, "GET", "privacy/privacyTool")
    assert.is_true(#list.content >= 1)
    local href = created.privacyRequestData.href
    local file = expect(function() return api.get_gdpr_data_file(client, href, created.name) end,
      "POST", href:match("/campaign/(.*)$"), nil, { name = created.name })
    assert.is_string(file)
    expect(function() return api.post_data_to_url(client, href, { name = created.name }) end,
      "POST", href:match("/campaign/(.*)$"), nil, { name = created.name })
  end)

  it("returns the client's nil, err for ACS errors", function()
    local body, err = api.update_profile(client, amy().PKey, { age = 3 })
    assert.is_nil(body)
    assert.are.equal("http", err.kind)
    assert.are.equal(500, err.status)
  end)
end)
