-- Plain http:// only to loopback hosts unless allow_http = true (docs/client.md "Plain http"):
-- campaign.new's base_url and campaign.auth.ims's ims_url. (campaign.ngx.new:
-- spec/openresty/error_text_spec.lua.)
local campaign = require "campaign"
local auth = require "campaign.auth"

local LOOPBACK = { "http://127.0.0.1:9", "http://127.8.9.10", "http://localhost:9/prefix",
  "http://LOCALHOST:9", "http://[::1]:9", "http://[0:0:0:0:0:0:0:1]" }
local REMOTE = { "http://example.com", "http://10.0.0.1:8080", "http://128.0.0.1",
  "http://localhost.example.com", "http://[::2]", "http://127.1" }

describe("campaign.new base_url", function()
  local function new(extra)
    local opts = { org = "acme", api_key = "k", token = "t" }
    for k, v in pairs(extra) do opts[k] = v end
    return campaign.new(opts)
  end

  it("accepts http:// to loopback hosts and https:// anywhere", function()
    for _, url in ipairs(LOOPBACK) do new { base_url = url }:close() end
    new { base_url = "https://example.com" }:close()
  end)

  it("refuses http:// to any other host with a message naming the way out", function()
    for _, url in ipairs(REMOTE) do
      local ok, e = pcall(new, { base_url = url })
      assert.is_false(ok, url)
      assert.matches("campaign.new: option 'base_url' is plain http:// to a host that is not loopback",
        e, 1, true)
      assert.matches("allow_http = true", e, 1, true)
    end
  end)

  it("accepts them with allow_http = true; allow_http must be a boolean", function()
    for _, url in ipairs(REMOTE) do new { base_url = url, allow_http = true }:close() end
    assert.has_error(function() new { base_url = "http://example.com", allow_http = "yes" } end,
      "campaign.new: option 'allow_http' must be a boolean")
  end)
end)

describe("campaign.auth.ims ims_url", function()
  local function ims(extra)
    local opts = { client_id = "cid", client_secret = "s3cr3t-value" }
    for k, v in pairs(extra) do opts[k] = v end
    return auth.ims(opts)
  end

  it("accepts http:// to loopback hosts and https:// anywhere", function()
    for _, url in ipairs(LOOPBACK) do assert.is_function(ims { ims_url = url }) end
    assert.is_function(ims { ims_url = "https://ims.example.com" })
  end)

  it("refuses http:// to any other host at auth.ims time", function()
    for _, url in ipairs(REMOTE) do
      local ok, e = pcall(ims, { ims_url = url })
      assert.is_false(ok, url)
      assert.matches("option 'ims_url' is plain http:// to a host that is not loopback", e, 1, true)
      assert.is_nil(e:find("s3cr3t-value", 1, true))
    end
  end)

  it("accepts them with allow_http = true, and passes it to its private client", function()
    for _, url in ipairs(REMOTE) do assert.is_function(ims { ims_url = url, allow_http = true }) end
    assert.has_error(function() ims { ims_url = "http://example.com", allow_http = 1 } end)
    -- the private client is made on first use: campaign.new refusing the URL would be a raise;
    -- with allow_http passed on, the unknown host is an auth error (cause network or timeout)
    local provider = ims { ims_url = "http://campaign-allow-http.invalid", allow_http = true,
      http = { retries = 0, connect_timeout = 2 } }
    local token, err = provider()
    assert.is_nil(token)
    assert.equal("auth", err.kind)
    assert.is_true(err.cause == "network" or err.cause == "timeout", tostring(err.cause))
  end)
end)

describe("campaign.auth.ims error messages", function()
  local fake = require "lua.fake_client"
  local SECRET = "p8e-" .. ("0123456789abcdef"):rep(3)

  it("carry no 16-character start of the client secret left by a cut message", function()
    -- an IMS gateway echoing the form, its message cut by the client inside the secret
    local http = fake.new(function()
      return nil, { kind = "http", status = 502, message = "Bad gateway for client_secret="
        .. SECRET:sub(1, 30) }
    end)
    local provider = auth.ims { client_id = "cid", client_secret = SECRET, http = http,
      ims_url = "https://ims.example.com" }
    local token, err = provider()
    assert.is_nil(token)
    assert.equal("IMS token exchange failed: 502 Bad gateway for client_secret=<redacted>", err.message)
  end)
end)
