-- campaign.ngx's URL encoders refuse what src/url.c refuses (spec/support/path_cases.lua, the
-- table spec/unit/path_escape_spec.lua holds the C client to), with the same messages, and the
-- red team's reproductions (hardening item 3) fail safely through campaign.ngx too.
local emulator = require "emulator"
local harness = require "openresty.harness"
local cases = require "path_cases"

describe("paths and keys that would escape the addressed resource, in campaign.ngx", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1 }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function() emu:fresh() end)

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  it("url(), get() and batch() refuse the same paths as the C client, with the same message", function()
    local r = eval([[
      local c = campaign.new { org = "acme", api_key = "k", token = "t", base_url = params.base }
      local n = cngx.new { org = "acme", api_key = "k", token = "t", base_url = params.base,
        transport = function() error("sent") end }
      local out = {}
      local function run(list)
        for _, case in ipairs(list) do
          local c_ok, c_res = pcall(c.url, c, case[1])
          local n_ok, n_res = pcall(n.url, n, case[1])
          local g_ok, g_res = pcall(n.get, n, case[1])
          local b_ok, b_res = pcall(n.batch, n, { { "GET", "x" }, { "DELETE", case[1] } })
          out[#out + 1] = { path = case[1], c_ok = c_ok, c = tostring(c_res), n_ok = n_ok,
            n = tostring(n_res), g_ok = g_ok, g = tostring(g_res), b_ok = b_ok, b = tostring(b_res) }
        end
      end
      run(params.accepted)
      run(params.refused)
      c:close()
      return out
    ]], { base = cases.base_url, accepted = cases.accepted, refused = cases.refused })
    local want = {}
    for _, case in ipairs(cases.accepted) do want[case[1]] = { url = case[2] } end
    for _, case in ipairs(cases.refused) do want[case[1]] = { message = case[2] } end
    assert.equal(#cases.accepted + #cases.refused, #r)
    for _, got in ipairs(r) do
      local w = want[got.path]
      if w.url then
        assert.is_true(got.c_ok, got.path .. ": " .. got.c)
        assert.is_true(got.n_ok, got.path .. ": " .. got.n)
        assert.equal(w.url, got.c, got.path)
        assert.equal(w.url, got.n, got.path)
      else
        assert.is_false(got.c_ok, "C client accepted " .. got.path)
        assert.is_false(got.n_ok, "campaign.ngx accepted " .. got.path)
        assert.equal("campaign.url: " .. w.message, got.c, got.path)
        assert.truthy(got.n:find("campaign.ngx.url: " .. w.message, 1, true), got.path .. ": " .. got.n)
        -- the calls raise before their transport runs
        assert.is_false(got.g_ok, got.path)
        assert.truthy(got.g:find(w.message, 1, true), got.path .. ": " .. got.g)
        assert.is_false(got.b_ok, got.path)
        assert.truthy(got.b:find(w.message, 1, true), got.path .. ": " .. got.b)
      end
    end
  end)

  it("the four reproductions fail safely: nothing escapes, nothing changes", function()
    local r = eval([[
      local api, wf = require "campaign.api", require "campaign.workflow"
      local c = client { retries = 0 }
      local ou = assert(api.get_all_org_units(c)).content[1]
      local out = { ou = ou }
      out.wf_ok, out.wf = pcall(wf.update_and_verify, c,
        "..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F" .. ou.PKey, { label = "X" })
      out.wf = tostring(out.wf)
      out.get_ok, out.get = pcall(c.get, c, "profileAndServices/..%2F..%2F..%2F_emulator%2Fhealth")
      out.get = tostring(out.get)
      local body, err = api.update_profile(c, "#", { firstName = "X" })
      out.patch = { body = body, status = err and err.status, url = err and err.url }
      body, err = api.get_profile(c, "?_lineCount=1")
      out.profile = { body = body, status = err and err.status, url = err and err.url }
      out.after = assert(api.get_all_org_units(c)).content[1]
      return out
    ]])
    assert.is_false(r.wf_ok, r.wf)
    assert.matches("it must not contain '/', even percent-encoded", r.wf, 1, true)
    assert.equal(r.ou.label, r.after.label)
    assert.is_false(r.get_ok, r.get)
    assert.matches("campaign.ngx.get: encoded '/' and '\\' (%2F, %5C) are refused in paths", r.get, 1, true)
    assert.is_nil(r.patch.body)
    assert.equal(500, r.patch.status)
    assert.is_nil(r.profile.body)
    assert.equal(500, r.profile.status)
    local uris = {}
    for _, req in ipairs(emu:requests()) do uris[#uris + 1] = req.method .. " " .. req.uri end
    local root = "/" .. emu.org .. "/campaign/"
    assert.same({
      "GET " .. root .. "profileAndServicesExt/orgUnitBase",
      "PATCH " .. root .. "profileAndServices/profile/%23",
      "GET " .. root .. "profileAndServices/profile/%3F_lineCount%3D1",
      "GET " .. root .. "profileAndServicesExt/orgUnitBase",
    }, uris)
  end)
end)
