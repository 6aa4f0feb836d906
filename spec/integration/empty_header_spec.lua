-- opts.headers with an empty value (docs/client.md "Headers"): sent as an empty header, never
-- dropped, and it replaces a default of that name (libcurl alone drops a "Name:" line and, with
-- it, its own default, so `["Content-Type"] = ""` used to send no Content-Type at all).
local h = require "integration.client_helper"

describe("an empty header value", function()
  local emu, client
  before_each(function()
    emu = h.fresh()
    client = h.client(emu)
  end)
  after_each(function() client:close() end)

  local function last_headers()
    local logged = h.logged(emu, "/profileAndServices/profile")
    return logged[#logged].headers
  end

  it("is sent as an empty header; blanks count as empty", function()
    assert(client:get("profileAndServices/profile", {query = {_lineCount = 1},
      headers = {["X-Empty"] = "", ["X-Blank"] = "  \t", ["X-Full"] = "v"}}))
    local sent = last_headers()
    assert.equal("", sent["x-empty"])
    assert.equal("", sent["x-blank"])
    assert.equal("v", sent["x-full"])
  end)

  it("replaces a default: Content-Type, Accept and User-Agent go out empty, once", function()
    local pkey = h.first_pkey(client)
    assert(client:patch("profileAndServices/profile/" .. pkey, {firstName = "Empty"},
      {headers = {["Content-Type"] = "", Accept = "", ["User-Agent"] = ""}}))
    local sent = last_headers()
    assert.equal("", sent["content-type"]) -- one header: a repeated one would be a list
    assert.equal("", sent["accept"])
    assert.equal("", sent["user-agent"])
  end)

  it("is sent the same way in a batch", function()
    local results = client:batch({
      {"GET", "profileAndServices/profile", nil, {query = {_lineCount = 1}, headers = {["X-Empty"] = ""}}},
    })
    assert.equal(200, results[1].status)
    assert.equal("", last_headers()["x-empty"])
  end)
end)
