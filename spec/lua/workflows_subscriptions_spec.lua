-- workflow.subscribe_and_verify / unsubscribe_and_verify against the emulator through the
-- libcurl client: a service by name, PKey or record; the subscriptions read back.
local campaign = require "campaign"
local emulator = require "emulator"
local api = require "campaign.api"
local workflow = require "campaign.workflow"

describe("workflow.subscribe_and_verify / unsubscribe_and_verify against the emulator", function()
  local emu, client, amy, services

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
    amy = assert(api.get_all_profiles(client, { filters = { "byEmail" }, email = "amy.dakota@mail.com" }))
      .content[1]
    services = {}
    for _, s in ipairs(assert(api.get_all_services(client)).content) do services[s.name] = s end
    emu:clear_requests()
  end)

  teardown(function() emu:fresh() end)

  local function subscribed(service_name)
    local list = assert(api.get_profile_subscriptions(client, amy.PKey))
    for _, sub in ipairs(list.content) do
      if sub.serviceName == service_name then return true end
    end
    return false
  end

  local function count(method)
    local n = 0
    for _, r in ipairs(emu:requests()) do if r.method == method then n = n + 1 end end
    return n
  end

  it("subscribes a profile to a service named by its name, and reads it back", function()
    assert.is_false(subscribed("SVC2"))
    local sub, how = workflow.subscribe_and_verify(client, amy.PKey, "SVC2")
    assert.is_table(sub, tostring(how))
    assert.equal("subscribed", how)
    assert.equal(services.SVC2.PKey, sub.service.PKey)
    assert.matches("/subscriptions/@", sub.href)
    assert.equal(1, count("POST"))
    assert.is_true(subscribed("SVC2"))
  end)

  it("is idempotent: an existing subscription is returned without a POST", function()
    -- the seed subscribes odd profiles (Amy is the first) to SVC1
    local sub, how = workflow.subscribe_and_verify(client, amy, services.SVC1.PKey)
    assert.equal("already_subscribed", how, tostring(how))
    assert.equal(services.SVC1.PKey, sub.service.PKey)
    assert.equal(0, count("POST"))
  end)

  it("unsubscribes (DELETE of the subscription's href), reads back, then reports not_subscribed", function()
    local ok, how, removed = workflow.unsubscribe_and_verify(client, amy.PKey, services.SVC1)
    assert.is_true(ok, tostring(how))
    assert.equal("unsubscribed", how)
    assert.equal(services.SVC1.PKey, removed.service.PKey)
    assert.equal(1, count("DELETE"))
    assert.is_false(subscribed("SVC1"))
    emu:clear_requests()
    local again, how2 = workflow.unsubscribe_and_verify(client, amy.PKey, "SVC1")
    assert.is_true(again)
    assert.equal("not_subscribed", how2)
    assert.equal(0, count("DELETE"))
  end)

  it("an unknown service name is kind 'not_found', nothing sent but reads", function()
    local sub, err = workflow.subscribe_and_verify(client, amy.PKey, "SVC9")
    assert.is_nil(sub)
    assert.equal("not_found", err.kind)
    assert.equal("no service is named 'SVC9'", err.message)
    assert.equal(0, count("POST"))
  end)

  it("two services of one name are kind 'ambiguous' with their PKeys", function()
    local a, b = services.SVC1, services.SVC2
    emu:faults { { method = "GET", path = "/service$", status = 200, body = { content = {
      { PKey = a.PKey, name = "TWIN" }, { PKey = b.PKey, name = "TWIN" } } } } }
    local sub, err = workflow.subscribe_and_verify(client, amy.PKey, "TWIN")
    assert.is_nil(sub)
    assert.equal("ambiguous", err.kind)
    assert.same({ a.PKey, b.PKey }, err.pkeys)
  end)

  it("a subscription that does not read back is kind 'verify'", function()
    emu:faults { { method = "POST", path = "/subscriptions/?$", status = 201, body = { PKey = "@x" } } }
    local sub, err = workflow.subscribe_and_verify(client, amy.PKey, "SVC2")
    assert.is_nil(sub)
    assert.equal("verify", err.kind)
    assert.equal(services.SVC2.PKey, err.mismatches.service.expected)
    assert.matches("is not in the profile's subscriptions read back", err.message)
  end)

  it("an unsubscribe that does not take is kind 'verify'", function()
    emu:faults { { method = "DELETE", path = "/subscriptions/@", status = 204 } }
    local ok, err = workflow.unsubscribe_and_verify(client, amy.PKey, "SVC1", { verify_attempts = 2,
      verify_delay = 0.01 })
    assert.is_nil(ok)
    assert.equal("verify", err.kind)
    assert.equal(2, err.attempts)
    assert.matches("is still in the profile's subscriptions", err.message)
  end)

  it("passes ACS's errors through (a profile PKey no record has: 404)", function()
    local missing = "@" .. string.rep("A", 100)
    local sub, err = workflow.subscribe_and_verify(client, missing, "SVC2")
    assert.is_nil(sub)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
  end)

  it("raises for misuse", function()
    local function raises(pattern, fn, ...)
      local ok, msg = pcall(fn, ...)
      assert.is_false(ok)
      assert.matches(pattern, msg)
    end
    local sub, unsub = workflow.subscribe_and_verify, workflow.unsubscribe_and_verify
    raises("bad argument #1 'client'", sub, {}, amy.PKey, "SVC1")
    raises("bad argument #2 'profile' %(PKey or profile record expected, got number%)", sub, client, 1,
      "SVC1")
    raises("bad argument #2 'profile' %(it must not contain '/'", unsub, client, "@a/b", "SVC1")
    raises("the record has neither PKey nor subscriptions.href", sub, client, {}, "SVC1")
    raises("bad argument #3 'service'", sub, client, amy.PKey, 5)
    raises("bad argument #3 'service'", unsub, client, amy.PKey, "")
    raises("unknown opts key 'verify'", sub, client, amy.PKey, "SVC1", { verify = true })
    assert.equal(0, #emu:requests())
  end)
end)
