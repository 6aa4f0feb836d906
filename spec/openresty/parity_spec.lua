-- campaign.ngx builds byte-identical URLs to the C client (src/url.c), and refuses the same
-- ones: both clients are asked for client:url() of the same paths and queries inside nginx.
local harness = require "openresty.harness"

describe("campaign.ngx and the C client", function()
  local srv

  setup(function()
    srv = harness.start {}
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("build the same URL for every path and query, and refuse the same ones", function()
    local r = srv:eval([[
      local base = "https://mc.example.com:8443"
      local c = campaign.new { org = "acme", api_key = "k", token = "t", base_url = base }
      local n = cngx.new { org = "acme", api_key = "k", token = "t", base_url = base }
      local cases = {
        { "profileAndServices/profile/@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb-_x" },
        { "/profileAndServices/profile" },
        { "/acme/campaign/profileAndServices/profile?_lineStart=@x" },
        { "/acme/campaign/" },
        { "/other/campaign/x" },
        { "profileAndServices/profile/a b+c/é" },
        { "profileAndServices/profile/%41%zz%" },
        { "customResources/cusX/!$&'()*,;=:@~" },
        { "profileAndServices/profile?" },
        { "profileAndServices/profile?_lineCount=1&_lineStart=@a b|c" },
        { base .. "/acme/campaign/profileAndServices/profile/?_lineStart=@x%20y", { _lineCount = 5 } },
        { "HTTPS://MC.EXAMPLE.COM:8443/acme/campaign/x" },
        { "profileAndServices/profile", { _order = "email desc", list = { 1, 2, "a&b=c" }, flag = true,
          f = 1.5, i = 10, big = 2^53, tiny = 0.1, ["key with space"] = "ü/,:@" } },
        -- refused by both
        { "profileAndServices/../x" },
        { "profileAndServices/%2e%2E/x" },
        { "profileAndServices/profile\r\nX: y" },
        { "profileAndServices/profile", { q = "a\nb" } },
        { "https://other.example.com/acme/campaign/x" },
        { "https://mc.example.com/acme/campaign/x" },
        { "ftp://mc.example.com:8443/x" },
        { "profileAndServices/profile", { q = { {} } } },
        { "profileAndServices/profile#fragment" },
      }
      local out = {}
      for i, case in ipairs(cases) do
        local query = case[2] and { query = case[2] } or nil
        local c_ok, c_url = pcall(c.url, c, case[1], query)
        local n_ok, n_url = pcall(n.url, n, case[1], query)
        out[i] = { path = case[1], c_ok = c_ok, n_ok = n_ok,
          c = c_ok and c_url or "refused", n = n_ok and n_url or "refused" }
      end
      return out
    ]])
    local refused = 0
    for _, case in ipairs(r) do
      assert.equal(case.c_ok, case.n_ok, "accepted by one client only: " .. case.path)
      assert.equal(case.c, case.n, "different URLs for " .. case.path)
      if not case.c_ok then refused = refused + 1 end
    end
    assert.equal(9, refused)
  end)
end)
