-- campaign.ngx with an empty header value, as the C client (docs/client.md "Headers"): the
-- header is sent empty, not dropped, and it replaces a default of that name (ngx_lua's
-- set_header drops a header set to "", and with it the default Content-Type).
local harness = require "openresty.harness"

describe("campaign.ngx with an empty header value", function()
  local ctx = harness.suite()
  setup(ctx.start)
  teardown(ctx.stop)
  before_each(ctx.fresh)

  local function last_headers()
    local logged = ctx.emu:requests()
    return logged[#logged].headers
  end

  it("sends it empty, and an empty Content-Type replaces the default", function()
    local r = ctx.srv:eval([[
      local body = client():get("profileAndServices/profile", { query = { _lineCount = 1 },
        headers = { ["X-Empty"] = "", ["Content-Type"] = "", ["X-Full"] = "v" } })
      return body ~= nil
    ]], ctx.params)
    assert.is_true(r)
    local sent = last_headers()
    assert.equal("", sent["x-empty"])
    assert.equal("", sent["content-type"])
    assert.equal("v", sent["x-full"])
  end)

  it("sends it empty in a batch PATCH too", function()
    local pkey = ctx.emu:profiles()[1].PKey
    local r = ctx.srv:eval([[
      local results = client():batch({ { "PATCH", "profileAndServices/profile/" .. params.pkey,
        { firstName = "Empty" }, { headers = { ["Content-Type"] = "", ["X-Empty"] = "" } } } })
      return results[1].status
    ]], { emu = ctx.params.emu, pkey = pkey })
    assert.equal(200, r)
    local sent = last_headers()
    assert.equal("", sent["content-type"])
    assert.equal("", sent["x-empty"])
  end)
end)
