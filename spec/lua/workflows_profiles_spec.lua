-- workflow.upsert_profile against the emulator through the libcurl client: find by email or
-- filter, PATCH one (update_and_verify), create none, refuse several; what ACS stores after.
local campaign = require "campaign"
local emulator = require "emulator"
local api = require "campaign.api"
local workflow = require "campaign.workflow"

describe("workflow.upsert_profile against the emulator", function()
  local emu, client

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
  end)

  teardown(function() emu:fresh() end)

  local function methods()
    local out = {}
    for _, r in ipairs(emu:requests()) do out[#out + 1] = r.method end
    return out
  end

  local function stored(email)
    local found = assert(api.get_all_profiles(client, { filters = { "byEmail" }, email = email }))
    return found.content
  end

  it("creates the profile when no email matches: POST with the email, then read back", function()
    local record, how, info = workflow.upsert_profile(client, "new.person@example.com",
      { firstName = "New", lastName = "Person" })
    assert.is_table(record, tostring(how))
    assert.equal("created", how)
    assert.equal(201, info.status)
    assert.equal(1, info.reads)
    assert.equal("new.person@example.com", record.email)
    assert.equal("New", record.firstName)
    assert.same({ "GET", "POST", "GET" }, methods())
    local rows = stored("new.person@example.com")
    assert.equal(1, #rows)
    assert.equal(record.PKey, rows[1].PKey)
  end)

  it("updates the one profile an email matches, through update_and_verify", function()
    local amy = stored("amy.dakota@mail.com")[1]
    emu:clear_requests()
    local record, how, info = workflow.upsert_profile(client, { email = "amy.dakota@mail.com" },
      { phone = "3301020304" })
    assert.is_table(record, tostring(how))
    assert.equal("updated", how)
    assert.equal(amy.PKey, record.PKey)
    assert.equal("3301020304", record.phone)
    assert.is_true(info.changed)
    assert.same({ "GET", "GET", "PATCH", "GET" }, methods())
    assert.equal("3301020304", stored("amy.dakota@mail.com")[1].phone)
    -- run again: found, nothing to change (skip_unchanged: no PATCH)
    emu:clear_requests()
    local _, how2, info2 = workflow.upsert_profile(client, "amy.dakota@mail.com", { phone = "3301020304" },
      { skip_unchanged = true })
    assert.equal("updated", how2)
    assert.is_false(info2.changed)
    assert.same({ "GET", "GET" }, methods())
  end)

  it("matches through a given filter and its parameters", function()
    local record, how = workflow.upsert_profile(client,
      { filter = "byText", text = "Dakota", filterType = "lastName" }, { firstName = "Amelia" })
    assert.equal("updated", how)
    assert.equal("amy.dakota@mail.com", record.email)
    assert.equal("Amelia", record.firstName)
    local first = emu:requests()[1]
    assert.matches("/profileAndServices/profile/byText%?", first.uri)
  end)

  it("refuses when several profiles match (kind 'ambiguous', their PKeys), writing nothing", function()
    local record, err = workflow.upsert_profile(client,
      { filter = "byText", text = "Hill", filterType = "lastName" }, { firstName = "Same" })
    assert.is_nil(record)
    assert.equal("ambiguous", err.kind)
    assert.equal(4, #err.pkeys)
    for _, pkey in ipairs(err.pkeys) do assert.matches("^@", pkey) end
    assert.matches("4 profiles match filter byText", err.message)
    assert.same({ "GET" }, methods())
  end)

  it("opts.create = false: no match is kind 'not_found', nothing created", function()
    local record, err = workflow.upsert_profile(client, "nobody@example.com", { firstName = "X" },
      { create = false })
    assert.is_nil(record)
    assert.equal("not_found", err.kind)
    assert.same({ "GET" }, methods())
    assert.equal(0, #stored("nobody@example.com"))
  end)

  it("a create that does not read back as sent is kind 'verify' (ACS's data policy)", function()
    emu:config { data_policies = true }
    local record, err = workflow.upsert_profile(client, "policy@example.com", { firstName = "jOHN" })
    assert.is_nil(record)
    assert.equal("verify", err.kind)
    assert.equal("jOHN", err.mismatches.firstName.expected)
    assert.equal("John", err.mismatches.firstName.got)
    assert.matches("the created profile read back differs from the fields sent: firstName", err.message)
    assert.matches("^@", err.pkey)
    -- opts.compare decides instead
    local ok, how = workflow.upsert_profile(client, "policy2@example.com", { firstName = "jOHN" },
      { compare = function(_, a, b) return type(a) ~= "string" or a:lower() == tostring(b):lower() end })
    assert.is_table(ok, tostring(how))
    assert.equal("created", how)
  end)

  it("an update that does not read back is update_and_verify's kind 'verify'", function()
    local amy = stored("amy.dakota@mail.com")[1]
    emu:faults { { method = "PATCH", path = "/profile/@", status = 200,
      body = { PKey = amy.PKey, href = "x" } } }
    local record, err = workflow.upsert_profile(client, "amy.dakota@mail.com", { firstName = "Lost" })
    assert.is_nil(record)
    assert.equal("verify", err.kind)
    assert.equal("Lost", err.mismatches.firstName.expected)
  end)

  it("passes ACS's refusals through (a duplicate email on create is 500)", function()
    -- the listing says nobody, the POST meets the existing profile
    emu:faults { { method = "GET", path = "/profile/byEmail", status = 200,
      body = { content = {} } } }
    local record, err = workflow.upsert_profile(client, "amy.dakota@mail.com", { firstName = "Twin" })
    assert.is_nil(record)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
  end)

  it("uses the Ext API with opts.ext (custom fields)", function()
    local record, how = workflow.upsert_profile(client, "amy.dakota@mail.com", { cusLoyaltyPoints = 42 },
      { ext = true })
    assert.equal("updated", how, tostring(how))
    assert.equal(42, record.cusLoyaltyPoints)
    assert.matches("/profileAndServicesExt/profile/byEmail", emu:requests()[1].uri)
    local created, how2 = workflow.upsert_profile(client, "ext.new@example.com", { cusLoyaltyPoints = 7 },
      { ext = true })
    assert.equal("created", how2, tostring(how2))
    assert.equal(7, created.cusLoyaltyPoints)
  end)

  it("raises for misuse before sending anything", function()
    local function raises(pattern, a, b, c, d)
      local ok, msg = pcall(workflow.upsert_profile, a, b, c, d)
      assert.is_false(ok)
      assert.matches(pattern, msg)
    end
    raises("bad argument #1 'client'", nil, "a@b.c", {})
    raises("bad argument #2 'match'", client, 42, {})
    raises("bad argument #2 'match' %(empty email%)", client, "", {})
    raises("a table needs 'email' or 'filter'", client, { name = "x" }, {})
    raises("key 'text' needs a 'filter'", client, { email = "a@b.c", text = "x" }, {})
    raises("match.filter must be a filter name", client, { filter = 3 }, {})
    raises("bad argument #3 'fields'", client, "a@b.c", "x")
    raises("unknown opts key 'creat'", client, "a@b.c", {}, { creat = false })
    raises("opts.verify_attempts must be an integer >= 1", client, "a@b.c", {}, { verify_attempts = 0 })
    assert.equal(0, #emu:requests())
  end)
end)
