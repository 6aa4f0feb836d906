-- A key (PKey, resource name, event id, workflow id, tenant, filter name) is ONE opaque path
-- segment in every campaign.api and campaign.workflow function: encoded so that '?', '#', '%'
-- and spaces are data, and refused (a raise, nothing sent) when it cannot be one segment.
local api = require "campaign.api"
local workflow = require "campaign.workflow"
local fake = require "lua.fake_client"

local PKEY = "@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb-_x"

-- Every function that puts a key in the path: {name, argument number, argument name,
-- function(client, key) making the call, the path it must use for `key` (already encoded)}.
local keyed = {
  { "get_profile", 2, "pkey", function(c, k) return api.get_profile(c, k) end,
    function(k) return "profileAndServices/profile/" .. k end },
  { "update_profile", 2, "pkey", function(c, k) return api.update_profile(c, k, { a = 1 }) end,
    function(k) return "profileAndServices/profile/" .. k end },
  { "delete_profile", 2, "pkey", function(c, k) return api.delete_profile(c, k) end,
    function(k) return "profileAndServices/profile/" .. k end },
  { "get_history_of_profile", 2, "pkey", function(c, k) return api.get_history_of_profile(c, k) end,
    function(k) return "profileAndServices/history/" .. k end },
  { "get_service", 2, "pkey", function(c, k) return api.get_service(c, k) end,
    function(k) return "profileAndServices/service/" .. k end },
  { "get_metadata_for_resource", 2, "resource", function(c, k) return api.get_metadata_for_resource(c, k) end,
    function(k) return "profileAndServices/resourceType/" .. k end },
  { "get_metadata_for_resource_ext", 2, "resource",
    function(c, k) return api.get_metadata_for_resource_ext(c, k) end,
    function(k) return "profileAndServicesExt/resourceType/" .. k end },
  { "get_all_profile_and_services_ext", 2, "resource",
    function(c, k) return api.get_all_profile_and_services_ext(c, k) end,
    function(k) return "profileAndServicesExt/" .. k end },
  { "get_all_basic_custom_resources", 2, "resource",
    function(c, k) return api.get_all_basic_custom_resources(c, k) end,
    function(k) return "customResources/" .. k end },
  { "get_all_custom_resources", 2, "resource", function(c, k) return api.get_all_custom_resources(c, k) end,
    function(k) return "profileAndServicesExt/" .. k end },
  { "get_custom_resource", 2, "resource", function(c, k) return api.get_custom_resource(c, k, PKEY) end,
    function(k) return "profileAndServicesExt/" .. k .. "/" .. PKEY end },
  { "get_custom_resource", 3, "pkey", function(c, k) return api.get_custom_resource(c, "cusX", k) end,
    function(k) return "profileAndServicesExt/cusX/" .. k end },
  { "create_custom_resource", 2, "resource", function(c, k) return api.create_custom_resource(c, k, {}) end,
    function(k) return "profileAndServicesExt/" .. k end },
  { "update_custom_resource", 2, "resource",
    function(c, k) return api.update_custom_resource(c, k, PKEY, { a = 1 }) end,
    function(k) return "profileAndServicesExt/" .. k .. "/" .. PKEY end },
  { "update_custom_resource", 3, "pkey",
    function(c, k) return api.update_custom_resource(c, "cusX", k, { a = 1 }, { basic = true }) end,
    function(k) return "customResources/cusX/" .. k end },
  { "delete_custom_resource", 2, "resource", function(c, k) return api.delete_custom_resource(c, k, PKEY) end,
    function(k) return "profileAndServicesExt/" .. k .. "/" .. PKEY end },
  { "delete_custom_resource", 3, "pkey", function(c, k) return api.delete_custom_resource(c, "cusX", k) end,
    function(k) return "profileAndServicesExt/cusX/" .. k end },
  { "get_profile_with_org_unit", 2, "pkey", function(c, k) return api.get_profile_with_org_unit(c, k) end,
    function(k) return "profileAndServicesExt/profile/" .. k end },
  { "update_profile_org_unit", 2, "pkey", function(c, k) return api.update_profile_org_unit(c, k, PKEY) end,
    function(k) return "profileAndServicesExt/profile/" .. k end },
  { "update_org_unit", 2, "org_unit_pkey",
    function(c, k) return api.update_org_unit(c, k, { label = "X" }) end,
    function(k) return "profileAndServicesExt/orgUnitBase/" .. k end },
  { "get_workflow", 2, "workflow_id", function(c, k) return api.get_workflow(c, k) end,
    function(k) return "workflow/execution/" .. k end },
  { "control_workflow", 2, "workflow_id", function(c, k) return api.control_workflow(c, k, "start") end,
    function(k) return "workflow/execution/" .. k .. "/commands" end },
  { "send_transactional_event", 2, "event_id",
    function(c, k) return api.send_transactional_event(c, k, {}, { tenant = "acme" }) end,
    function(k) return "mcacme/" .. k end },
  { "get_transactional_event", 2, "event_id",
    function(c, k) return api.get_transactional_event(c, k, "@e", { tenant = "acme" }) end,
    function(k) return "mcacme/" .. k .. "/@e" end },
  { "get_transactional_event", 3, "event_pkey",
    function(c, k) return api.get_transactional_event(c, "EVTx", k, { tenant = "acme" }) end,
    function(k) return "mcacme/EVTx/" .. k end },
  { "get_profile_subscriptions", 2, "profile", function(c, k) return api.get_profile_subscriptions(c, k) end,
    function(k) return "profileAndServices/profile/" .. k .. "/subscriptions/" end },
  { "get_service_subscriptions", 2, "service", function(c, k) return api.get_service_subscriptions(c, k) end,
    function(k) return "profileAndServices/service/" .. k .. "/subscriptions/" end },
  { "subscribe", 2, "profile", function(c, k) return api.subscribe(c, k, "@s") end,
    function(k) return "profileAndServices/profile/" .. k .. "/subscriptions/" end },
  { "add_subscriber", 2, "service", function(c, k) return api.add_subscriber(c, k, "@p") end,
    function(k) return "profileAndServices/service/" .. k .. "/subscriptions/" end },
}

