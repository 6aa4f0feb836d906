-- Lua 5.4 only: a client in a to-be-closed variable is closed when the scope ends.
local campaign = require "campaign"

local function options()
  return {org = "acme", api_key = "k", token = "t", base_url = "http://127.0.0.1:9"}
end

describe("local client <close>", function()
  it("closes the client at the end of the block", function()
    local kept
    do
      local client <close> = campaign.new(options())
      kept = client
      assert.equal("campaign.Client(acme)", tostring(client))
    end
    assert.equal("campaign.Client(closed)", tostring(kept))
    assert.has_error(function() kept:get("x") end, "campaign.get: client is closed")
  end)

  it("closes the client when the block is left by an error", function()
    local kept
    local ok = pcall(function()
      local client <close> = campaign.new(options())
      kept = client
      error("leaving")
    end)
    assert.is_false(ok)
    assert.equal("campaign.Client(closed)", tostring(kept))
  end)

  it("is harmless after an explicit close", function()
    local kept
    do
      local client <close> = campaign.new(options())
      client:close()
      kept = client
    end
    assert.equal("campaign.Client(closed)", tostring(kept))
  end)
end)
