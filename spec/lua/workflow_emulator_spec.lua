-- campaign.workflow against the emulator through the libcurl client: what ACS stores afterwards.
local campaign = require "campaign"
local emulator = require "emulator"
local api = require "campaign.api"
local pages = require "campaign.pages"
local workflow = require "campaign.workflow"

local function patches(emu, pkey)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "PATCH" and (not pkey or r.uri:find(pkey, 1, true)) then n = n + 1 end
  end
  return n
end

local function count_method(emu, method)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == method and r.uri:find("/campaign/", 1, true) then n = n + 1 end
  end
  return n
end

describe("workflow against the emulator", function()
  local emu, client, amy

  setup(function()
    emu = emulator.shared()
  end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
    local found = assert(api.get_all_profiles(client,
      { filters = { "byEmail" }, email = "amy.dakota@mail.com" }))
    amy = found.content[1]
    assert.is_string(amy.PKey)
    emu:clear_requests()
  end)

  after_each(function()
    emu:clear_faults()
  end)

  describe("update_and_verify", function()
    it("GETs, PATCHes, GETs again and returns the stored profile", function()
      local profile, info = workflow.update_and_verify(client, amy.PKey, { phone = "3301020304" })
      assert.is_table(profile, tostring(info))
      assert.are.equal("3301020304", profile.phone)
      assert.is_true(info.changed)
      assert.are.equal(amy.PKey, info.patch.PKey)
      local log = {}
      for _, r in ipairs(emu:requests()) do log[#log + 1] = r.method end
      assert.are.same({ "GET", "PATCH", "GET" }, log)
      -- ACS (the emulator) really holds it
      local again = assert(api.get_profile(client, amy.PKey))
      assert.are.equal("3301020304", again.phone)
    end)

    it("PATCHes the whole changes even when the profile already holds them (changed = false)", function()
      local profile, info = workflow.update_and_verify(client, amy.PKey,
        { email = amy.email, firstName = amy.firstName, phone = "0102" })
      assert.is_table(profile, tostring(info))
      assert.is_true(info.changed)
      local patch
      for _, r in ipairs(emu:requests()) do if r.method == "PATCH" then patch = r end end
      assert.are.same({ email = amy.email, firstName = amy.firstName, phone = "0102" },
        emulator.json.decode(patch.body))
      emu:clear_requests()
      local _, info2 = workflow.update_and_verify(client, amy.PKey, { email = amy.email })
      assert.is_false(info2.changed)
      assert.are.equal(1, patches(emu))
      assert.are.equal(2, count_method(emu, "GET"))
    end)

    it("opts.skip_unchanged skips the PATCH when the profile already holds the changes", function()
      local profile, info = workflow.update_and_verify(client, amy.PKey,
        { email = amy.email, firstName = amy.firstName }, { skip_unchanged = true })
      assert.is_table(profile, tostring(info))
      assert.is_false(info.changed)
      assert.are.equal(0, patches(emu))
      assert.are.equal(1, count_method(emu, "GET"))
    end)

    it("verifies a boolean set to false (read back as false, not as absent)", function()
      local profile, info = workflow.update_and_verify(client, amy.PKey, { blackListEmail = true })
      assert.is_table(profile, tostring(info))
      assert.is_true(profile.blackListEmail)
      profile, info = workflow.update_and_verify(client, amy.PKey, { blackListEmail = false })
      assert.is_table(profile, tostring(info))
      assert.is_false(profile.blackListEmail)
      assert.is_true(info.changed)
      assert.is_false(assert(api.get_profile(client, amy.PKey)).blackListEmail)
    end)

    it("reports a mismatch when ACS answers 200 to the PATCH without applying it", function()
      emu:faults { { method = "PATCH", path = "/profileAndServices/profile/", status = 200,
                     body = '{"PKey":"' .. amy.PKey .. '","href":"x"}', times = 1 } }
      local profile, err = workflow.update_and_verify(client, amy.PKey, { phone = "0611223344" })
      assert.is_nil(profile)
      assert.are.equal("verify", err.kind)
      assert.are.equal("0611223344", err.mismatches.phone.expected)
      assert.are_not.equal("0611223344", err.mismatches.phone.got)
      assert.matches("phone", tostring(err))
      assert.are.equal(1, patches(emu))
    end)

    it("re-reads verify_attempts times, verify_delay apart, before reporting the mismatch", function()
      emu:faults { { method = "PATCH", path = "/profileAndServices/profile/", status = 200,
                     body = '{"PKey":"' .. amy.PKey .. '"}', times = 1 } }
      local slept = 0
      local profile, err = workflow.update_and_verify(client, amy.PKey, { phone = "0699" },
        { verify_attempts = 3, verify_delay = 0.01, sleep = function() slept = slept + 1 end })
      assert.is_nil(profile)
      assert.are.equal(3, err.attempts)
      assert.are.equal(2, slept)
      assert.are.equal(4, count_method(emu, "GET"))
    end)

    it("sends a read-only field by default and returns ACS's 500 unchanged", function()
      local profile, err = workflow.update_and_verify(client, amy.PKey, { age = 12, phone = "1" })
      assert.is_nil(profile)
      assert.are.equal("http", err.kind)
      assert.are.equal(500, err.status)
      assert.are.same({ "RST-360011", "XTK-170006" }, err.codes)
      assert.matches("Cannot update the 'age' property that is read-only", err.message, 1, true)
      assert.is_nil(err.read_only)
      assert.are.equal(1, patches(emu))
      local stored = assert(api.get_profile(client, amy.PKey))
      assert.are.equal(amy.phone, stored.phone)   -- ACS refused the whole PATCH
      assert.are.equal(amy.age, stored.age)
    end)

    it("opts.check_read_only refuses read-only fields before sending anything", function()
      local profile, err = workflow.update_and_verify(client, amy.PKey, { age = 12, phone = "1" },
        { check_read_only = true })
      assert.is_nil(profile)
      assert.are.equal("verify", err.kind)
      assert.are.same({ "age" }, err.read_only)
      assert.are.equal(0, #emu:requests())
    end)

    it("opts.check_read_only refuses what the resourceType metadata marks readOnly", function()
      local meta = assert(api.get_metadata_for_resource(client, "profile"))
      local read_only
      for name, desc in pairs(meta.content or {}) do
        if type(desc) == "table" and desc.readOnly == true and name ~= "age" and name ~= "PKey" then
          read_only = name
          break
        end
      end
      if not read_only then return pending("the emulator's metadata marks no other field readOnly") end
      emu:clear_requests()
      local profile, err = workflow.update_and_verify(client, amy.PKey, { [read_only] = "x" },
        { metadata = meta, check_read_only = true })
      assert.is_nil(profile)
      assert.are.same({ read_only }, err.read_only)
      assert.are.equal(0, #emu:requests())
    end)

    it("returns the 404 of an unknown PKey and sends no PATCH", function()
      local missing = "@" .. ("DoesNotExist00"):rep(6) -- well-formed: a 404, not ACS's bad-key 500
      local profile, err = workflow.update_and_verify(client, missing, { phone = "1" })
      assert.is_nil(profile)
      assert.are.equal(404, err.status)
      assert.are.equal(0, patches(emu))
    end)

    it("works on other resources through opts.resource (a custom resource)", function()
      local products = assert(api.get_all_custom_resources(client, "cusProduct"))
      local product = products.content[1]
      local updated, info = workflow.update_and_verify(client, product.PKey, { price = 42.5 },
        { resource = "profileAndServicesExt/cusProduct" })
      assert.is_table(updated, tostring(info))
      assert.are.equal(42.5, updated.price)
      assert.are.equal(42.5, assert(api.get_custom_resource(client, "cusProduct", product.PKey)).price)
    end)

    it("unwraps a single GET answered as {content = {profile}}", function()
      emu:config { wrap_single_get = true }
      local ok, profile, info = pcall(workflow.update_and_verify, client, amy.PKey, { phone = "0102" })
      emu:config { wrap_single_get = false }
      assert.is_true(ok, tostring(profile))
      assert.is_table(profile, tostring(info))
      assert.are.equal("0102", profile.phone)
      assert.are.equal(amy.PKey, profile.PKey)
    end)
  end)

  describe("bulk_update", function()
    local big

    setup(function()
      big = emulator.start { profiles = 1000 }
    end)

    teardown(function()
      if big then big:stop() end
    end)

    local function all_pkeys(c)
      local list = assert(pages.all(c, "profileAndServices/profile", { _lineCount = "500" }))
      local pkeys = {}
      for i, p in ipairs(list) do pkeys[i] = p.PKey end
      return pkeys
    end

    local function phones(c)
      local by_pkey = {}
      for p in pages.each(c, "profileAndServices/profile", { _lineCount = "500" }) do
        by_pkey[p.PKey] = p.phone
      end
      return by_pkey
    end

    it("updates 1000 profiles through 503s, 429s with Retry-After and 500s; "
      .. "the report and the data agree item by item", function()
      big:reset()
      big:clear_faults()
      local c = campaign.new(big:client_options { retries = 25, retry_base = 0.01, retry_max = 1 })
      local pkeys = all_pkeys(c)
      assert.are.equal(1000, #pkeys)
      big:faults {
        { method = "PATCH", path = "/profileAndServices/profile/", status = 503, times = 40 },
        { method = "PATCH", path = "/profileAndServices/profile/", status = 429,
          headers = { ["Retry-After"] = "1" }, times = 10 },
        { method = "PATCH", path = "/profileAndServices/profile/", status = 500,
          body = '{"code":500,"message":"RST-360011 An error has occurred"}', times = 15 },
      }
      local i = 0
      local function items()   -- an iterator: bulk_update must not need the list
        i = i + 1
        if i > #pkeys then return nil end
        return { pkey = pkeys[i], changes = { phone = "+33 6 " .. i } }
      end
      local last_done, last_total
      local report = workflow.bulk_update(c, items, {
        concurrency = 8,
        on_progress = function(done, total) last_done, last_total = done, total end,
      })
      big:clear_faults()
      assert.are.equal(1000, report.total)
      assert.are.equal(1000, report.ok + report.failed)
      assert.are.equal(15, report.failed)   -- the 500s: not retried; every 503/429 was retried
      assert.are.equal(1000, last_done)
      assert.are.equal(1000, last_total)
      local stored = phones(c)
      for k, pkey in ipairs(pkeys) do
        local err = report.errors[k]
        if err then
          assert.are.equal(500, err.status)
          assert.are_not.equal("+33 6 " .. k, stored[pkey])
        else
          assert.are.equal("+33 6 " .. k, stored[pkey], "item " .. k)
        end
      end
    end)

    it("goes on through a 401 mid-run: the IMS provider is asked once for a new token", function()
      big:reset()
      big:clear_faults()
      big:clear_requests()
      local opts = big:client_options { retry_base = 0.01 }
      opts.token = require("campaign.auth").ims { client_id = big.client_id,
        client_secret = big.client_secret, ims_url = big.ims_url }
      local c = campaign.new(opts)
      local pkeys = all_pkeys(c)
      local items = {}
      for k = 1, 200 do items[k] = { pkey = pkeys[k], changes = { lastName = "Mid" .. k } } end
      local expired = false
      local report = workflow.bulk_update(c, items, { concurrency = 4, on_progress = function(done)
        if done == 50 and not expired then
          expired = true
          big:expire_tokens()
        end
      end })
      assert.is_true(expired)
      assert.are.equal(200, report.ok)
      local ims = 0
      for _, r in ipairs(big:requests()) do
        if r.uri:find("/ims/token/v3", 1, true) then ims = ims + 1 end
      end
      assert.are.equal(2, ims)
      local stored = {}
      for p in pages.each(c, "profileAndServices/profile", { _lineCount = "500" }) do
        stored[p.PKey] = p.lastName
      end
      for k = 1, 200 do assert.are.equal("Mid" .. k, stored[pkeys[k]]) end
    end)

    it("with verify, fails the items whose PATCH was answered but not applied", function()
      big:reset()
      big:clear_faults()
      local c = campaign.new(big:client_options { retry_base = 0.01, retry_max = 0.05 })
      local pkeys = all_pkeys(c)
      local items = {}
      for k = 1, 100 do items[k] = { PKey = pkeys[k], changes = { firstName = "Bulk" .. k } } end
      big:faults { { method = "PATCH", path = "/profileAndServices/profile/", status = 200,
                     body = '{"PKey":"x"}', times = 4 } }
      local report = workflow.bulk_update(c, items, { verify = true, concurrency = 4, verify_delay = 0 })
      big:clear_faults()
      assert.are.equal(100, report.total)
      assert.are.equal(4, report.failed)
      assert.are.equal(96, report.ok)
      for k = 1, 100 do
        local err = report.errors[k]
        local p = assert(api.get_profile(c, pkeys[k]))
        if err then
          assert.are.equal("verify", err.kind)
          assert.are.equal("Bulk" .. k, err.mismatches.firstName.expected)
          assert.are_not.equal("Bulk" .. k, p.firstName)
        else
          assert.are.equal("Bulk" .. k, p.firstName)
        end
      end
    end)

    it("sends a read-only field by default (ACS's 500 fails that item alone); false verifies", function()
      local list = assert(api.get_all_profiles(client, { line_count = 3 })).content
      client:patch("profileAndServices/profile/" .. list[3].PKey, { blackList = true })
      emu:clear_requests()
      local report = workflow.bulk_update(client, {
        { pkey = list[1].PKey, changes = { blackListEmail = false, phone = "0601" } },
        { pkey = list[2].PKey, changes = { age = 3, phone = "0602" } },
        { pkey = list[3].PKey, changes = { blackList = false } },
      }, { verify = true, verify_delay = 0 })
      assert.are.same({ 3, 2, 1 }, { report.total, report.ok, report.failed })
      local err = report.errors[2]
      assert.are.equal("http", err.kind)
      assert.are.equal(500, err.status)
      assert.are.same({ "RST-360011", "XTK-170006" }, err.codes)
      assert.are.equal(3, patches(emu))
      assert.is_false(assert(api.get_profile(client, list[3].PKey)).blackList)
      assert.are_not.equal("0602", assert(api.get_profile(client, list[2].PKey)).phone)

      emu:clear_requests()
      report = workflow.bulk_update(client, { { pkey = list[2].PKey, changes = { age = 3 } } },
        { check_read_only = true })
      assert.are.same({ "age" }, report.errors[1].read_only)
      assert.are.equal(0, patches(emu))
    end)
  end)
end)
