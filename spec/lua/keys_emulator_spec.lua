-- The red team's reproductions (hardening item 3) against the emulator, through the libcurl
-- client: a key or a path with encoded separators, '#' or '?' never addresses another resource.
local campaign = require "campaign"
local emulator = require "emulator"
local api = require "campaign.api"
local workflow = require "campaign.workflow"
local seed_records = require "seed_records"

describe("keys and paths that would escape the addressed resource (emulator)", function()
  local emu, client

  local function api_requests()
    local out = {}
    for _, r in ipairs(emu:requests()) do
      if r.uri:find("/" .. emu.org .. "/campaign/", 1, true) == 1 then out[#out + 1] = r end
    end
    return out
  end

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retries = 0 })
  end)

  after_each(function() client:close() end)

  it("update_and_verify with '..%2F' in the PKey raises and leaves the org unit as it was", function()
    local ou = assert(api.get_all_org_units(client)).content[1]
    emu:clear_requests()
    local ok, err = pcall(workflow.update_and_verify, client,
      "..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F" .. ou.PKey, { label = "X" })
    assert.is_false(ok, "reported: " .. tostring(err))
    assert.matches("bad argument #2 'pkey' (a PKey string expected; it must not contain '/', even "
      .. "percent-encoded)", err, 1, true)
    assert.equal(0, #api_requests())
    local after = assert(api.get_all_org_units(client)).content[1]
    assert.equal(ou.PKey, after.PKey)
    assert.equal(ou.label, after.label)
  end)

  it("client:get of a path with '..%2F' raises and never reaches the admin API", function()
    emu:clear_requests()
    local ok, err = pcall(client.get, client, "profileAndServices/..%2F..%2F..%2F_emulator%2Fhealth")
    assert.is_false(ok, "answered: " .. tostring(err))
    assert.matches("campaign.get: encoded '/' and '\\' (%2F, %5C) are refused in paths", err, 1, true)
    assert.equal(0, #emu:requests())
  end)

  it("update_profile with the PKey '#' PATCHes that key, not the collection", function()
    emu:clear_requests()
    local body, err = api.update_profile(client, "#", { firstName = "X" })
    assert.is_nil(body)
    local reqs = api_requests()
    assert.equal(1, #reqs)
    assert.equal("PATCH", reqs[1].method)
    assert.equal("/" .. emu.org .. "/campaign/profileAndServices/profile/%23", reqs[1].uri)
    -- ACS's answer to a PKey it cannot parse (acs-api.md §1), not the collection's 405
    assert.equal(500, err.status)
  end)

  it("get_profile with the PKey '?_lineCount=1' asks for that key, not a listing", function()
    local amy = seed_records.amy(client)
    emu:clear_requests()
    local body, err = api.get_profile(client, "?_lineCount=1")
    assert.is_nil(body, "got a record: " .. tostring(body and body.PKey))
    assert.equal(500, err.status)
    local reqs = api_requests()
    assert.equal(1, #reqs)
    assert.equal("/" .. emu.org .. "/campaign/profileAndServices/profile/%3F_lineCount%3D1", reqs[1].uri)
    -- and a real PKey still goes out as it is
    emu:clear_requests()
    assert.equal(amy.PKey, assert(api.get_profile(client, amy.PKey)).PKey)
    assert.equal("/" .. emu.org .. "/campaign/profileAndServices/profile/" .. amy.PKey, api_requests()[1].uri)
  end)
end)
