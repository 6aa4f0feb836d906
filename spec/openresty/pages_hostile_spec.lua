-- campaign.pages with a campaign.ngx client on a misbehaving next.href, as with the C client
-- (spec/lua/pages_hostile_spec.lua): an A -> B -> A cycle and an off-origin href end the walk
-- with nil, err of kind "pagination" (no raise out of the handler, no endless loop: the chunk
-- gives up after 50 records), and nothing is sent to the other origin.
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.pages with campaign.ngx on a misbehaving next.href", function()
  local emu, srv

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1 }
  end)
  teardown(function()
    if srv then srv:stop() end
  end)
  before_each(function() emu:fresh() end)
  after_each(function() emu:clear_faults() end)

  local function root() return emu.base_url .. "/" .. emu.org .. "/campaign/" end

  local function page(path_pattern, href)
    return { method = "GET", path = path_pattern, status = 200, times = -1,
      body = { content = { { PKey = "@x" } }, next = { href = href } } }
  end

  local WALK = [[
    local pages = require "campaign.pages"
    local it = pages.each(client(), params.path)
    local n = 0
    for _ = 1, 50 do
      local record, err = it()
      if record == nil then return { n = n, err = err } end
      n = n + 1
    end
    return { n = n, endless = true }
  ]]

  local function gets_of(fragment)
    local n = 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" and r.uri:find(fragment, 1, true) then n = n + 1 end
    end
    return n
  end

  it("an A -> B -> A cycle: nil, err (kind pagination)", function()
    emu:faults {
      page("/hostile/A$", root() .. "profileAndServices/profile/hostile/B"),
      page("/hostile/B$", root() .. "profileAndServices/profile/hostile/A"),
    }
    local r = srv:eval(WALK, { emu = harness.emu_params(emu), path = "profileAndServices/profile/hostile/A" })
    assert.is_nil(r.endless)
    assert.equal(2, r.n)
    assert.equal("pagination", r.err.kind)
    assert.matches("names page 1 again", r.err.message, 1, true)
  end)

  it("an off-origin next.href: nil, err, not a raise, and nothing is sent there", function()
    local evil = emu.base_url:gsub("127%.0%.0%.1", "localhost") .. "/" .. emu.org
      .. "/campaign/profileAndServices/profile/hostile/evil"
    emu:faults { page("/hostile/start$", evil) }
    local r = srv:eval(WALK, { emu = harness.emu_params(emu),
      path = "profileAndServices/profile/hostile/start" })
    assert.equal(1, r.n)
    assert.equal("pagination", r.err.kind)
    assert.equal(evil, r.err.href)
    assert.matches("(credentials never go to another origin)", r.err.message, 1, true)
    assert.equal(0, gets_of("/hostile/evil"))
  end)
end)
