describe("require 'campaign'", function()
  local campaign = require "campaign"

  it("loads the C module and reports its version", function()
    assert.is_table(campaign)
    assert.matches("^%d+%.%d+%.%d+$", campaign._VERSION)
  end)
end)
