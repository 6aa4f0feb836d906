-- campaign.workflow against a fake client holding an in-memory profile store.
local campaign = require "campaign"
local workflow = require "campaign.workflow"
local fake = require "lua.fake_client"

local PATH = "profileAndServices/profile/"

-- A store of profiles answering GET and PATCH like ACS. opts.ignore_patch: answer 200 without
-- applying (the verify-mismatch case); opts.lag: the first n GETs after a PATCH show old data.
local function store(profiles, opts)
  opts = opts or {}
  local lag = 0
  local pending = {}
  return function(c)
    local pkey = c.path:sub(#PATH + 1)
    local p = profiles[pkey]
    if not p then return nil, { kind = "http", status = 404, message = "not found" } end
    if c.method == "GET" then
      if lag > 0 then lag = lag - 1 return p, { status = 200 } end
      for k, v in pairs(pending) do p[k] = v end
      pending = {}
      return p, { status = 200 }
    elseif c.method == "PATCH" then
      if opts.fail_patch then return nil, opts.fail_patch end
      if not opts.ignore_patch then
        if opts.lag then
          lag = opts.lag
          for k, v in pairs(c.body) do pending[k] = v end
        else
          for k, v in pairs(c.body) do p[k] = v end
        end
      end
      return { PKey = pkey, href = "http://x/" .. pkey }, { status = 200 }
    end
  end
end

local function amy()
  return {
    ["@amy"] = { PKey = "@amy", email = "amy.dakota@mail.com", phone = "", firstName = "Amy",
      location = { city = "Paris", countryCode = "FR" }, age = 40, blackList = false },
  }
end

local function methods(client)
  local list = {}
  for i, c in ipairs(client.calls) do list[i] = c.method end
  return table.concat(list, " ")
end

local no_sleep = function() end

-- A store that answers a write to a read-only field like ACS: 500, RST-360011, nothing applied.
local function acs_read_only(profiles)
  local handler = store(profiles)
  return function(c)
    if c.method == "PATCH" then
      for _, field in ipairs { "PKey", "href", "created", "lastModified", "age" } do
        if c.body[field] ~= nil then
          return nil, campaign.error { kind = "http", status = 500, method = "PATCH", url = c.path,
            message = "RST-360011 An error has occurred - please contact your administrator.\n"
              .. "Cannot update the '" .. field .. "' property that is read-only." }
        end
      end
    end
    return handler(c)
  end
end

describe("workflow.update_and_verify", function()
  it("GETs, PATCHes the changes, GETs again and returns the updated record", function()
    local client = fake.new(store(amy()))
    local profile, info = workflow.update_and_verify(client, "@amy", { phone = "3301020304" })
    assert.are.equal("3301020304", profile.phone)
    assert.is_true(info.changed)
    assert.are.equal("@amy", info.patch.PKey)
    assert.are.equal("GET PATCH GET", methods(client))
    assert.are.same({ phone = "3301020304" }, client.calls[2].body)
    assert.are.equal(PATH .. "@amy", client.calls[2].path)
  end)

  it("PATCHes the whole changes table as given, even the fields that already hold", function()
    local client = fake.new(store(amy()))
    local changes = { firstName = "Amy", phone = "0102", location = { city = "Paris" } }
    local profile, info = workflow.update_and_verify(client, "@amy", changes)
    assert.are.equal("0102", profile.phone)
    assert.are.equal("GET PATCH GET", methods(client))
    assert.are.same({ firstName = "Amy", phone = "0102", location = { city = "Paris" } },
      client.calls[2].body)
    assert.are.same({ "firstName", "location", "phone" }, info.fields)
    assert.is_true(info.changed)
  end)

  it("by default PATCHes and reads again when every change already holds (changed = false)", function()
    local client = fake.new(store(amy()))
    local profile, info = workflow.update_and_verify(client, "@amy",
      { firstName = "Amy", location = { city = "Paris" }, phone = campaign.null })
    assert.are.equal("@amy", profile.PKey)
    assert.is_false(info.changed)          -- the first GET already showed every change
    assert.are.equal("@amy", info.patch.PKey)
    assert.are.equal(2, info.reads)
    assert.are.equal("GET PATCH GET", methods(client))
    assert.are.same({ firstName = "Amy", location = { city = "Paris" }, phone = campaign.null },
      client.calls[2].body)
  end)

  it("opts.skip_unchanged skips the PATCH and the second GET when nothing would change", function()
    local client = fake.new(store(amy()))
    local profile, info = workflow.update_and_verify(client, "@amy",
      { firstName = "Amy", location = { city = "Paris" }, phone = campaign.null }, { skip_unchanged = true })
    assert.are.equal("@amy", profile.PKey)
    assert.is_false(info.changed)
    assert.is_nil(info.patch)
    assert.are.equal(1, info.reads)
    assert.are.equal("GET", methods(client))
  end)

  it("opts.skip_unchanged still sends the whole changes when one field differs", function()
    local client = fake.new(store(amy()))
    local _, info = workflow.update_and_verify(client, "@amy", { firstName = "Amy", phone = "0102" },
      { skip_unchanged = true })
    assert.is_true(info.changed)
    assert.are.equal("GET PATCH GET", methods(client))
    assert.are.same({ firstName = "Amy", phone = "0102" }, client.calls[2].body)
  end)

  it("compares a field read back as false as false, not as absent", function()
    local profiles = amy()
    profiles["@amy"].blackListEmail = true
    local client = fake.new(store(profiles))
    local profile, info = workflow.update_and_verify(client, "@amy", { blackListEmail = false })
    assert.is_table(profile, tostring(info))
    assert.is_false(profile.blackListEmail)
    assert.is_true(info.changed)
    -- already false: equal on the first GET too
    client = fake.new(store(amy()))
    local _, info2 = workflow.update_and_verify(client, "@amy", { blackList = false },
      { skip_unchanged = true })
    assert.is_false(info2.changed)
    assert.are.equal("GET", methods(client))
    -- a false that did not take is reported as false, not absent
    client = fake.new(store(amy(), { ignore_patch = true }))
    local none, err = workflow.update_and_verify(client, "@amy", { blackList = true })
    assert.is_nil(none)
    assert.are.same({ expected = true, got = false }, err.mismatches.blackList)
    assert.matches("blackList (sent true, read false)", err.message, 1, true)
  end)

  it("reports each field that did not take: kind verify, mismatches {expected, got}", function()
    local client = fake.new(store(amy(), { ignore_patch = true }))
    local profile, err = workflow.update_and_verify(client, "@amy",
      { phone = "3301020304", firstName = "Amy", location = { city = "Lyon" } })
    assert.is_nil(profile)
    assert.are.equal("verify", err.kind)
    assert.are.same({ expected = "3301020304", got = "" }, err.mismatches.phone)
    assert.are.same({ city = "Lyon" }, err.mismatches.location.expected)
    assert.are.equal("Paris", err.mismatches.location.got.city)
    assert.is_nil(err.mismatches.firstName)
    assert.matches("location", tostring(err.message))
    assert.matches('phone (sent "3301020304", read "")', tostring(err), 1, true)
    assert.are.equal("GET PATCH GET", methods(client))
  end)

  it("by default sends a read-only field and returns ACS's 500 unchanged", function()
    local client = fake.new(acs_read_only(amy()))
    local profile, err = workflow.update_and_verify(client, "@amy", { phone = "1", age = 3 })
    assert.is_nil(profile)
    assert.are.equal("http", err.kind)
    assert.are.equal(500, err.status)
    assert.are.same({ "RST-360011" }, err.codes)
    assert.is_nil(err.read_only)
    assert.are.equal("GET PATCH", methods(client))
    assert.are.same({ phone = "1", age = 3 }, client.calls[2].body)
  end)

  it("opts.check_read_only refuses read-only fields before sending anything", function()
    for _, field in ipairs { "PKey", "href", "created", "lastModified", "createdBy", "modifiedBy", "age" } do
      local client = fake.new(store(amy()))
      local profile, err = workflow.update_and_verify(client, "@amy", { phone = "1", [field] = "x" },
        { check_read_only = true })
      assert.is_nil(profile)
      assert.are.equal("verify", err.kind)
      assert.are.same({ field }, err.read_only)
      assert.are.same({}, err.mismatches)
      assert.are.equal(0, #client.calls)
    end
  end)

  it("opts.check_read_only refuses the fields the resourceType metadata marks readOnly", function()
    local client = fake.new(store(amy()))
    local metadata = { content = { email = { readOnly = false }, cusScore = { readOnly = true } } }
    local profile, err = workflow.update_and_verify(client, "@amy", { cusScore = 3, email = "a@b.c" },
      { metadata = metadata, check_read_only = true })
    assert.is_nil(profile)
    assert.are.same({ "cusScore" }, err.read_only)
    assert.are.equal(0, #client.calls)
    -- without check_read_only, metadata alone refuses nothing
    client = fake.new(store(amy()))
    workflow.update_and_verify(client, "@amy", { cusScore = 3 }, { metadata = metadata })
    assert.are.equal("GET PATCH GET", methods(client))
  end)

  it("returns the GET's error for a missing record (404) and sends no PATCH", function()
    local client = fake.new(store(amy()))
    local profile, err = workflow.update_and_verify(client, "@nobody", { phone = "1" })
    assert.is_nil(profile)
    assert.are.equal(404, err.status)
    assert.are.equal("GET", methods(client))
  end)

  it("returns the PATCH's error as is", function()
    local failure = { kind = "http", status = 500, message = "RST-360011" }
    local client = fake.new(store(amy(), { fail_patch = failure }))
    local profile, err = workflow.update_and_verify(client, "@amy", { phone = "1" })
    assert.is_nil(profile)
    assert.are.equal(failure, err)
  end)

  it("treats campaign.null and \"\" as the same unset value", function()
    local client = fake.new(store(amy()))
    local profile, info = workflow.update_and_verify(client, "@amy", { firstName = campaign.null })
    assert.is_true(info.changed)
    assert.are.equal(campaign.null, profile.firstName)
    local p2 = amy()
    p2["@amy"].firstName = ""
    client = fake.new(store(p2))
    local _, info2 = workflow.update_and_verify(client, "@amy", { firstName = campaign.null })
    assert.is_false(info2.changed)
  end)

  it("re-reads verify_attempts times, verify_delay apart, before reporting a mismatch", function()
    local slept = {}
    local sleep = function(s) slept[#slept + 1] = s end
    local client = fake.new(store(amy(), { lag = 2 }))
    local profile = workflow.update_and_verify(client, "@amy", { phone = "42" },
      { verify_attempts = 3, verify_delay = 0.25, sleep = sleep })
    assert.are.equal("42", profile.phone)
    assert.are.same({ 0.25, 0.25 }, slept)
    assert.are.equal("GET PATCH GET GET GET", methods(client))

    client = fake.new(store(amy(), { lag = 5 }))
    local none, err = workflow.update_and_verify(client, "@amy", { phone = "42" },
      { verify_attempts = 2, verify_delay = 0, sleep = sleep })
    assert.is_nil(none)
    assert.are.equal("verify", err.kind)
    assert.are.equal(2, err.attempts)
  end)

  it("inside OpenResty, waits with ngx.sleep and times with ngx.now by default", function()
    local slept, now = {}, 100
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", { sleep = function(s) slept[#slept + 1] = s end,
                        now = function() now = now + 1 return now end, update_time = function() end })
    finally(function() rawset(_G, "ngx", saved) end)
    local client = fake.new(store(amy(), { lag = 1 }))
    local profile = workflow.update_and_verify(client, "@amy", { phone = "7" },
      { verify_attempts = 2, verify_delay = 0.3 })
    assert.are.equal("7", profile.phone)
    assert.are.same({ 0.3 }, slept)
    local report = workflow.bulk_update(fake.new(store(amy())),
      { { pkey = "@amy", changes = { phone = "8" } } })
    assert.are.equal(1, report.elapsed)   -- two ngx.now() readings, one apart
  end)

  it("lets opts.compare decide equality", function()
    local client = fake.new(store(amy(), { ignore_patch = true }))
    local seen = {}
    local profile = workflow.update_and_verify(client, "@amy", { email = "AMY.DAKOTA@mail.com" }, {
      compare = function(field, expected, got)
        seen[#seen + 1] = field
        return expected:lower() == got:lower()
      end,
    })
    assert.are.equal("@amy", profile.PKey)
    assert.are.same({ "email", "email" }, seen)   -- the first GET, then the read after the PATCH
    assert.are.equal("GET PATCH GET", methods(client))
    seen = {}
    client = fake.new(store(amy(), { ignore_patch = true }))
    workflow.update_and_verify(client, "@amy", { email = "AMY.DAKOTA@mail.com" }, {
      skip_unchanged = true,
      compare = function(field, expected, got)
        seen[#seen + 1] = field
        return expected:lower() == got:lower()
      end,
    })
    assert.are.same({ "email" }, seen)   -- equal already: skip_unchanged skips the PATCH
    assert.are.equal("GET", methods(client))
  end)

  it("compares lists element by element and objects by the keys sent", function()
    assert.is_true(workflow.matches({ 1, 2 }, { 1, 2 }))
    assert.is_false(workflow.matches({ 1, 2 }, { 1, 2, 3 }))
    assert.is_true(workflow.matches({ PKey = "@o" }, { PKey = "@o", href = "h", title = "t" }))
    assert.is_false(workflow.matches({ PKey = "@o" }, { PKey = "@x" }))
    assert.is_true(workflow.matches(42, 42.0))
    assert.is_false(workflow.matches("42", 42))
    assert.is_true(workflow.matches("", campaign.null))
    assert.is_false(workflow.matches("x", nil))
  end)

  it("raises on misuse", function()
    local client = fake.new(store(amy()))
    assert.has_error(function() workflow.update_and_verify(client, 42, {}) end)
    assert.has_error(function() workflow.update_and_verify(client, "@amy", "phone=1") end)
    assert.has_error(function() workflow.update_and_verify(client, "@amy", {}, { verify_attempts = 0 }) end)
    assert.has_error(function() workflow.update_and_verify(client, "@amy", {}, { compare = true }) end)
    assert.has_error(function()
      workflow.update_and_verify(client, "@amy", {}, { skip_unchanged = "yes" })
    end)
    assert.has_error(function() workflow.update_and_verify(client, "@amy", {}, { check_read_only = 1 }) end)
    assert.are.equal(0, #client.calls)
  end)
end)

describe("workflow.bulk_update", function()
  local function many(n)
    local profiles = {}
    for i = 1, n do profiles["@p" .. i] = { PKey = "@p" .. i, phone = "" } end
    return profiles
  end

  it("updates a list through client:batch in windows and reports ok + failed == total", function()
    local profiles = many(50)
    profiles["@p7"] = nil   -- a 404
    local client = fake.new(store(profiles))
    local items = {}
    for i = 1, 50 do items[i] = { pkey = "@p" .. i, changes = { phone = tostring(i) } } end
    local progress = {}
    local report = workflow.bulk_update(client, items, {
      concurrency = 4, clock = function() return 10 end,
      on_progress = function(done, total, failed) progress[#progress + 1] = { done, total, failed } end,
    })
    assert.are.equal(50, report.total)
    assert.are.equal(49, report.ok)
    assert.are.equal(1, report.failed)
    assert.are.equal(404, report.errors[7].status)
    assert.is_nil(next(report.errors, 7) ~= nil and next(report.errors, 7) or nil)
    assert.are.equal("50", profiles["@p50"].phone)
    assert.are.equal(0, report.elapsed)
    assert.are.equal(50, #progress)
    assert.are.same({ 50, 50, 1 }, progress[50])
    for _, b in ipairs(client.batches) do
      assert.is_true(b.size <= 16)
      assert.are.equal(4, b.opts.concurrency)
    end
  end)

  it("retries a read-back after verify_delay even when opts.clock does not move", function()
    -- The stream sleeps (opts.sleep) until a read-back is due, then sends it: it must not ask
    -- the clock again (a fixed test clock once made it stop with "nothing to send").
    local reads = 0
    local client = fake.new(function(c)
      if c.method == "GET" then
        reads = reads + 1
        return { a = reads >= 2 and 1 or 0 }, { status = 200 }
      end
      return {}, { status = 200 }
    end)
    local slept = 0
    local report = workflow.bulk_update(client, { { pkey = "@p1", changes = { a = 1 } } }, {
      verify = true, verify_attempts = 3, verify_delay = 0.25,
      clock = function() return 100 end, sleep = function(s) slept = slept + s end })
    assert.are.same({ 1, 1, 0 }, { report.total, report.ok, report.failed })
    assert.are.same({ 2, 0.25 }, { reads, slept })
  end)

  it("reads an iterator lazily: windows stay bounded and total is unknown until the end", function()
    local n, taken, max_ahead = 1000, 0, 0
    local client
    local function items()
      if taken == n then return nil end
      taken = taken + 1
      local sent = #client.calls
      if taken - sent > max_ahead then max_ahead = taken - sent end
      return { pkey = "@p" .. taken, changes = { phone = "x" } }
    end
    client = fake.new(store(many(n)))
    local totals = {}
    local report = workflow.bulk_update(client, items, {
      concurrency = 2, window = 10,
      on_progress = function(_, total) totals[#totals + 1] = total == nil and "nil" or total end,
    })
    assert.are.equal(n, report.total)
    assert.are.equal(n, report.ok)
    assert.are.equal(0, report.failed)
    assert.is_true(max_ahead <= 11, "read " .. max_ahead .. " items ahead of the requests")
    assert.are.equal("nil", totals[1])
    assert.are.equal(n, totals[#totals])
  end)

  it("keeps memory bounded for a long iterator (nothing of a finished window is kept)", function()
    -- A lean client: batch answers 200 to everything and records nothing.
    local client = {
      get = function() return {}, { status = 200 } end,
      batch = function(_, requests)
        local results = {}
        for i = 1, #requests do results[i] = { status = 200, body = {}, attempts = 1 } end
        return results
      end,
    }
    local function run(n)
      local i = 0
      local report = workflow.bulk_update(client, function()
        i = i + 1
        if i > n then return nil end
        return { pkey = "@p" .. i, changes = { phone = "0601020304", firstName = "Name" .. i } }
      end, { concurrency = 8 })
      assert.are.equal(n, report.ok)
      collectgarbage()
      collectgarbage()
      return collectgarbage("count")
    end
    local small = run(10000)
    local large = run(200000)
    -- 20x the items: the heap may not grow by more than noise (KiB)
    assert.is_true(large - small < 512, ("heap grew by %.0f KiB"):format(large - small))
  end)

  it("verifies each record when opts.verify, failing the ones that did not take", function()
    local profiles = many(6)
    local handler = store(profiles)
    local client = fake.new(function(c)
      if c.method == "PATCH" and c.path == PATH .. "@p3" then
        return { PKey = "@p3" }, { status = 200 }   -- answered, not applied
      end
      return handler(c)
    end)
    local items = {}
    for i = 1, 6 do items[i] = { PKey = "@p" .. i, changes = { phone = "n" .. i } } end
    local report = workflow.bulk_update(client, items, { verify = true, verify_delay = 0, sleep = no_sleep })
    assert.are.equal(5, report.ok)
    assert.are.equal(1, report.failed)
    assert.are.equal("verify", report.errors[3].kind)
    assert.are.same({ expected = "n3", got = "" }, report.errors[3].mismatches.phone)
    local gets = 0
    for _, c in ipairs(client.calls) do if c.method == "GET" then gets = gets + 1 end end
    assert.are.equal(6, gets)
  end)

  it("fails malformed items without sending them", function()
    local client = fake.new(store(many(3)))
    local report = workflow.bulk_update(client, {
      { pkey = "@p1", changes = { phone = "1" } },
      { pkey = 42, changes = {} },
      { pkey = "@p3", changes = { phone = "3" } },
      { pkey = "..", changes = { phone = "3" } },
      { pkey = "@p\n1", changes = { phone = "3" } },
      { pkey = "@p1", changes = { phone = print } },
      "not a table",
    })
    assert.are.equal(7, report.total)
    assert.are.equal(2, report.ok)
    assert.are.equal(5, report.failed)
    for i = 2, 7 do
      if i ~= 3 then assert.is_not_nil(report.errors[i], i) end
    end
    assert.are.equal(2, #client.calls)
  end)

  it("by default sends read-only fields: ACS's 500 fails that item with its own error", function()
    local client = fake.new(acs_read_only(many(3)))
    local report = workflow.bulk_update(client, {
      { pkey = "@p1", changes = { phone = "1" } },
      { pkey = "@p2", changes = { age = 3 } },
      { pkey = "@p3", changes = { phone = "3" } },
    })
    assert.are.same({ 3, 2, 1 }, { report.total, report.ok, report.failed })
    local err = report.errors[2]
    assert.are.equal("http", err.kind)
    assert.are.equal(500, err.status)
    assert.are.same({ "RST-360011" }, err.codes)
    assert.is_nil(err.read_only)
    assert.are.equal(3, #client.calls)
  end)

  it("opts.check_read_only fails read-only items without sending them", function()
    local client = fake.new(store(many(3)))
    local report = workflow.bulk_update(client, {
      { pkey = "@p1", changes = { phone = "1" } },
      { pkey = "@p2", changes = { age = 3 } },
      { pkey = "@p3", changes = { cusScore = 3 } },
    }, { check_read_only = true, read_only = { "cusScore" } })
    assert.are.same({ 3, 1, 2 }, { report.total, report.ok, report.failed })
    assert.are.equal("verify", report.errors[2].kind)
    assert.are.same({ "age" }, report.errors[2].read_only)
    assert.are.same({ "cusScore" }, report.errors[3].read_only)
    assert.are.equal(1, #client.calls)
  end)

  it("verifies a field read back as false as false, not as absent", function()
    local profiles = many(2)
    profiles["@p1"].blackList = true
    local client = fake.new(store(profiles))
    local report = workflow.bulk_update(client, {
      { pkey = "@p1", changes = { blackList = false } },
      { pkey = "@p2", changes = { blackList = false } },
    }, { verify = true })
    assert.are.same({ 2, 2, 0 }, { report.total, report.ok, report.failed })
    assert.is_false(profiles["@p1"].blackList)
  end)

  it("counts a batch result with an error or a non-2xx status as failed", function()
    local client = fake.new(function(c)
      if c.path:find("@p2", 1, true) then return nil, { kind = "timeout", message = "slow" } end
      return {}, { status = 200 }
    end)
    local report = workflow.bulk_update(client, {
      { pkey = "@p1", changes = { a = 1 } }, { pkey = "@p2", changes = { a = 1 } },
    })
    assert.are.equal(1, report.ok)
    assert.are.equal("timeout", report.errors[2].kind)
  end)

  it("re-raises an error of on_progress after the batch, and raises on bad arguments", function()
    local client = fake.new(store(many(2)))
    assert.has_error(function()
      workflow.bulk_update(client, { { pkey = "@p1", changes = { phone = "1" } } },
        { on_progress = function() error("stop") end })
    end)
    assert.has_error(function() workflow.bulk_update(client, "items") end)
    assert.has_error(function() workflow.bulk_update(client, {}, { concurrency = 0 }) end)
    assert.has_error(function() workflow.bulk_update(client, {}, { concurrency = 2.5 }) end)
  end)

  it("checks concurrency options by client:batch's rules before any item is read or sent", function()
    local client = fake.new(store(many(2)))
    local read = 0
    local function items() read = read + 1 return nil end
    for _, case in ipairs {
      { { concurrency = 300 }, "option 'concurrency' must be an integer from 1 to 256, or \"auto\"" },
      { { concurrency = "auto", concurrency_max = 300 },
        "option 'concurrency_max' must be an integer from 1 to 256" },
      { { concurrency = 4, concurrency_max = 8 }, "option 'concurrency_max' needs concurrency = \"auto\"" },
      { { concurrency = "auto", concurrency_max = 4, concurrency_start = 8 },
        "option 'concurrency_start' (8) must not exceed 'concurrency_max' (4)" },
    } do
      local ok, err = pcall(workflow.bulk_update, client, items, case[1])
      assert.is_false(ok)
      assert.are.equal("campaign.workflow.bulk_update: " .. case[2], err)
      -- raised at the caller's line (a direct call here, so the position names this file)
      local _, located = pcall(function() workflow.bulk_update(client, {}, case[1]) end)
      assert.matches("^spec/lua/workflow_spec%.lua:%d+: campaign%.workflow%.bulk_update: ", located)
    end
    assert.are.equal(0, read)
    assert.are.equal(0, #client.calls)
  end)

  it("returns an empty report for no items", function()
    local client = fake.new()
    local report = workflow.bulk_update(client, {})
    assert.are.equal(0, report.total)
    assert.are.equal(0, report.ok + report.failed)
    assert.are.equal(0, #client.calls)
  end)
end)

describe("campaign.workflow and ACS's value rewriting", function()
  -- A store that writes like ACS: datetimes in "YYYY-MM-DD HH:MM:SS.mmmZ", email lower-cased.
  local function acs_like(profile)
    return function(c)
      if c.method == "GET" then return profile, { status = 200 } end
      for k, v in pairs(c.body) do
        if k == "email" then v = v:lower() end
        if k == "lastContact" then
          local d, t, ms = v:match("^(%d+%-%d+%-%d+)T(%d+:%d+:%d+)%.?(%d*)Z$")
          v = d .. " " .. t .. "." .. (ms .. "000"):sub(1, 3) .. "Z"
        end
        profile[k] = v
      end
      return { PKey = profile.PKey, href = "http://x" }, { status = 200 }
    end
  end

  it("matches an ISO 8601 datetime sent with the ACS form read back", function()
    assert.is_true(workflow.matches("2019-09-25T23:20:35Z", "2019-09-25 23:20:35.000Z"))
    assert.is_true(workflow.matches("2019-09-25T23:20:35.1Z", "2019-09-25 23:20:35.100Z"))
    assert.is_true(workflow.matches("2019-09-25 23:20:35+00:00", "2019-09-25 23:20:35.000Z"))
    assert.is_false(workflow.matches("2019-09-25T23:20:35Z", "2019-09-25 23:20:36.000Z"))
    assert.is_false(workflow.matches("2019-09-25T23:20:35+02:00", "2019-09-25 23:20:35.000Z"))
    local client = fake.new(acs_like { PKey = "@p", lastContact = "" })
    local record = assert(workflow.update_and_verify(client, "@p", { lastContact = "2020-01-02T03:04:05Z" }))
    assert.are.equal("2020-01-02 03:04:05.000Z", record.lastContact)
  end)

  it("treats unset text \"\" and null alike", function()
    assert.is_true(workflow.matches("", campaign.null))
    assert.is_true(workflow.matches(campaign.null, ""))
    assert.is_true(workflow.matches("", nil))
  end)

  it("says a case-only difference is ACS's dataPolicy rewrite, naming the policy from metadata", function()
    local client = fake.new(acs_like { PKey = "@p", email = "a@x.com" })
    local meta = { content = { email = { dataPolicy = "email", readOnly = false } } }
    local record, err = workflow.update_and_verify(client, "@p", { email = "Amy@X.com" },
      { metadata = meta })
    assert.is_nil(record)
    assert.are.equal("verify", err.kind)
    assert.are.same({ expected = "Amy@X.com", got = "amy@x.com", cause = "data_policy",
      data_policy = "email" }, err.mismatches.email)
    assert.matches("ACS rewrote its case %(dataPolicy email%)", err.message)
  end)

  it("does not blame dataPolicy for a value that differs otherwise", function()
    local client = fake.new(acs_like { PKey = "@p", email = "a@x.com" })
    local _, err = workflow.update_and_verify(client, "@p", { email = "b@x.com" },
      { compare = function() return false end })
    assert.is_nil(err.mismatches.email.cause)
    assert.is_nil(err.message:find("dataPolicy", 1, true))
  end)
end)
