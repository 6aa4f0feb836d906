-- The error object: campaign.error, campaign.is_error, __tostring, codes.
local campaign = require "campaign"

describe("campaign.error", function()
  it("turns a table into an error object and returns it", function()
    local t = {kind = "verify", message = "email differs"}
    local err = campaign.error(t)
    assert.equal(t, err)
    assert.is_true(campaign.is_error(err))
    assert.equal("campaign: verify: email differs", tostring(err))
  end)

  it("needs a kind, and a string message when there is one", function()
    assert.has_error(function() campaign.error{} end)
    assert.has_error(function() campaign.error{kind = 1} end)
    assert.has_error(function() campaign.error{kind = "auth", message = {}} end)
    assert.has_error(function() campaign.error("auth") end)
  end)

  it("is_error is false for anything else", function()
    assert.is_false(campaign.is_error({kind = "http"}))
    assert.is_false(campaign.is_error("campaign: http"))
    assert.is_false(campaign.is_error(nil))
    assert.is_false(campaign.is_error(setmetatable({}, {__tostring = function() return "x" end})))
  end)

  it("collects ACS codes from the message, in order", function()
    local err = campaign.error{kind = "http", message =
      "RST-360011 An error has occurred - please contact your administrator.\n"
      .. "XTK-170036 Unable to parse expression '@id = @x'. PGS-220000 PostgreSQL error"
      .. " (not XTK-1700361, not ab-123456)"}
    assert.same({"RST-360011", "XTK-170036", "PGS-220000"}, err.codes)
    assert.same({}, campaign.error{kind = "auth", message = "no codes"}.codes)
    assert.same({"A"}, campaign.error{kind = "auth", message = "RST-360011", codes = {"A"}}.codes)
  end)

  it("says METHOD path -> status reason: the message on one line for http errors", function()
    local err = campaign.error{kind = "http", method = "PATCH", path = "profileAndServices/profile/@x",
                               status = 404, message = "Not found\nsecond line"}
    assert.equal("campaign: PATCH profileAndServices/profile/@x -> 404 Not Found: Not found / second line",
                 tostring(err))
    err = campaign.error{kind = "http", method = "GET", path = "p", status = 599, message = "odd"}
    assert.equal("campaign: GET p -> 599: odd", tostring(err))
  end)

  it("keeps the cause of a chained ACS message: every non-blank line, joined with ' / '", function()
    local err = campaign.error{kind = "http", method = "PATCH", path = "profileAndServices/profile/@x",
      status = 500, message = "RST-360011 An error has occurred - please contact your administrator.\r\n"
        .. "  \n\tCannot update the 'age' property that is read-only.  \n"}
    assert.equal("campaign: PATCH profileAndServices/profile/@x -> 500 Internal Server Error: "
      .. "RST-360011 An error has occurred - please contact your administrator. / "
      .. "Cannot update the 'age' property that is read-only.", tostring(err))
    assert.equal("campaign: auth", tostring(campaign.error{kind = "auth", message = " \n\r\n "}))
  end)

  it("says METHOD path -> kind: message for failures without a status", function()
    local err = campaign.error{kind = "timeout", method = "GET", path = "profileAndServices/profile",
                               message = "Operation timed out after 100 milliseconds"}
    assert.equal("campaign: GET profileAndServices/profile -> timeout: "
                 .. "Operation timed out after 100 milliseconds", tostring(err))
  end)

  it("falls back to the URL when there is no path, and to the kind alone", function()
    assert.equal("campaign: GET http://h/x -> network: down",
                 tostring(campaign.error{kind = "network", method = "GET", url = "http://h/x",
                                         message = "down"}))
    assert.equal("campaign: auth", tostring(campaign.error{kind = "auth"}))
  end)
end)
