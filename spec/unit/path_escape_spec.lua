-- src/url.c refuses every path given as text that the server would read as other structure
-- than its segments: dot segments (also percent-encoded), %2F/%5C or a backslash inside a
-- segment, a '#'. The table is shared with campaign.ngx's spec (spec/support/path_cases.lua).
local campaign = require "campaign"
local cases = require "path_cases"

describe("paths given as text (C client)", function()
  local c
  before_each(function()
    c = campaign.new { org = "acme", api_key = "key", token = "tok", base_url = cases.base_url }
  end)
  after_each(function() c:close() end)

  it("are sent as given when no segment can escape", function()
    for _, case in ipairs(cases.accepted) do
      local ok, url = pcall(c.url, c, case[1])
      assert.is_true(ok, case[1] .. ": " .. tostring(url))
      assert.equal(case[2], url, case[1])
    end
  end)

  it("are refused with a message naming the problem", function()
    for _, case in ipairs(cases.refused) do
      local ok, err = pcall(c.url, c, case[1])
      assert.is_false(ok, case[1] .. " was accepted: " .. tostring(err))
      assert.equal("campaign.url: " .. case[2], err, case[1])
    end
  end)

  it("are refused by the calls before anything is sent", function()
    -- no server listens on mc.example.test: a request that went out would be a network error,
    -- not a raise
    for _, case in ipairs(cases.refused) do
      for _, call in ipairs {
        function() return c:get(case[1]) end,
        function() return c:request("DELETE", case[1]) end,
        function() return c:patch(case[1], { a = 1 }) end,
        function() return c:batch { { "GET", "profileAndServices/profile" }, { "GET", case[1] } } end,
      } do
        local ok, err = pcall(call)
        assert.is_false(ok, case[1])
        assert.truthy(tostring(err):find(case[2], 1, true), case[1] .. ": " .. tostring(err))
      end
    end
  end)
end)
