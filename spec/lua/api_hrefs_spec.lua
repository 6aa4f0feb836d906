-- campaign.api against the emulator: hrefs go out verbatim (acs-api.md §4), single-record getters
-- unwrap a one-element `content` (§3), and unsubscribe takes the record subscribe answers (§5).
local campaign = require "campaign"
local seed_records = require "seed_records"
local emulator = require "emulator"
local api = require "campaign.api"

describe("campaign.api hrefs, single records and subscriptions against the emulator", function()
  local emu, client

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retries = 0 })
  end)

  teardown(function()
    emu:clear_faults()
    emu:reset()
  end)

  local function root_path() return "/" .. emu.org .. "/campaign/" end

  -- The URIs (path and query as received) of the logged API requests.
  local function api_uris()
    local out = {}
    for _, r in ipairs(emu:requests()) do
      if r.uri:sub(1, #root_path()) == root_path() then out[#out + 1] = r.method .. " " .. r.uri end
    end
    return out
  end

  local function amy() return seed_records.amy(client) end

  describe("hrefs are sent verbatim", function()
    it("a relative href's query keeps its order and its bytes ('+' is not re-encoded as %2B)", function()
      emu:clear_requests()
      local href = "profileAndServices/profile/byText?text=a+b&_lineCount=1"
      assert.is_table(assert(api.get_data_from_relative_url(client, href)))
      assert.are.same({ "GET " .. root_path() .. href }, api_uris())
    end)

    it("a relative next href with its cursor first is followed as given, to the same page", function()
      local first = assert(api.get_all_profiles(client, { line_count = 2 }))
      local next_href = first.next.href
      local path, qs = next_href:match("^[%a]+://[^/]+(/[^?]*)%?(.*)$")
      local cursor = qs:match("_lineStart=[^&]*")
      assert.is_string(cursor)
      -- relative to the campaign root, the cursor before _lineCount (the client sorts the keys of
      -- a query table: an href rebuilt through one would go out as _lineCount=2&_lineStart=…)
      local reordered = path:sub(#root_path() + 1) .. "?" .. cursor .. "&_lineCount=2"
      local expected = assert(api.get_data_from_relative_url(client, next_href))
      emu:clear_requests()
      local page = assert(api.get_data_from_relative_url(client, reordered))
      assert.are.same({ "GET " .. path .. "?" .. cursor .. "&_lineCount=2" }, api_uris())
      assert.are.equal(#expected.content, #page.content)
      assert.are.equal(expected.content[1].PKey, page.content[1].PKey)
    end)

    it("extra parameters are appended after the href's own query", function()
      local first = assert(api.get_all_profiles(client, { line_count = 2 }))
      emu:clear_requests()
      assert(api.get_data_from_relative_url(client, first.next.href, { _forcePagination = true }))
      local path_query = first.next.href:match("^[%a]+://[^/]+(/.*)$")
      assert.are.same({ "GET " .. path_query .. "&_forcePagination=true" }, api_uris())
    end)

    it("a relative count href", function()
      local first = assert(api.get_all_profiles(client, { line_count = 2 }))
      local rel = first.count.href:match("/campaign/(.*)$")
      emu:clear_requests()
      local n = assert(api.get_count(client, rel))
      assert.is_true(n >= 2)
      assert.are.same({ "GET " .. root_path() .. rel }, api_uris())
    end)
  end)

  describe("single-record getters unwrap {content = {record}}", function()
    local function wrapped(path_pattern, record)
      emu:faults { method = "GET", path = path_pattern, status = 200, body = { content = { record } } }
    end

    it("get_history_of_profile", function()
      local pkey = amy().PKey
      wrapped("/history/", { PKey = pkey, email = "amy.dakota@mail.com",
        events = { href = "profileAndServices/history/" .. pkey .. "/events/", metadata = "subHisto" } })
      local history = assert(api.get_history_of_profile(client, pkey))
      assert.are.equal(pkey, history.PKey)
      assert.are.equal("subHisto", history.events.metadata)
    end)

    it("get_workflow", function()
      local bare = assert(api.get_workflow(client, "WKF1"))
      wrapped("/workflow/execution/WKF1$", bare)
      local wf = assert(api.get_workflow(client, "WKF1"))
      assert.are.equal(bare.PKey, wf.PKey)
      assert.is_table(wf.activities)
    end)

    it("get_transactional_event", function()
      local sent = assert(api.send_transactional_event(client, "EVTcartAbandonment",
        { email = "j@mail.com" }))
      local bare = assert(api.get_transactional_event(client, "EVTcartAbandonment", sent.PKey))
      wrapped("/EVTcartAbandonment/", bare)
      local got = assert(api.get_transactional_event(client, "EVTcartAbandonment", sent.PKey))
      assert.are.equal(sent.PKey, got.PKey)
      assert.are.equal(bare.status, got.status)
    end)

    it("get_service, get_custom_resource, get_profile_with_org_unit (the emulator's wrap switch)", function()
      local svc = assert(api.get_all_services(client)).content[1]
      local store = assert(api.get_all_basic_custom_resources(client, "cusStore")).content[1]
      local pkey = amy().PKey
      emu:config { wrap_single_get = true }
      local got_svc = api.get_service(client, svc.PKey)
      local got_store = api.get_custom_resource(client, "cusStore", store.PKey, { basic = true })
      local got_profile = api.get_profile_with_org_unit(client, pkey)
      emu:config { wrap_single_get = false }
      assert.are.equal(svc.PKey, got_svc.PKey)
      assert.are.equal(store.PKey, got_store.PKey)
      assert.are.equal(pkey, got_profile.PKey)
    end)
  end)

  describe("unsubscribe", function()
    local function a_service(profile_pkey) return seed_records.unsubscribed_service(client, profile_pkey) end

    it("takes the record subscribe answers as ACS documents it (no top-level href)", function()
      local profile = amy()
      local service = a_service(profile.PKey)
      local before = #assert(api.get_profile_subscriptions(client, profile.PKey)).content
      local sub = assert(api.subscribe(client, profile, service.PKey))
      sub.href = nil -- acs-api.md §5: PKey, created, service{PKey, href, ...}, subscriber{...}
      assert.is_string(sub.service.href)
      emu:clear_requests()
      local gone, res = api.unsubscribe(client, sub)
      assert.is_table(gone, tostring(res))
      assert.are.equal(204, res.status)
      assert.are.same({ "DELETE " .. root_path() .. "profileAndServices/service/" .. service.PKey
        .. "/subscriptions/" .. sub.PKey }, api_uris())
      assert.are.equal(before, #assert(api.get_profile_subscriptions(client, profile.PKey)).content)
    end)

    it("builds the href from service.PKey when the record has no service.href", function()
      local profile = amy()
      local service = a_service(profile.PKey)
      local sub = assert(api.subscribe(client, profile, service.PKey))
      local gone, res = api.unsubscribe(client, { PKey = sub.PKey, service = { PKey = service.PKey } })
      assert.is_table(gone, tostring(res))
      assert.are.equal(204, res.status)
    end)

    it("refuses a record with nothing to build the href from, sending nothing", function()
      emu:clear_requests()
      assert.has_error(function() api.unsubscribe(client, { PKey = "@x" }) end)
      assert.are.same({}, api_uris())
    end)
  end)
end)
