-- campaign.api against a fake client: the exact method, path, query and body of each operation.
local api = require "campaign.api"
local fake = require "lua.fake_client"

local unpack_args = table.unpack or unpack

local function last_call(client) return client.calls[#client.calls] end

-- Each row: function name, arguments after the client, expected method, path, query, body.
local PKEY = "@Abc-123_xyz"
local TRIGGER = "https://mc.adobe.io/acme/campaign/workflow/execution/@w/activities/activity/@a/"
  .. "trigger/"
local rows = {
  { "get_all_profiles", {}, "GET", "profileAndServices/profile", {} },
  { "get_all_profiles", { { filters = { "byEmail" }, email = "amy.dakota@mail.com", line_count = 10 } },
    "GET", "profileAndServices/profile/byEmail", { email = "amy.dakota@mail.com", _lineCount = "10" } },
  { "get_all_profiles", { { filters = { "byCRMId" }, custom_filter = true, crm_id = 7 } },
    "GET", "profileAndServicesExt/profile/byCRMId", { crm_id = "7" } },
  { "get_all_profiles", { { order = "email", descending = true, force_pagination = true } },
    "GET", "profileAndServices/profile", { _order = "email desc", _forcePagination = "true" } },
  { "get_profile", { PKEY }, "GET", "profileAndServices/profile/" .. PKEY },
  { "create_profile", { { email = "a@b.c" } }, "POST", "profileAndServices/profile", nil,
    { email = "a@b.c" } },
  { "create_profile", { { email = "a@b.c" }, { ext = true } }, "POST", "profileAndServicesExt/profile", nil,
    { email = "a@b.c" } },
  { "update_profile", { PKEY, { phone = "3301020304" } }, "PATCH", "profileAndServices/profile/" .. PKEY, nil,
    { phone = "3301020304" } },
  { "delete_profile", { PKEY }, "DELETE", "profileAndServices/profile/" .. PKEY },
  { "get_history_of_profile", { PKEY }, "GET", "profileAndServices/history/" .. PKEY },
  { "get_all_services", { { filters = { "byChannel" }, channel = "email" } }, "GET",
    "profileAndServices/service/byChannel", { channel = "email" } },
  { "get_service", { PKEY }, "GET", "profileAndServices/service/" .. PKEY },
  { "create_service", { { name = "news", messageType = "email" } }, "POST", "profileAndServices/service", nil,
    { name = "news", messageType = "email" } },
  { "get_metadata_for_resource", { "profile" }, "GET", "profileAndServices/resourceType/profile" },
  { "get_metadata_for_resource_ext", { "profile" }, "GET", "profileAndServicesExt/resourceType/profile" },
  { "get_all_profile_and_services_ext", { "cusProduct", { line_count = 5 } }, "GET",
    "profileAndServicesExt/cusProduct", { _lineCount = "5" } },
  { "get_custom_resources", {}, "GET", "profileAndServicesExt" },
  { "get_all_basic_custom_resources", { "cusShop" }, "GET", "customResources/cusShop", {} },
  { "get_all_custom_resources", { "cusProduct", { filters = { "byName" }, name = "x" } }, "GET",
    "profileAndServicesExt/cusProduct/byName", { name = "x" } },
  { "get_custom_resource", { "cusProduct", PKEY }, "GET",
    "profileAndServicesExt/cusProduct/" .. PKEY },
  { "get_custom_resource", { "cusShop", PKEY, { basic = true } }, "GET",
    "customResources/cusShop/" .. PKEY },
  { "create_custom_resource", { "cusProduct", { label = "p" } }, "POST",
    "profileAndServicesExt/cusProduct", nil, { label = "p" } },
  { "update_custom_resource", { "cusProduct", PKEY, { label = "q" } }, "PATCH",
    "profileAndServicesExt/cusProduct/" .. PKEY, nil, { label = "q" } },
  { "delete_custom_resource", { "cusProduct", PKEY }, "DELETE",
    "profileAndServicesExt/cusProduct/" .. PKEY },
  { "get_all_org_units", { { line_count = 2 } }, "GET", "profileAndServicesExt/orgUnitBase",
    { _lineCount = "2" } },
  { "get_profile_with_org_unit", { PKEY }, "GET", "profileAndServicesExt/profile/" .. PKEY },
  { "update_profile_org_unit", { PKEY, "@org1" }, "PATCH", "profileAndServicesExt/profile/" .. PKEY, nil,
    { orgUnit = { PKey = "@org1" } } },
  { "update_org_unit", { "@org1", { label = "brand1" } }, "PATCH",
    "profileAndServicesExt/orgUnitBase/@org1", nil, { label = "brand1" } },
  { "get_workflow", { "WKF12" }, "GET", "workflow/execution/WKF12" },
  { "control_workflow", { "WKF12", "Start" }, "POST", "workflow/execution/WKF12/commands", nil,
    { method = "start" } },
  { "trigger_signal_activity", { TRIGGER, { parameters = { audience = "x" } } }, "POST", TRIGGER, nil,
    { source = "API", parameters = { audience = "x" } } },
  { "send_transactional_event", { "EVTcart", { email = "a@b.c" }, { tenant = "acme" } }, "POST",
    "mcacme/EVTcart", nil, { email = "a@b.c" } },
  { "get_transactional_event", { "EVTcart", "@evt1", { tenant = "acme" } }, "GET", "mcacme/EVTcart/@evt1" },
  { "create_gdpr_request", { { name = "PT1", type = "access" } }, "POST", "privacy/privacyTool", nil,
    { name = "PT1", type = "access" } },
  { "get_gdpr_request", {}, "GET", "privacy/privacyTool", {} },
  { "get_gdpr_data_file", { "https://mc.adobe.io/acme/campaign/privacy/privacyTool/@r/privacyRequestData",
      "PT1" }, "POST", "https://mc.adobe.io/acme/campaign/privacy/privacyTool/@r/privacyRequestData", nil,
    { name = "PT1" } },
  { "post_data_to_url", { "https://mc.adobe.io/acme/campaign/x/y", { a = 1 } }, "POST",
    "https://mc.adobe.io/acme/campaign/x/y", nil, { a = 1 } },
  { "get_data_from_relative_url", { "mcAcme/EVTcart/@evt1" }, "GET", "mcAcme/EVTcart/@evt1" },
  -- documented by ACS, not in the SDK (acs-api.md §5)
  { "get_metadata_for_resource", { "cusShop", { basic = true } }, "GET",
    "customResources/resourceType/cusShop" },
  { "subscribe", { PKEY, "@svc1" }, "POST", "profileAndServices/profile/" .. PKEY .. "/subscriptions/", nil,
    { service = { PKey = "@svc1" } } },
  { "subscribe", { { PKey = PKEY,
      subscriptions = { href = "https://mc.adobe.io/acme/campaign/x/subscriptions/" } }, "@svc1" }, "POST",
    "https://mc.adobe.io/acme/campaign/x/subscriptions/", nil,
    { service = { PKey = "@svc1" } } },
  { "add_subscriber", { "@svc1", PKEY }, "POST", "profileAndServices/service/@svc1/subscriptions/", nil,
    { subscriber = { PKey = PKEY } } },
  { "unsubscribe", { "https://mc.adobe.io/acme/campaign/profileAndServices/service/@s/subscriptions/@sub" },
    "DELETE", "https://mc.adobe.io/acme/campaign/profileAndServices/service/@s/subscriptions/@sub" },
  { "unsubscribe", { { href = "profileAndServices/profile/@p/subscriptions/@sub" } },
    "DELETE", "profileAndServices/profile/@p/subscriptions/@sub" },
  { "get_profile_subscriptions", { PKEY }, "GET",
    "profileAndServices/profile/" .. PKEY .. "/subscriptions/" },
  { "get_service_subscriptions", { "@svc1", { _lineCount = 5 } }, "GET",
    "profileAndServices/service/@svc1/subscriptions/", { _lineCount = "5" } },
  { "get_count",
    { "https://mc.adobe.io/acme/campaign/profileAndServices/profile//_count?_lineCount=1" },
    "GET", "https://mc.adobe.io/acme/campaign/profileAndServices/profile//_count?_lineCount=1" },
  -- a relative href goes out verbatim, its own query included (acs-api.md §4)
  { "get_data_from_relative_url", { "/profileAndServices/profile/byText?text=Doe%20J&filterType=lastName" },
    "GET", "/profileAndServices/profile/byText?text=Doe%20J&filterType=lastName" },
}

describe("campaign.api with a fake client", function()
  for _, row in ipairs(rows) do
    local name, args, method, path, query, body = row[1], row[2], row[3], row[4], row[5], row[6]
    it(name .. " sends " .. method .. " " .. path, function()
      local client = fake.new()
      api[name](client, unpack_args(args))
      assert.are.equal(1, #client.calls)
      local c = last_call(client)
      assert.are.equal(method, c.method)
      assert.are.equal(path, c.path)
      if query then assert.are.same(query, c.query or {}) else assert.is_nil(c.query) end
      assert.are.same(body, c.body)
    end)
  end

  it("has a row above for every function it exports", function()
    local covered = {}
    for _, row in ipairs(rows) do covered[row[1]] = true end
    for _, fname in pairs(api.operations) do
      assert.is_function(api[fname], fname)
      assert.is_true(covered[fname] == true, fname .. " has no mapping spec")
    end
  end)

  it("returns exactly what the client returns, success and failure", function()
    local res = { status = 200, headers = {}, attempts = 1 }
    local client = fake.new(function() return { PKey = "@p", email = "x" }, res end)
    local body, r = api.get_service(client, "@p")
    assert.are.same({ PKey = "@p", email = "x" }, body)
    assert.are.equal(res, r)
    local err = { kind = "http", status = 404 }
    client = fake.new(function() return nil, err end)
    local b2, e2 = api.update_profile(client, "@p", { phone = "1" })
    assert.is_nil(b2)
    assert.are.equal(err, e2)
  end)

  it("get_profile returns the bare profile whether ACS wraps it or not", function()
    local profile = { PKey = "@p", email = "amy.dakota@mail.com" }
    local bare = fake.new(function() return profile, { status = 200 } end)
    assert.are.equal(profile, (api.get_profile(bare, "@p")))
    local wrapped = fake.new(function() return { content = { profile } }, { status = 200 } end)
    local got, res = api.get_profile(wrapped, "@p")
    assert.are.equal(profile, got)
    assert.are.equal(200, res.status)
  end)

  it("sends the descending order with one plain space, for the client to encode once", function()
    local client = fake.new()
    api.get_all_profiles(client, { order = "lastName", descending = true })
    assert.are.equal("lastName desc", client.calls[1].query._order)
    assert.is_nil(client.calls[1].query._order:find("%", 1, true))
  end)

  it("takes the transactional tenant from the client when it exposes its org", function()
    local client = fake.new()
    client.org = "geometrixx"
    api.send_transactional_event(client, "EVTcart", { email = "a@b.c" })
    assert.are.equal("mcgeometrixx/EVTcart", client.calls[1].path)
    api.get_transactional_event(client, "EVTcart", "@e", { tenant = "other" })
    assert.are.equal("mcother/EVTcart/@e", client.calls[2].path)
    assert.are.equal("GET", client.calls[2].method)
  end)

  it("else takes the transactional tenant from client:url (the C client's method)", function()
    local client = fake.new()
    function client.url(_, path) return "https://mc.adobe.io/acme-mkt-stage1/campaign/" .. path end
    api.send_transactional_event(client, "EVTcart", { email = "a@b.c" })
    -- a stage tenant keeps the bare org in its transactional API
    assert.are.equal("mcacme/EVTcart", client.calls[1].path)
  end)

  it("strips the stage suffix of the client's org for the transactional API", function()
    local client = fake.new()
    client.org = "geometrixx-mkt-stage"
    api.send_transactional_event(client, "EVTcart", { email = "a@b.c" })
    assert.are.equal("mcgeometrixx/EVTcart", client.calls[1].path)
  end)

  it("does not modify the caller's signal parameters and keeps an explicit source", function()
    local client = fake.new()
    local params = { source = "CRM", parameters = { test = "true" } }
    api.trigger_signal_activity(client, "workflow/execution/@w/activities/activity/@a/trigger/", params)
    assert.are.same({ source = "CRM", parameters = { test = "true" } }, client.calls[1].body)
    assert.are.equal("workflow/execution/@w/activities/activity/@a/trigger/", client.calls[1].path)
    local p2 = { parameters = {} }
    api.trigger_signal_activity(client, "https://h/acme/campaign/t", p2)
    assert.is_nil(p2.source)
  end)

  it("api.listing builds the path and query for pages.each", function()
    local path, query = api.listing("profileAndServices/profile",
      { filters = { "byText" }, text = "Doe", filterType = "lastName", line_count = 100.0 })
    assert.are.equal("profileAndServices/profile/byText", path)
    assert.are.same({ text = "Doe", filterType = "lastName", _lineCount = "100" }, query)
  end)

  describe("misuse raises", function()
    local client = fake.new()
    it("on a missing or wrong client", function()
      assert.has_error(function() api.get_profile(nil, "@p") end)
      assert.has_error(function() api.get_profile("client", "@p") end)
    end)
    it("on wrong argument types, naming the function", function()
      local ok, msg = pcall(api.get_profile, client, 42)
      assert.is_false(ok)
      assert.matches("get_profile", msg)
      assert.matches("pkey", msg)
      assert.has_error(function() api.update_profile(client, "@p", 42) end)
      assert.has_error(function() api.get_all_profiles(client, "byEmail") end)
      assert.has_error(function() api.get_all_profiles(client, { filters = 3 }) end)
      assert.has_error(function() api.get_all_profiles(client, { line_count = "ten" }) end)
      assert.has_error(function() api.get_all_profiles(client, { x = function() end }) end)
    end)
    it("on a key that would address another resource", function()
      assert.has_error(function() api.get_profile(client, "@p/../../x") end)
      assert.has_error(function() api.get_all_profiles(client, { filters = { "byEmail/x" } }) end)
    end)
    it("on an unknown workflow command", function()
      assert.has_error(function() api.control_workflow(client, "WKF1", "restart") end)
    end)
    it("when the transactional tenant is unknown", function()
      assert.has_error(function() api.send_transactional_event(client, "EVT", {}) end)
    end)
    it("and sends nothing", function()
      assert.are.equal(0, #client.calls)
    end)
  end)
end)

-- The official Node SDK's listing option names (filters, hasCustomFilter, lineCount, order,
-- descendingSort) and their snake_case forms: aliases of custom_filter, line_count, descending.
-- None of them may reach the query string. Each row: function, arguments, path, query.
local sdk_rows = {
  { "get_all_profiles", { { hasCustomFilter = true, filters = { "byCRMId" }, crm_id = 7 } },
    "profileAndServicesExt/profile/byCRMId", { crm_id = "7" } },
  { "get_all_profiles", { { has_custom_filter = true } }, "profileAndServicesExt/profile", {} },
  { "get_all_profiles", { { hasCustomFilter = false } }, "profileAndServices/profile", {} },
  { "get_all_profiles", { { lineCount = 10 } }, "profileAndServices/profile", { _lineCount = "10" } },
  { "get_all_profiles", { { order = "email", descendingSort = true } }, "profileAndServices/profile",
    { _order = "email desc" } },
  { "get_all_profiles", { { order = "email", descending_sort = true } }, "profileAndServices/profile",
    { _order = "email desc" } },
  { "get_all_profiles", { { order = "email", descendingSort = false } }, "profileAndServices/profile",
    { _order = "email" } },
  -- every SDK name at once, as an SDK call would pass them
  { "get_all_profiles", { { filters = { "byText" }, hasCustomFilter = true, lineCount = 5, order = "lastName",
      descendingSort = true, text = "Doe" } },
    "profileAndServicesExt/profile/byText", { text = "Doe", _lineCount = "5", _order = "lastName desc" } },
  -- an alias beside the project's name, with the same value
  { "get_all_profiles", { { line_count = 10, lineCount = 10 } }, "profileAndServices/profile",
    { _lineCount = "10" } },
  { "get_all_profiles", { { custom_filter = true, has_custom_filter = true, hasCustomFilter = true } },
    "profileAndServicesExt/profile", {} },
  { "get_all_profiles", { { order = "email", descending = true, descending_sort = true,
      descendingSort = true } }, "profileAndServices/profile", { _order = "email desc" } },
  -- forcePagination: the camelCase form of force_pagination
  { "get_all_profiles", { { forcePagination = true } }, "profileAndServices/profile",
    { _forcePagination = "true" } },
  -- other keys keep going to the query string, as in the SDK (its way to send _forcePagination)
  { "get_all_profiles", { { filters = { "byText" }, text = "Doe", filterType = "lastName",
      _forcePagination = true } },
    "profileAndServices/profile/byText",
    { text = "Doe", filterType = "lastName", _forcePagination = "true" } },
  { "get_all_services", { { hasCustomFilter = true, lineCount = 3 } }, "profileAndServicesExt/service",
    { _lineCount = "3" } },
  { "get_all_org_units", { { lineCount = 2, order = "label", descendingSort = true } },
    "profileAndServicesExt/orgUnitBase", { _lineCount = "2", _order = "label desc" } },
  { "get_all_custom_resources", { "cusProduct", { lineCount = 5, order = "label", descending_sort = true } },
    "profileAndServicesExt/cusProduct", { _lineCount = "5", _order = "label desc" } },
  { "get_all_basic_custom_resources", { "cusShop", { lineCount = 1, hasCustomFilter = true } },
    "customResources/cusShop", { _lineCount = "1" } },
  { "get_all_profile_and_services_ext", { "profile", { lineCount = 2 } }, "profileAndServicesExt/profile",
    { _lineCount = "2" } },
  { "get_gdpr_request", { { lineCount = 1 } }, "privacy/privacyTool", { _lineCount = "1" } },
}

describe("campaign.api listing options under the official SDK's names", function()
  for _, row in ipairs(sdk_rows) do
    local name, args, path, query = row[1], row[2], row[3], row[4]
    local keys = {}
    for k in pairs(args[#args]) do keys[#keys + 1] = k end
    table.sort(keys)
    it(name .. " {" .. table.concat(keys, ", ") .. "} sends GET " .. path, function()
      local client = fake.new()
      local params = args[#args]
      local copy = {}
      for k, v in pairs(params) do copy[k] = v end
      api[name](client, unpack_args(args))
      assert.are.equal(1, #client.calls)
      local c = client.calls[1]
      assert.are.equal("GET", c.method)
      assert.are.equal(path, c.path)
      assert.are.same(query, c.query)
      assert.are.same(copy, params) -- the caller's table is left as it was
    end)
  end

  it("api.listing takes them too", function()
    local path, query = api.listing("profileAndServices/profile",
      { filters = "byEmail", email = "a@b.c", hasCustomFilter = true, lineCount = 3, order = "email",
        descendingSort = true })
    assert.are.equal("profileAndServicesExt/profile/byEmail", path)
    assert.are.same({ email = "a@b.c", _lineCount = "3", _order = "email desc" }, query)
  end)

  describe("an alias and another name of the same option with different values", function()
    local conflicts = {
      { { custom_filter = true, hasCustomFilter = false }, "custom_filter", "hasCustomFilter" },
      { { custom_filter = false, has_custom_filter = true }, "custom_filter", "has_custom_filter" },
      { { has_custom_filter = true, hasCustomFilter = false }, "has_custom_filter", "hasCustomFilter" },
      { { line_count = 20, lineCount = 10 }, "line_count", "lineCount" },
      { { line_count = 10, lineCount = "10" }, "line_count", "lineCount" },
      { { order = "email", descending = true, descendingSort = false }, "descending", "descendingSort" },
      { { order = "email", descending = false, descending_sort = true }, "descending", "descending_sort" },
      { { order = "email", descending_sort = true, descendingSort = false }, "descending_sort",
        "descendingSort" },
    }
    for _, row in ipairs(conflicts) do
      local params, a, b = row[1], row[2], row[3]
      it("raise naming both: " .. a .. " and " .. b, function()
        local client = fake.new()
        local ok, msg = pcall(api.get_all_profiles, client, params)
        assert.is_false(ok)
        assert.matches("'" .. a .. "' and '" .. b .. "'", msg, 1, true)
        assert.matches("different values", msg, 1, true)
        assert.are.equal(0, #client.calls)
        assert.has_error(function() api.listing("profileAndServices/profile", params) end)
      end)
    end

    it("point at the caller's line", function()
      local client = fake.new()
      local _, msg = pcall(function() api.get_all_profiles(client, { lineCount = 1, line_count = 2 }) end)
      assert.matches("api_spec.lua:%d+: campaign.api: 'line_count' and 'lineCount'", msg)
      _, msg = pcall(function()
        api.get_all_custom_resources(client, "cusProduct", { descending = true, descendingSort = false })
      end)
      assert.matches("api_spec.lua:%d+: campaign.api: 'descending' and 'descendingSort'", msg)
    end)
  end)

  it("a bad value is reported under the name the caller used", function()
    local ok, msg = pcall(api.get_all_profiles, fake.new(), { lineCount = "ten" })
    assert.is_false(ok)
    assert.matches("'lineCount' must be a positive number", msg, 1, true)
    ok, msg = pcall(api.get_all_profiles, fake.new(), { line_count = 0 })
    assert.is_false(ok)
    assert.matches("'line_count' must be a positive number", msg, 1, true)
  end)
end)

describe("campaign.api.operations", function()
  local function spec_path()
    -- the emulator keeps an unchanged copy (Apache-2.0) so this runs in any clone
    for _, p in ipairs { "emulator/acs-openapi.json", "../shared/spec/acs-openapi.json" } do
      local f = io.open(p, "r")
      if f then f:close() return p end
    end
  end

  it("maps every operationId of Adobe's OpenAPI description to a function", function()
    local path = spec_path()
    assert.is_string(path, "acs-openapi.json not found")
    local f = assert(io.open(path, "r"))
    local text = f:read("*a")
    f:close()
    local decode = require("campaign").decode or require("cjson").decode
    local doc = decode(text)
    local count = 0
    for _, ops in pairs(doc.paths) do
      for method, op in pairs(ops) do
        if type(op) == "table" and op.operationId then
          count = count + 1
          local fname = api.operations[op.operationId]
          assert.is_string(fname, op.operationId .. " (" .. method .. ") is not mapped")
          assert.is_function(api[fname], fname)
        end
      end
    end
    assert.is_true(count >= 28, "only " .. count .. " operations found")
  end)
end)

-- acs-api.md §3: "client unwraps a one-element `content` when it gets one". Every getter of one
-- record by its key; each row: function, arguments after the client, the path it GETs.
local single_getters = {
  { "get_profile", { "@p" }, "profileAndServices/profile/@p" },
  { "get_service", { "@p" }, "profileAndServices/service/@p" },
  { "get_history_of_profile", { "@p" }, "profileAndServices/history/@p" },
  { "get_custom_resource", { "cusProduct", "@p" }, "profileAndServicesExt/cusProduct/@p" },
  { "get_custom_resource", { "cusShop", "@p", { basic = true } }, "customResources/cusShop/@p" },
  { "get_profile_with_org_unit", { "@p" }, "profileAndServicesExt/profile/@p" },
  { "get_workflow", { "WKF1" }, "workflow/execution/WKF1" },
  { "get_transactional_event", { "EVTcart", "@p", { tenant = "acme" } }, "mcacme/EVTcart/@p" },
}

describe("campaign.api single-record getters", function()
  for _, row in ipairs(single_getters) do
    local name, args, path = row[1], row[2], row[3]
    it(name .. " unwraps {content = {record}} from GET " .. path, function()
      local record = { PKey = "@p", label = "one" }
      local res = { status = 200, headers = {}, attempts = 1 }
      local wrapped = fake.new(function() return { content = { record } }, res end)
      local got, r = api[name](wrapped, unpack_args(args))
      assert.are.equal(record, got)
      assert.are.equal(res, r)
      assert.are.equal(path, wrapped.calls[1].path)
      local bare = fake.new(function() return record, res end)
      assert.are.equal(record, (api[name](bare, unpack_args(args))))
    end)
  end

  it("leave a record with its own PKey, or a content of two, as ACS gave it", function()
    for _, row in ipairs(single_getters) do
      local own = { PKey = "@p", content = { { PKey = "@q" } } }
      assert.are.equal(own, (api[row[1]](fake.new(function() return own, {} end), unpack_args(row[2]))))
      local two = { content = { { PKey = "@a" }, { PKey = "@b" } } }
      assert.are.equal(two, (api[row[1]](fake.new(function() return two, {} end), unpack_args(row[2]))))
    end
  end)

  it("pass failures through", function()
    local err = { kind = "http", status = 404 }
    for _, row in ipairs(single_getters) do
      local body, e = api[row[1]](fake.new(function() return nil, err end), unpack_args(row[2]))
      assert.is_nil(body)
      assert.are.equal(err, e)
    end
  end)
end)

-- acs-api.md §5: subscribe answers the subscription record (PKey, created, service{PKey, href,
-- label, name, title}, serviceName, subscriber{...}) without a top-level href; unsubscribe is
-- DELETE …/service/<PKEY>/subscriptions/<PKEY>.
describe("campaign.api.unsubscribe with the record subscribe answers", function()
  local ROOT = "https://mc.adobe.io/acme/campaign/"
  local function record(service)
    return { PKey = "@sub1", created = "2019-09-25 00:19:14.569Z", serviceName = "news",
      service = service, subscriber = { PKey = "@p", href = ROOT .. "profileAndServices/profile/@p",
      title = "amy" }, email = "amy@mail.com", expirationDate = "", metadata = "subscriptionRcp" }
  end

  it("DELETEs <service.href>/subscriptions/<PKey>", function()
    local subscribed = record { PKey = "@s", href = ROOT .. "profileAndServices/service/@s", label = "News",
      name = "news", title = "News (news)" }
    local client = fake.new(fake.routes {
      ["POST profileAndServices/profile/@p/subscriptions/"] = { subscribed, { status = 201 } },
    })
    local sub = assert(api.subscribe(client, "@p", "@s"))
    local gone = api.unsubscribe(client, sub)
    assert.is_table(gone)
    assert.are.equal(2, #client.calls)
    assert.are.equal("DELETE", client.calls[2].method)
    assert.are.equal(ROOT .. "profileAndServices/service/@s/subscriptions/@sub1", client.calls[2].path)
    assert.is_nil(client.calls[2].opts)
  end)

  it("a relative service.href, with or without its trailing slash", function()
    for _, href in ipairs { "profileAndServices/service/@s", "profileAndServices/service/@s/" } do
      local client = fake.new()
      api.unsubscribe(client, record { PKey = "@s", href = href })
      assert.are.equal("profileAndServices/service/@s/subscriptions/@sub1", client.calls[1].path)
    end
  end)

  it("builds profileAndServices/service/<service.PKey>/subscriptions/<PKey> without service.href", function()
    local client = fake.new()
    api.unsubscribe(client, record { PKey = "@s", label = "News" })
    assert.are.equal("DELETE", client.calls[1].method)
    assert.are.equal("profileAndServices/service/@s/subscriptions/@sub1", client.calls[1].path)
  end)

  it("still takes a record's own href first", function()
    local client = fake.new()
    local sub = record { PKey = "@s", href = ROOT .. "profileAndServices/service/@s" }
    sub.href = "profileAndServices/profile/@p/subscriptions/@sub1"
    api.unsubscribe(client, sub)
    assert.are.equal("profileAndServices/profile/@p/subscriptions/@sub1", client.calls[1].path)
  end)

  it("raises a usage error, sending nothing, when the record has neither href nor enough to build it",
    function()
      local client = fake.new()
      local cases = {
        record(nil),                                          -- no service
        record { label = "News" },                            -- a service without href or PKey
        { service = { PKey = "@s" } },                        -- no PKey
        { PKey = "@a/../@b", service = { PKey = "@s" } },     -- a PKey that is not one segment
        record { PKey = "@s/x" },
        record { PKey = "@s?x=1" },
      }
      for i, sub in ipairs(cases) do
        local ok, msg = pcall(api.unsubscribe, client, sub)
        assert.is_false(ok, "case " .. i)
        assert.matches("campaign.api.unsubscribe: bad argument #2 'subscription'", msg, 1, true)
      end
      local _, msg = pcall(function() api.unsubscribe(client, { service = { PKey = "@s" } }) end)
      assert.matches("api_spec.lua:%d+: campaign.api.unsubscribe:", msg)
      assert.matches("no href", msg, 1, true)
      assert.are.equal(0, #client.calls)
    end)
end)

-- acs-api.md §4: "`_lineStart=@…` is an opaque cursor — only use the `next.href` verbatim".
describe("campaign.api hands hrefs to the client verbatim", function()
  local ROOT = "https://mc.adobe.io/acme/campaign/"
  local NEXT = "profileAndServices/profile/?_lineStart=@a+b&_lineCount=1"

  it("get_data_from_relative_url: a relative href and its query, as given", function()
    for _, href in ipairs { NEXT, "/" .. NEXT, "/acme/campaign/" .. NEXT, ROOT .. NEXT,
        ROOT .. "profileAndServices/profile//_count?_lineCount=1&_lineStart=@x%2Fy%3D" } do
      local client = fake.new()
      api.get_data_from_relative_url(client, href)
      assert.are.equal(href, client.calls[1].path)
      assert.is_nil(client.calls[1].opts)
    end
  end)

  it("get_data_from_relative_url: extra parameters go as opts.query, after the href's", function()
    local client = fake.new()
    api.get_data_from_relative_url(client, NEXT, { _forcePagination = true, n = 2 })
    assert.are.equal(NEXT, client.calls[1].path)
    assert.are.same({ _forcePagination = "true", n = "2" }, client.calls[1].query)
    api.get_data_from_relative_url(client, ROOT .. "x/y", { a = "b" })
    assert.are.equal(ROOT .. "x/y", client.calls[2].path)
    assert.are.same({ a = "b" }, client.calls[2].query)
  end)

  it("get_data_from_relative_url: a parameter the href already has raises and sends nothing", function()
    local client = fake.new()
    local ok, msg = pcall(api.get_data_from_relative_url, client, NEXT, { _lineCount = 5 })
    assert.is_false(ok)
    assert.matches("'_lineCount' is already in the href's own query", msg, 1, true)
    ok = pcall(api.get_data_from_relative_url, client, "x?a%5Fb=1", { a_b = 5 })
    assert.is_false(ok)
    assert.are.equal(0, #client.calls)
  end)

  it("get_count, the signal trigger, the privacy file and post_data_to_url too", function()
    local client = fake.new(function(c)
      if c.method == "GET" then return { count = 3 }, { status = 200 } end
      return {}, { status = 200 }
    end)
    local count = "profileAndServices/profile//_count?_lineStart=@a+b&_lineCount=1"
    assert.are.equal(3, (api.get_count(client, count)))
    assert.are.equal(3, (api.get_count(client, { count = { href = ROOT .. count } })))
    local trigger = "workflow/execution/@w/activities/activity/@a/trigger/?x=a+b&a=1"
    api.trigger_signal_activity(client, trigger)
    local data = "privacy/privacyTool/@r/privacyRequestData?k=%2B+&a=1"
    api.get_gdpr_data_file(client, data, "PT1")
    api.post_data_to_url(client, data, { name = "PT1" })
    local want = { ROOT .. count, count, trigger, data, data }
    table.sort(want)
    local got = {}
    for i, c in ipairs(client.calls) do got[i] = c.path end
    table.sort(got)
    assert.are.same(want, got)
    for _, c in ipairs(client.calls) do assert.is_nil(c.query) end
    assert.are.same({ raw = true }, client.calls[3].opts)
  end)

  it("subscriptions: the owner's subscriptions.href and the subscription's href", function()
    local client = fake.new()
    local href = ROOT .. "profileAndServices/profile/@p/subscriptions/?_lineStart=@c+d"
    api.get_profile_subscriptions(client, { PKey = "@p", subscriptions = { href = href } })
    assert.are.equal(href, client.calls[1].path)
    api.get_service_subscriptions(client, "@s", { _lineCount = 5 })
    assert.are.equal("profileAndServices/service/@s/subscriptions/", client.calls[2].path)
    assert.are.same({ _lineCount = "5" }, client.calls[2].query)
  end)

  -- The C client's own URL builder: the bytes that would go on the wire.
  it("so the C client sends the cursor's bytes unchanged", function()
    local real = require("campaign").new { org = "acme", api_key = "k", token = "t",
      base_url = "https://mc.adobe.io" }
    local client = fake.new()
    api.get_data_from_relative_url(client, NEXT)
    api.get_data_from_relative_url(client, ROOT .. NEXT, { _forcePagination = true })
    local urls = {}
    for i, c in ipairs(client.calls) do urls[i] = real:url(c.path, c.opts) end
    assert.are.equal(ROOT .. NEXT, urls[1])
    assert.are.equal(ROOT .. NEXT .. "&_forcePagination=true", urls[2])
  end)
end)

describe("campaign.api subscription listings with extra parameters", function()
  it("raise under their own name, at the caller's line, when the href already has the key", function()
    local client = fake.new()
    local profile = { PKey = "@p",
      subscriptions = { href = "profileAndServices/profile/@p/subscriptions/?_lineCount=2" } }
    local _, msg = pcall(function() api.get_profile_subscriptions(client, profile, { _lineCount = 5 }) end)
    assert.matches("api_spec.lua:%d+: campaign.api.get_profile_subscriptions: query parameter "
      .. "'_lineCount'", msg)
    assert.are.equal(0, #client.calls)
  end)
end)
