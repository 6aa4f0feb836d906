-- The client and the Lua layer against answers a server built from acs-api.md may give, which
-- our emulator does not give by default: the emulator's faults (status, body, headers) make it
-- answer each documented shape. See docs/conformance.md for the table of checks.
local campaign = require "campaign"
local seed_records = require "seed_records"
local emulator = require "emulator"
local api = require "campaign.api"
local pages = require "campaign.pages"
local workflow = require "campaign.workflow"

local BASE = "profileAndServices/profile"

describe("conformance with documented ACS answers", function()
  local emu, client

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:reset()
    emu:clear_faults()
    client = campaign.new(emu:client_options { retries = 0 })
  end)

  teardown(function()
    emu:clear_faults()
    emu:reset()
  end)

  local function root() return emu.base_url .. "/" .. emu.org .. "/campaign/" end

  local function fault(f)
    emu:clear_faults()
    emu:faults(f)
  end

  local function amy() return seed_records.amy(client) end

  local function api_requests()
    local n = 0
    for _, r in ipairs(emu:requests()) do
      if r.uri:find("/campaign/", 1, true) then n = n + 1 end
    end
    return n
  end

  describe("reading", function()
    it("get_profile unwraps the seed example's {content = {profile}} single GET", function()
      local pkey = amy().PKey
      fault { method = "GET", path = "/profile/@", status = 200,
        body = { content = { { PKey = pkey, email = "amy.dakota@mail.com" } } } }
      local profile = assert(api.get_profile(client, pkey))
      assert.equals(pkey, profile.PKey)
      assert.equals("amy.dakota@mail.com", profile.email)
    end)

    it("pages through an attribute projection whose content is strings", function()
      fault { method = "GET", path = "/profile/email$", status = 200,
        body = { content = { "a@x.com", "b@x.com" },
          next = { href = root() .. BASE .. "/email?_lineCount=2&_lineStart=@c" } } }
      emu:faults { method = "GET", path = "/profile/email$", status = 200,
        body = { content = { "c@x.com" } } }
      local list = assert(pages.all(client, BASE .. "/email", { _lineCount = "2" }))
      assert.same({ "a@x.com", "b@x.com", "c@x.com" }, list)
    end)

    it("stops at a last page without `next` and at an empty one", function()
      fault { method = "GET", path = "/profile$", status = 200,
        body = { content = { { PKey = "@1" } }, count = { href = root() .. BASE .. "//_count" },
          serverSidePagination = true } }
      local list = assert(pages.all(client, BASE))
      assert.equals(1, #list)
      assert.equals("@1", list[1].PKey)
    end)

    it("counts with an inline count.value without a second request", function()
      fault { method = "GET", path = "/profile$", status = 200, times = 2,
        body = { content = { { PKey = "@1" } },
          count = { href = root() .. BASE .. "//_count", value = 12 } } }
      emu:clear_requests()
      assert.equals(12, pages.count(client, BASE))
      assert.equals(1, api_requests())
      local listing = assert(client:get(BASE))
      emu:clear_requests()
      assert.equals(12, api.get_count(client, listing))
      assert.equals(0, api_requests())
    end)

    it("follows the `profile//_count` double-slash count href ACS documents", function()
      local listing = assert(api.get_all_profiles(client, { line_count = 1 }))
      assert.matches("/profile//_count%?", listing.count.href)
      local n = assert(api.get_count(client, listing))
      assert.equals(#emu:profiles(), n)
      assert.equals(n, assert(api.get_count(client, listing.count.href)))
      assert.equals(n, assert(pages.count(client, BASE)))
    end)

    it("reads an unlinked custom resource's metadata under customResources/resourceType", function()
      local meta = assert(api.get_metadata_for_resource(client, "cusStore", { basic = true }))
      assert.equals("cusStore", meta.name)
      assert.is_table(meta.content)
    end)

    it("reads a transactional event through its relative href", function()
      local ev = assert(api.send_transactional_event(client, "EVTcartAbandonment",
        { email = "a@b.c", ctx = { cartAmount = "$ 1" } }))
      assert.is_nil(ev.href:match("^%a+://"))
      local again = assert(api.get_data_from_relative_url(client, ev.href))
      assert.equals(ev.PKey, again.PKey)
    end)
  end)

  describe("writing", function()
    it("accepts DELETE answered 200 empty, 200 with a JSON body, and 204 without a body", function()
      local pkey = amy().PKey
      for _, answer in ipairs { { 200, "" }, { 200, '{"PKey":"' .. pkey .. '"}' }, { 204, "" } } do
        fault { method = "DELETE", status = answer[1], body = answer[2] }
        local body, res = api.delete_profile(client, pkey)
        assert.is_table(body, tostring(res))
        assert.equals(answer[1], res.status)
      end
    end)

    it("returns a privacy data file answered as a JSON string", function()
      local href = root() .. "privacy/privacyTool/@r/privacyRequestData"
      fault { method = "POST", path = "privacyRequestData", status = 200,
        body = '"<?xml version=\\"1.0\\"?><data/>"' }
      local file = assert(api.get_gdpr_data_file(client, href, "PT1"))
      assert.equals('<?xml version="1.0"?><data/>', file)
    end)

    it("reports the plain-text cooldown answer of a signal trigger as an http error with its text", function()
      local trigger = root() .. "workflow/execution/WKF1/activities/activity/signal1/trigger/"
      fault { method = "POST", path = "/trigger", status = 200,
        body = "The signal activity was already triggered less than 10 minutes ago.",
        headers = { ["Content-Type"] = "text/plain" } }
      local ok, err = api.trigger_signal_activity(client, trigger, { parameters = {} })
      assert.is_nil(ok)
      assert.equals("http", err.kind)
      assert.equals(200, err.status)
      assert.matches("already triggered", err.message)
      assert.matches("already triggered", tostring(err))
    end)

    it("reads both error layers: gateway {error_code, message} and {code, message}", function()
      fault { status = 403, body = { error_code = "403023", message = "Profile is not valid" } }
      local _, err = client:get(BASE)
      assert.equals(403, err.status)
      assert.equals("403023", tostring(err.code))
      assert.equals("Profile is not valid", err.message)
      fault { status = 502, body = { code = 502,
        message = "Oops. Something went wrong. Check your URI and try again." } }
      _, err = client:get(BASE)
      assert.equals(502, err.status)
      assert.equals("502", tostring(err.code))
      assert.matches("Check your URI", tostring(err))
    end)

    it("reports the emulator's own signal cooldown (config signal_cooldown) the same way", function()
      emu:config { signal_cooldown = 600 }
      finally(function() emu:config { signal_cooldown = 0 } end)
      local wf = assert(api.get_workflow(client, "WKF1"))
      local trigger = wf.activities.activity.signal1.trigger.href
      local first = assert(api.trigger_signal_activity(client, trigger, { parameters = { audience = "a" } }))
      assert.same({}, first)
      local ok, err = api.trigger_signal_activity(client, trigger, { parameters = { audience = "b" } })
      assert.is_nil(ok)
      assert.equals("http", err.kind)
      assert.equals("text/plain;charset=utf-8", err.headers["content-type"])
      assert.matches("already triggered less than 600 seconds ago", err.message)
    end)

    it("honours a Retry-After given as an HTTP date", function()
      local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 60)
      fault { method = "GET", path = "/profile$", status = 429, headers = { ["Retry-After"] = when } }
      local body, err = client:get(BASE)
      assert.is_nil(body)
      assert.equals(429, err.status)
      assert.is_true(err.retry_after > 30 and err.retry_after <= 61, tostring(err.retry_after))
    end)
  end)

  describe("subscriptions", function()
    local function a_service(profile_pkey) return seed_records.unsubscribed_service(client, profile_pkey) end

    it("subscribe POSTs {service = {PKey}} to the profile's subscriptions href; unsubscribe DELETEs it",
      function()
        local profile = assert(api.get_profile(client, amy().PKey))
        local service = a_service(profile.PKey)
        local before = assert(api.get_profile_subscriptions(client, profile))
        local sub, res = api.subscribe(client, profile, service.PKey)
        assert.is_table(sub, tostring(res))
        assert.equals(201, res.status)
        assert.equals(service.PKey, sub.service.PKey)
        local after = assert(api.get_profile_subscriptions(client, profile.PKey))
        assert.equals(#before.content + 1, #after.content)
        local requests = emu:requests()
        local post = requests[#requests - 1]
        assert.equals("POST", post.method)
        assert.same({ service = { PKey = service.PKey } }, campaign.decode(post.body))
        local gone, dres = api.unsubscribe(client, sub)
        assert.is_table(gone, tostring(dres))
        assert.equals(204, dres.status)
        assert.equals(#before.content, #assert(api.get_profile_subscriptions(client, profile)).content)
      end)

    it("add_subscriber POSTs {subscriber = {PKey}} to the service's subscriptions", function()
      local pkey = amy().PKey
      local service = a_service(pkey)
      local sub = assert(api.add_subscriber(client, service, pkey))
      assert.equals(pkey, sub.subscriber.PKey)
      local subs = assert(api.get_service_subscriptions(client, service.PKey))
      local found = false
      for _, s in ipairs(subs.content) do
        if s.subscriber.PKey == pkey then found = true end
      end
      assert.is_true(found)
      assert.is_table(assert(api.unsubscribe(client, sub.href)))
    end)

    it("unsubscribe refuses a href that is not a subscription's (no DELETE of the service itself)", function()
      assert.has_error(function() api.unsubscribe(client, root() .. "profileAndServices/service/@s") end)
    end)
  end)

  describe("update_and_verify and ACS's dataPolicy", function()
    after_each(function() emu:config { data_policies = false } end)

    it("names the dataPolicy rewrite as the cause of the mismatch", function()
      emu:config { data_policies = true }
      local meta = assert(api.get_metadata_for_resource(client, "profile"))
      local profile, err = workflow.update_and_verify(client, amy().PKey,
        { email = "Amy.NEW@Mail.com", lastName = "mc donald" }, { metadata = meta })
      assert.is_nil(profile)
      assert.equals("verify", err.kind)
      assert.equals("data_policy", err.mismatches.email.cause)
      assert.equals("email", err.mismatches.email.data_policy)
      assert.equals("amy.new@mail.com", err.mismatches.email.got)
      assert.equals("data_policy", err.mismatches.lastName.cause)
      assert.matches("dataPolicy", err.message)
    end)

    it("passes when the values are sent as ACS stores them", function()
      emu:config { data_policies = true }
      local profile = assert(workflow.update_and_verify(client, amy().PKey,
        { email = "amy.new@mail.com", lastName = "Mc Donald" }))
      assert.equals("amy.new@mail.com", profile.email)
    end)
  end)
end)
