-- campaign.new option validation, the client object's lifetime, and the module table.
local campaign = require "campaign"

local function base(extra)
  local opts = {org = "acme", api_key = "the-api-key", token = "the-token",
                base_url = "http://127.0.0.1:9"}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

local function new_error(opts)
  local ok, err = pcall(campaign.new, opts)
  assert.is_false(ok, "campaign.new should have raised")
  return err
end

describe("campaign.new", function()
  it("returns a client with the module table as its methods", function()
    local c = campaign.new(base())
    assert.equal("userdata", type(c))
    for _, name in ipairs{"get", "patch", "post", "delete", "request", "batch", "close", "url"} do
      assert.is_function(campaign[name], name)
      assert.equal(campaign[name], c[name], name)
    end
    assert.equal(c:url("x"), campaign.url(c, "x"))
    c:close()
  end)

  it("requires org, api_key and token", function()
    for _, name in ipairs{"org", "api_key", "token"} do
      local opts = base()
      opts[name] = nil
      assert.equal("campaign.new: option '" .. name .. "' is required", new_error(opts))
    end
  end)

  it("names an unknown option", function()
    assert.equal("campaign.new: unknown option 'timout'", new_error(base{timout = 5}))
    assert.matches("option names must be strings", new_error(base{[1] = "x"}))
  end)

  it("raises when the options are not a table", function()
    assert.has_error(function() campaign.new("acme") end)
    assert.has_error(function() campaign.new() end)
  end)

  it("names the option of a wrong type or value", function()
    local cases = {
      {{org = 42}, "option 'org' must be a string"},
      {{org = ""}, "option 'org' must not be empty"},
      {{org = "ac/me"}, "option 'org' must be a tenant id"},
      {{org = ".."}, "option 'org' must be a tenant id"},
      {{api_key = true}, "option 'api_key' must be a string"},
      {{api_key = "k\r\nX-Evil: 1"}, "option 'api_key' must not contain control characters"},
      {{token = 12}, "option 'token' must be a string, a function(force_refresh) -> token, or false"},
      {{token = "a b"}, "option 'token' must not contain spaces"},
      {{token = "a\nb"}, "option 'token' must not contain control characters"},
      {{base_url = "ftp://x"}, "option 'base_url' must be an http:// or https:// URL"},
      {{base_url = "http://u:p@x"}, "option 'base_url' must be an http:// or https:// URL"},
      {{base_url = "http://x/?a=1"}, "option 'base_url' must not have a query"},
      {{base_url = "http://x:99999"}, "option 'base_url' must be an http:// or https:// URL"},
      {{timeout = "30"}, "option 'timeout' must be a positive number"},
      {{timeout = 0}, "option 'timeout' must be a positive number"},
      {{connect_timeout = -1}, "option 'connect_timeout' must be a positive number"},
      {{retries = -1}, "option 'retries' must be a non-negative integer"},
      {{retries = 1.5}, "option 'retries' must be a non-negative integer"},
      {{retries = "3"}, "option 'retries' must be a non-negative integer"},
      {{retry_base = -0.1}, "option 'retry_base' must be a non-negative number"},
      {{retry_max = 0 / 0}, "option 'retry_max' must be a non-negative number"},
      {{max_body = 0}, "option 'max_body' must be a positive integer"},
      {{max_body = 1.5}, "option 'max_body' must be a positive integer"},
      {{insecure = "yes"}, "option 'insecure' must be a boolean"},
      {{http2 = 1}, "option 'http2' must be a boolean"},
      {{cafile = 1}, "option 'cafile' must be a string"},
      {{proxy = {}}, "option 'proxy' must be a string"},
      {{user_agent = "a\nb"}, "option 'user_agent' must not contain control characters"},
      {{on_event = "print"}, "option 'on_event' must be a function"},
    }
    for _, case in ipairs(cases) do
      local err = new_error(base(case[1]))
      assert.equal("campaign.new: " .. case[2], err:sub(1, #("campaign.new: " .. case[2])))
    end
  end)

  it("accepts every documented option", function()
    local c = campaign.new(base{
      timeout = 1.5, connect_timeout = 0.25, retries = 0, retry_base = 0, retry_max = 0,
      cafile = "/nonexistent/ca.pem", insecure = true, proxy = "http://127.0.0.1:3128",
      user_agent = "my-app/1.0", max_body = 1024, http2 = false, on_event = function() end,
      token = function() return "t" end,
    })
    assert.equal("campaign.Client(acme)", tostring(c))
    c:close()
  end)

  it("defaults base_url to https://mc.adobe.io and drops a trailing slash", function()
    local opts = base()
    opts.base_url = nil
    local c = campaign.new(opts)
    assert.equal("https://mc.adobe.io/acme/campaign/x", c:url("x"))
    c:close()
    c = campaign.new(base{base_url = "http://127.0.0.1:9///"})
    assert.equal("http://127.0.0.1:9/acme/campaign/x", c:url("x"))
    c:close()
  end)

  it("never shows the token or the API key in tostring", function()
    local c = campaign.new(base())
    assert.is_nil(tostring(c):find("the-token", 1, true))
    assert.is_nil(tostring(c):find("the-api-key", 1, true))
    c:close()
  end)
end)

describe("client:close", function()
  it("is idempotent and makes every method raise", function()
    local c = campaign.new(base())
    c:close()
    c:close()
    assert.equal("campaign.Client(closed)", tostring(c))
    for _, call in ipairs{
      function() return c:get("x") end, function() return c:patch("x", {}) end,
      function() return c:post("x", {}) end, function() return c:delete("x") end,
      function() return c:request("GET", "x") end, function() return c:batch({}) end,
      function() return c:url("x") end} do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("client is closed", err)
    end
  end)

  it("raises for something that is not a client", function()
    assert.has_error(function() campaign.get({}, "x") end)
    assert.has_error(function() campaign.close("x") end)
  end)

  it("leaves the rest to the garbage collector", function()
    for _ = 1, 50 do campaign.new(base()) end
    collectgarbage()
    collectgarbage()
  end)
end)

describe("request argument checks (before anything is sent)", function()
  local c
  before_each(function() c = campaign.new(base{retries = 0}) end)
  after_each(function() c:close() end)

  it("raises on a bad method, path, body or options", function()
    assert.has_error(function() c:request("FETCH", "x") end)
    assert.has_error(function() c:request(nil, "x") end)
    assert.has_error(function() c:get(nil) end)
    assert.has_error(function() c:get("x", "opts") end)
    assert.has_error(function() c:get("x", {bdy = 1}) end)
    assert.has_error(function() c:get("x", {raw = "yes"}) end)
    assert.has_error(function() c:patch("x", 42) end)
    assert.has_error(function() c:patch("x", true) end)
  end)

  it("refuses headers it sets itself and CR/LF in header values", function()
    for _, h in ipairs{{Authorization = "Bearer x"}, {["x-api-key"] = "k"}, {Host = "evil"},
                       {["Content-Length"] = "1"}, {["X-A"] = "a\r\nX-B: b"},
                       {["Bad Name"] = "v"}, {["X-A"] = {}}} do
      assert.has_error(function() c:get("x", {headers = h}) end)
    end
  end)

  it("raises on a bad batch before sending anything", function()
    assert.has_error(function() c:batch("x") end)
    assert.has_error(function() c:batch({{"GET"}}) end)
    assert.has_error(function() c:batch({"GET x"}) end)
    assert.has_error(function() c:batch({{"GET", "x"}}, {concurrency = 0}) end)
    assert.has_error(function() c:batch({{"GET", "x"}}, {concurency = 2}) end)
    assert.has_error(function() c:batch({{"GET", "x"}}, {on_result = 1}) end)
    local ok, err = pcall(c.batch, c, {{"GET", "x"}, {"GET", "a/../b"}})
    assert.is_false(ok)
    assert.matches("request 2", err)
  end)

  it("returns an empty list for an empty batch", function()
    assert.same({}, c:batch({}))
  end)
end)

describe("the module table", function()
  it("has a version and loads the Lua layers only for known names", function()
    assert.matches("^%d+%.%d+%.%d+$", campaign._VERSION)
    assert.is_nil(campaign.no_such_thing)
    assert.is_nil(campaign[42])
    -- the Lua layers, loaded on first use (whichever exist in this tree)
    for _, name in ipairs{"auth", "api", "pages", "workflow"} do
      if package.searchpath and package.searchpath("campaign." .. name, package.path) then
        assert.equal(require("campaign." .. name), campaign[name])
      end
    end
    assert.is_function(campaign.error)
    assert.is_function(campaign.is_error)
  end)
end)
