describe("require 'campaign'", function()
  local campaign = require "campaign"

  it("loads the C module and reports its version", function()
    assert.is_table(campaign)
    assert.matches("^%d+%.%d+%.%d+$", campaign._VERSION)
  end)
end)

describe("campaign.sleep and campaign.gettime", function()
  local campaign = require "campaign"

  it("gettime is the wall clock with sub-second precision", function()
    local t = campaign.gettime()
    assert.is_true(math.abs(t - os.time()) <= 1)
    assert.is_not.equal(math.floor(t), t + 0.5) -- a float, not whole seconds only
  end)

  it("sleep waits about the time asked, and refuses nonsense", function()
    local t0 = campaign.gettime()
    campaign.sleep(0.05)
    local waited = campaign.gettime() - t0
    assert.is_true(waited >= 0.045, "waited " .. waited)
    assert.has_error(function() campaign.sleep(-1) end)
    assert.has_error(function() campaign.sleep("soon") end)
  end)
end)