-- key -> the segment sent
local encoded = {
  { PKEY, PKEY },                                   -- a PKey goes out as it is ('@' is a pchar)
  { "#", "%23" },                                   -- was "profile/" (the collection)
  { "?_lineCount=1", "%3F_lineCount%3D1" },         -- was a listing's first record
  { "a b+c:d;e,f", "a%20b%2Bc%3Ad%3Be%2Cf" },
  { "100%", "100%25" },
  { "%41", "%2541" },                               -- a '%' in a key is data, never an escape
  { "~x.y_z-", "~x.y_z-" },
  { "caf\195\169", "caf%C3%A9" },
}

-- key -> the end of the message
local refused = {
  { "@x/y", "must not contain '/'" },
  { "..", "must not be '.' or '..'" },
  { ".", "must not be '.' or '..'" },
  { "a\\b", "must not contain '\\'" },
  { "a\r\nX: y", "must not contain control characters" },
  { "..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F@ou", "must not contain '/', even percent-encoded" },
  { "%2E%2e", "must not be '.' or '..', even percent-encoded" },
  { "a%5cb", "must not contain '\\', even percent-encoded" },
  { "%0A", "must not contain control characters, even percent-encoded" },
}

describe("api.key_segment", function()
  it("encodes every byte but unreserved characters and '@'", function()
    for _, case in ipairs(encoded) do
      assert.equal(case[2], api.key_segment(case[1]), case[1])
    end
  end)

  it("answers nil and the problem for a key that cannot be one segment", function()
    for _, case in ipairs(refused) do
      local seg, problem = api.key_segment(case[1])
      assert.is_nil(seg, case[1])
      assert.equal(case[2], problem, case[1])
    end
    assert.same({ nil, "must not be empty" }, { api.key_segment("") })
    assert.same({ nil, "must be a string" }, { api.key_segment(42) })
  end)
end)

