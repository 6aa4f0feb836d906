-- campaign.ngx with an empty header value, as the C client (docs/client.md "Headers"): the
-- header is sent empty, not dropped, and it replaces a default of that name (ngx_lua's
-- set_header drops a header set to "", and with it the default Content-Type).
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.ngx with an empty header value", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1, upstream = emu.base_url }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
  end)

  local function last_headers()
    local logged = emu:requests()
    return logged[#logged].headers
  end

  it("sends it empty, and an empty Content-Type replaces the default", function()
    local r = srv:eval([[
      local body = client():get("profileAndServices/profile", { query = { _lineCount = 1 },
        headers = { ["X-Empty"] = "", ["Content-Type"] = "", ["X-Full"] = "v" } })
      return body ~= nil
    ]], params)
    assert.is_true(r)
    local sent = last_headers()
    assert.equal("", sent["x-empty"])
    assert.equal("", sent["content-type"])
    assert.equal("v", sent["x-full"])
  end)

  it("sends it empty in a batch PATCH too", function()
    local pkey = emu:profiles()[1].PKey
    local r = srv:eval([[
      local results = client():batch({ { "PATCH", "profileAndServices/profile/" .. params.pkey,
        { firstName = "Empty" }, { headers = { ["Content-Type"] = "", ["X-Empty"] = "" } } } })
      return results[1].status
    ]], { emu = params.emu, pkey = pkey })
    assert.equal(200, r)
    local sent = last_headers()
    assert.equal("", sent["content-type"])
    assert.equal("", sent["x-empty"])
  end)
end)
