-- HTTPS with the CA the launcher generates, and HTTP/2 on request.
local emulator = require "emulator"

local q = emulator.shell_quote

describe("emulator over TLS", function()
  it("serves HTTPS verified by the printed cafile, for 127.0.0.1 and localhost", function()
    local e = emulator.start{ tls = true, profiles = 3 }
    finally(function() e:stop() end)
    assert.matches("^https://127%.0%.0%.1:%d+$", e.base_url)
    assert.is_string(e.cafile)
    assert.matches("/tls/ca%.pem$", e.cafile)
    local status, body = e:call("GET", "profileAndServices/profile")
    assert.equals(200, status)
    assert.equals(3, #body.content)
    assert.matches("^https://", body.content[1].href)
    -- IMS on the same server
    local i_status, token = e:call("POST", e.ims_url .. "/ims/token/v3", nil, { auth = false,
      form = "grant_type=client_credentials&client_id=" .. e.client_id .. "&client_secret="
        .. e.client_secret })
    assert.equals(200, i_status)
    assert.is_string(token.access_token)
    -- without the CA, verification fails (curl exit 60)
    local _, ok, code = emulator.run("curl -s -o /dev/null " .. q(e.base_url .. "/_emulator/health"))
    assert.is_false(ok)
    assert.equals(60, code)
    local port = e.base_url:match(":(%d+)$")
    local out = emulator.run("curl -s --cacert " .. q(e.cafile) .. " https://localhost:" .. port
      .. "/_emulator/health")
    assert.matches('"status":"ok"', out)
  end)

  it("negotiates HTTP/2 with --http2, and HTTP/1.1 clients still work", function()
    local e = emulator.start{ tls = true, http2 = true, profiles = 1 }
    finally(function() e:stop() end)
    local version = emulator.run("curl -s --http2 -o /dev/null -w '%{http_version}' --cacert "
      .. q(e.cafile) .. " "
      .. q(e.base_url .. "/_emulator/health"))
    assert.equals("2", version)
    local status, _, _, headers = e:call("GET", "profileAndServices/profile", nil, { http2 = true })
    assert.equals(200, status)
    assert.equals("profileAndServices", headers["x-emulator-route"])
    local v1 = emulator.run("curl -s --http1.1 -o /dev/null -w '%{http_version}' --cacert "
      .. q(e.cafile) .. " "
      .. q(e.base_url .. "/_emulator/health"))
    assert.equals("1.1", v1)
  end)

  it("serves plain HTTP/1.1 without --http2", function()
    local e = emulator.start{ tls = true, profiles = 1 }
    finally(function() e:stop() end)
    local version = emulator.run("curl -s --http2 -o /dev/null -w '%{http_version}' --cacert "
      .. q(e.cafile) .. " "
      .. q(e.base_url .. "/_emulator/health"))
    assert.equals("1.1", version)
  end)
end)