describe("campaign.api functions taking a key", function()
  it("send it as one encoded segment", function()
    for _, fn in ipairs(keyed) do
      for _, case in ipairs(encoded) do
        local client = fake.new()
        fn[4](client, case[1])
        assert.equal(1, #client.calls, fn[1])
        assert.equal(fn[5](case[2]), client.calls[1].path, fn[1] .. " " .. fn[3] .. " " .. case[1])
      end
    end
  end)

  it("raise, naming the function, the argument and the problem, and send nothing", function()
    for _, fn in ipairs(keyed) do
      for _, case in ipairs(refused) do
        local client = fake.new()
        local ok, err = pcall(fn[4], client, case[1])
        assert.is_false(ok, fn[1] .. " accepted " .. case[1])
        local want = string.format("campaign.api.%s: argument #%d '%s' %s", fn[1], fn[2], fn[3], case[2])
        assert.truthy(tostring(err):find(want, 1, true), want .. "\n got: " .. tostring(err))
        assert.equal(0, #client.calls, fn[1])
      end
      local ok, err = pcall(fn[4], fake.new(), "")
      assert.is_false(ok)
      assert.matches("non-empty string expected", err, 1, true)
    end
  end)

  it("encode a filter name and a tenant the same way", function()
    local client = fake.new()
    api.get_all_profiles(client, { filters = { "by Text#" } })
    assert.equal("profileAndServices/profile/by%20Text%23", client.calls[1].path)
    local ok, err = pcall(api.get_all_profiles, client, { filters = { ".." } })
    assert.is_false(ok)
    assert.matches("'..' must not be '.' or '..'", err, 1, true)
    ok, err = pcall(api.get_all_profiles, client, { filters = { "a%2Fb" } })
    assert.is_false(ok)
    assert.matches("even percent-encoded", err, 1, true)

    api.send_transactional_event(client, "EVTx", {}, { tenant = "ac me" })
    assert.equal("mcac%20me/EVTx", client.calls[2].path)
    ok, err = pcall(api.send_transactional_event, client, "EVTx", {}, { tenant = "a/../b" })
    assert.is_false(ok)
    assert.matches("opts.tenant must be a non-empty string (it must not contain '/')", err, 1, true)
    assert.equal(2, #client.calls)
  end)

  it("build an unsubscribe href from a record's PKeys encoded", function()
    local client = fake.new()
    api.unsubscribe(client, { PKey = "@a+b", service = { PKey = "@s c" } })
    assert.equal("profileAndServices/service/@s%20c/subscriptions/@a%2Bb", client.calls[1].path)
    for _, pkey in ipairs { "..", "%2E%2E", "@a\\b" } do
      assert.has_error(function() api.unsubscribe(client, { PKey = pkey, service = { PKey = "@s" } }) end)
      assert.has_error(function() api.unsubscribe(client, { PKey = "@p", service = { PKey = pkey } }) end)
    end
    assert.equal(1, #client.calls)
  end)
end)

describe("campaign.workflow and a key", function()
  local function store()
    return fake.new(function(c)
      if c.method == "PATCH" then return { PKey = "x" }, { status = 200 } end
      return { label = "X" }, { status = 200 }
    end)
  end

  it("update_and_verify sends the PKey as one encoded segment", function()
    for _, case in ipairs(encoded) do
      local client = store()
      assert(workflow.update_and_verify(client, case[1], { label = "X" }, { verify_delay = 0 }))
      for _, call in ipairs(client.calls) do
        assert.equal("profileAndServices/profile/" .. case[2], call.path, case[1])
      end
      client = store()
      assert(workflow.update_and_verify(client, case[1], { label = "X" },
        { resource = "profileAndServicesExt/orgUnitBase" }))
      assert.equal("profileAndServicesExt/orgUnitBase/" .. case[2], client.calls[1].path)
    end
  end)

  it("update_and_verify raises for a PKey that cannot be one segment, naming why, sending nothing", function()
    for _, case in ipairs(refused) do
      local client = store()
      local ok, err = pcall(workflow.update_and_verify, client, case[1], { label = "X" })
      assert.is_false(ok, case[1])
      assert.truthy(tostring(err):find("campaign.workflow.update_and_verify: bad argument #2 'pkey' "
        .. "(a PKey string expected; it " .. case[2] .. ")", 1, true), tostring(err))
      assert.equal(0, #client.calls)
    end
  end)

  it("bulk_update fails such an item alone and sends the others encoded", function()
    local client = store()
    local report = workflow.bulk_update(client, {
      { pkey = "..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F@ou", changes = { label = "X" } },
      { pkey = "#", changes = { label = "X" } },
      { pkey = "a\\b", changes = { label = "X" } },
    })
    assert.equal(1, report.ok)
    assert.equal(2, report.failed)
    assert.is_not_nil(report.errors[1])
    assert.is_not_nil(report.errors[3])
    assert.equal(1, #client.calls)
    assert.equal("profileAndServices/profile/%23", client.calls[1].path)
  end)
end)
