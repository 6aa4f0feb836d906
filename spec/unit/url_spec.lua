-- URL building and refusals (client:url builds exactly the URL a request would send).
local campaign = require "campaign"

local function client(base_url)
  return campaign.new{org = "acme", api_key = "key", token = "tok",
                      base_url = base_url or "https://mc.example.test"}
end

describe("client:url", function()
  local c
  before_each(function() c = client() end)
  after_each(function() c:close() end)

  it("puts a relative path under <base_url>/<org>/campaign/", function()
    assert.equal("https://mc.example.test/acme/campaign/profileAndServices/profile",
                 c:url("profileAndServices/profile"))
    assert.equal("https://mc.example.test/acme/campaign/profileAndServices/profile",
                 c:url("/profileAndServices/profile"))
  end)

  it("keeps a PKey's @ and its URL-safe characters", function()
    local pkey = "@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb-_x"
    assert.equal("https://mc.example.test/acme/campaign/profileAndServices/profile/" .. pkey,
                 c:url("profileAndServices/profile/" .. pkey))
  end)

  it("percent-encodes spaces, quotes and non-ASCII bytes in segments", function()
    assert.equal("https://mc.example.test/acme/campaign/a%20b/%22q%22/caf%C3%A9/%2Bplus",
                 c:url("a b/\"q\"/café/+plus"))
  end)

  it("keeps valid %XX escapes and encodes a lone %", function()
    assert.equal("https://mc.example.test/acme/campaign/a%20b/%C3%A9", c:url("a%20b/%C3%A9"))
    assert.equal("https://mc.example.test/acme/campaign/100%25/x%25zz", c:url("100%/x%zz"))
  end)

  it("encodes a query table once, keys sorted, a space as %20", function()
    assert.equal("https://mc.example.test/acme/campaign/profileAndServices/profile"
                 .. "?_lineCount=10&_order=email%20desc",
                 c:url("profileAndServices/profile", {query = {_order = "email desc", _lineCount = 10}}))
  end)

  it("never double-encodes: %20 in a query value is sent as %2520 only if given literally", function()
    local url = c:url("p", {query = {_order = "email desc"}})
    assert.is_nil(url:find("%2520", 1, true))
    assert.truthy(url:find("_order=email%20desc", 1, true))
  end)

  it("repeats the key of a list value and writes booleans and numbers plainly", function()
    assert.equal("https://mc.example.test/acme/campaign/p?a=true&b=1&b=two&c=2.5&d=false",
                 c:url("p", {query = {b = {1, "two"}, a = true, d = false, c = 2.5}}))
  end)

  it("leaves out a key whose list is empty", function()
    assert.equal("https://mc.example.test/acme/campaign/p?b=1", c:url("p", {query = {a = {}, b = 1}}))
  end)

  it("writes an integral float without a fraction, and huge ones exactly", function()
    assert.equal("https://mc.example.test/acme/campaign/p?n=3", c:url("p", {query = {n = 3.0}}))
    assert.equal("https://mc.example.test/acme/campaign/p?n=1e%2B300", c:url("p", {query = {n = 1e300}}))
    assert.equal("https://mc.example.test/acme/campaign/p?n=0.1", c:url("p", {query = {n = 0.1}}))
  end)

  it("percent-encodes reserved characters in query keys and values", function()
    assert.equal("https://mc.example.test/acme/campaign/p?email=a%2Bb@x.com&q=a%26b%3Dc",
                 c:url("p", {query = {email = "a+b@x.com", q = "a&b=c"}}))
  end)

  it("reads a path that starts with the root's own path as relative to the host", function()
    -- an href like "/acme/campaign/profileAndServices/profile?..." (the root is not added twice)
    assert.equal("https://mc.example.test/acme/campaign/profileAndServices/profile?_lineStart=@x",
                 c:url("/acme/campaign/profileAndServices/profile?_lineStart=@x"))
    -- another org's root is just a path under ours; the root alone stays the root
    assert.equal("https://mc.example.test/acme/campaign/other/campaign/x", c:url("/other/campaign/x"))
    assert.equal("https://mc.example.test/acme/campaign/", c:url("/acme/campaign/"))
    local p = client("http://127.0.0.1:8080/prefix")
    assert.equal("http://127.0.0.1:8080/prefix/acme/campaign/profileAndServices/profile",
                 p:url("/prefix/acme/campaign/profileAndServices/profile"))
    p:close()
  end)

  it("accepts an absolute URL of the same origin and keeps its query verbatim", function()
    local href = "https://mc.example.test/acme/campaign/profileAndServices/profile/"
      .. "?_lineCount=1&_lineStart=@vnxw"
    assert.equal(href, c:url(href))
    assert.equal(href .. "&_forcePagination=true", c:url(href, {query = {_forcePagination = true}}))
  end)

  it("treats an explicit default port as the same origin", function()
    assert.equal("https://MC.example.test:443/acme/campaign/x",
                 c:url("https://MC.example.test:443/acme/campaign/x"))
  end)

  it("keeps the double slash of ACS count hrefs", function()
    local href = "https://mc.example.test/acme/campaign/profileAndServices/profile//_count?_lineCount=1"
    assert.equal(href, c:url(href))
  end)

  it("refuses a fragment instead of dropping it (dropped, profile/# was the collection)", function()
    local ok, err = pcall(c.url, c, "a#frag")
    assert.is_false(ok)
    assert.matches("'#' is refused in paths", err, 1, true)
  end)

  it("refuses another host, port or scheme (credentials never leave the origin)", function()
    for _, url in ipairs{"https://evil.test/acme/campaign/x", "https://mc.example.test:8443/x",
                         "http://mc.example.test/x", "ftp://mc.example.test/x"} do
      assert.has_error(function() c:url(url) end)
    end
    local ok, err = pcall(c.url, c, "https://evil.test/acme/campaign/x")
    assert.is_false(ok)
    assert.matches("another origin", err)
  end)

  it("refuses user information in an absolute URL", function()
    assert.has_error(function() c:url("https://u:p@mc.example.test/x") end)
  end)

  it("refuses dot segments, also percent-encoded", function()
    for _, p in ipairs{"a/../b", "..", "a/./b", "a/%2e%2E/b", "a/.%2e", "https://mc.example.test/a/../b"} do
      local ok, err = pcall(c.url, c, p)
      assert.is_false(ok, p)
      assert.matches("'%.' and '%.%.' are refused", err)
    end
    assert.equal("https://mc.example.test/acme/campaign/a/.../b..", c:url("a/.../b.."))
  end)

  it("refuses control characters, CR and LF in the path", function()
    for _, p in ipairs{"a\r\nb", "a\nb", "a\0b", "a\tb", "a\127b"} do
      assert.has_error(function() c:url(p) end)
    end
  end)

  it("refuses CR/LF in query keys and values", function()
    assert.has_error(function() c:url("p", {query = {a = "x\r\nSet-Cookie: y"}}) end)
    assert.has_error(function() c:url("p", {query = {["a\n"] = "x"}}) end)
    assert.has_error(function() c:url("https://mc.example.test/p?a=\r\n") end)
  end)

  it("refuses query values that are not strings, numbers or booleans", function()
    assert.has_error(function() c:url("p", {query = {a = {b = 1}}}) end)
    assert.has_error(function() c:url("p", {query = {a = {1, {2}}}}) end)
    assert.has_error(function() c:url("p", {query = {a = function() end}}) end)
    assert.has_error(function() c:url("p", {query = {[1] = "x"}}) end)
    assert.has_error(function() c:url("p", {query = "a=1"}) end)
    assert.has_error(function() c:url("p", {query = {a = 0/0}}) end)
  end)

  it("refuses a path that is not a string and unknown options", function()
    assert.has_error(function() c:url(42) end)
    local ok, err = pcall(c.url, c, "p", {qeury = {}})
    assert.is_false(ok)
    assert.matches("unknown option 'qeury'", err)
  end)

  it("uses a base_url path prefix", function()
    local p = client("http://127.0.0.1:8080/prefix/")
    assert.equal("http://127.0.0.1:8080/prefix/acme/campaign/x", p:url("x"))
    assert.equal("http://127.0.0.1:8080/prefix/acme/campaign/x",
                 p:url("http://127.0.0.1:8080/prefix/acme/campaign/x"))
    p:close()
  end)
end)
