-- campaign.workflow runs unchanged with campaign.ngx inside a handler: update_and_verify (GET,
-- PATCH, GET again, compare) and bulk_update (through client:batch, with retries).
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.api, campaign.pages and campaign.workflow with campaign.ngx in a handler", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1 }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
  end)

  local function record(pkey)
    for _, p in ipairs(emu:profiles()) do
      if p.PKey == pkey then return p end
    end
  end

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  it("api and pages work unchanged: one profile, and every profile across pages", function()
    local profiles = emu:profiles()
    local r = eval([[
      local api, pages = require "campaign.api", require "campaign.pages"
      local c = client()
      local profile = api.get_profile(c, params.pkey)
      local all, err = pages.all(c, "profileAndServices/profile", { _lineCount = 10 })
      local pkeys = {}
      for i, p in ipairs(all or {}) do pkeys[i] = p.PKey end
      return { profile = profile, pkeys = pkeys, err = err }
    ]], { pkey = profiles[1].PKey })
    assert.equal(profiles[1].PKey, r.profile.PKey)
    assert.is_nil(r.err)
    assert.equal(#profiles, #r.pkeys)
    assert.is_true(#profiles > 20) -- several pages were followed through next.href
  end)

  it("update_and_verify returns the profile read back after the PATCH", function()
    local pkey = emu:profiles()[2].PKey
    local r = eval([[
      local wf = require "campaign.workflow"
      local profile, info = wf.update_and_verify(client(), params.pkey,
        { firstName = "Verified", lastName = "InNginx" })
      return { profile = profile, info = info }
    ]], { pkey = pkey })
    assert.equal("Verified", r.profile.firstName)
    assert.equal("InNginx", r.profile.lastName)
    assert.equal("Verified", record(pkey).firstName)
    local methods = {}
    for _, req in ipairs(emu:requests()) do methods[#methods + 1] = req.method end
    assert.same({ "GET", "PATCH", "GET" }, methods)
  end)

  it("update_and_verify reports kind 'verify' with the mismatches when the PATCH did not hold", function()
    local pkey = emu:profiles()[3].PKey
    local before = record(pkey).firstName
    emu:faults { { method = "PATCH", path = "/profile/@", status = 200,
      body = harness.json.encode { PKey = pkey, href = emu.base_url .. "/x" }, times = 1 } }
    local r = eval([[
      local wf = require "campaign.workflow"
      local profile, err = wf.update_and_verify(client(), params.pkey, { firstName = "Lost" })
      return { profile = profile, err = err }
    ]], { pkey = pkey })
    assert.is_nil(r.profile)
    assert.equal("verify", r.err.kind)
    assert.equal("Lost", r.err.mismatches.firstName.expected)
    assert.equal(before, r.err.mismatches.firstName.got)
  end)

  it("bulk_update patches every item through batch, retrying injected 503s and 429s", function()
    local items = {}
    for i, p in ipairs(emu:profiles()) do
      if i > 30 then break end
      items[i] = { pkey = p.PKey, changes = { lastName = "Bulk" .. i } }
    end
    emu:faults {
      { method = "PATCH", path = "/profile/@", status = 503, times = 6 },
      { method = "PATCH", path = "/profile/@", status = 429, headers = { ["Retry-After"] = "1" }, times = 2 },
    }
    local r = eval([[
      local wf = require "campaign.workflow"
      local progress = 0
      local report = wf.bulk_update(client(), params.items, { concurrency = 4, verify = true,
        on_progress = function() progress = progress + 1 end })
      report.progress = progress
      return report
    ]], { items = items })
    assert.equal(#items, r.total)
    assert.equal(#items, r.ok)
    assert.equal(0, r.failed)
    assert.is_true(r.progress >= #items)
    for i, item in ipairs(items) do
      assert.equal("Bulk" .. i, record(item.pkey).lastName)
    end
  end)
end)
