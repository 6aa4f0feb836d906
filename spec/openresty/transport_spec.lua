-- The transport: the internal location's keep-alive pool (`upstream` option), TLS verification
-- by nginx's proxy module, and the pluggable `transport` hook (scripted, and a cosocket one that
-- works where ngx.location.capture does not: a timer).
local emulator = require "emulator"
local harness = require "openresty.harness"

-- Connections from nginx to the port (the client side of each socket), by state.
local function connections_to(port)
  local out = harness.sh("ss -Htn state established '( dport = :" .. port .. " )'")
  local n = 0
  for _ in out:gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("campaign.ngx transports", function()
  it("reuses one keep-alive connection through an upstream block, and none without it", function()
    local emu = emulator.start {}
    local srv = harness.start { upstream = emu.base_url }
    finally(function()
      srv:stop()
      emu:stop()
    end)
    local port = emu.base_url:match(":(%d+)$")
    local code = [[
      local c = client { upstream = params.upstream, transport = "capture" }
      for _ = 1, 10 do
        local body, err = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
        if not body then return { ok = false, err = err } end
      end
      return { ok = true }
    ]]
    local params = { emu = harness.emu_params(emu) }
    assert.is_true(srv:eval(code, params).ok)
    assert.equal(0, connections_to(port)) -- proxy_pass to a URL: one connection per request
    params.upstream = "campaign_pool"
    assert.is_true(srv:eval(code, params).ok)
    assert.equal(1, connections_to(port)) -- the pool keeps the one it reused
    -- the API saw its own authority as Host, not the upstream block's name
    local requests = emu:requests()
    assert.equal(emu.base_url:match("^https?://(.*)$"), requests[#requests].headers.host)
  end)

  it("verifies TLS with proxy_ssl_trusted_certificate and refuses an unknown CA", function()
    local emu = emulator.start { tls = true }
    local trusting = harness.start { upstream = emu.base_url, cafile = emu.cafile }
    local default = harness.start { upstream = emu.base_url } -- the system CA bundle
    finally(function()
      trusting:stop()
      default:stop()
      emu:stop()
    end)
    -- nginx checks the certificate's DNS names, so the base URL names localhost; the upstream
    -- block connects to 127.0.0.1 and the TLS server name stays "localhost"
    local params = { emu = harness.emu_params(emu),
      url = "https://localhost:" .. emu.base_url:match(":(%d+)$") }
    local code = [[
      local body, err = client { base_url = params.url, upstream = "campaign_pool", retries = 0 }
        :get("profileAndServices/profile", { query = { _lineCount = 1 } })
      return { ok = body ~= nil, err = err }
    ]]
    assert.is_true(trusting:eval(code, params).ok)
    emu:clear_requests()
    local refused = default:eval(code, params)
    assert.is_false(refused.ok)
    assert.equal("network", refused.err.kind)
    assert.matches("TLS certificate verification", refused.err.message)
    assert.equal(0, #emu:requests()) -- nothing was sent to a server nginx could not verify
    assert.matches("certificate verify", default:error_log())
  end)

  describe("the transport hook", function()
    local emu, srv

    setup(function()
      emu = emulator.shared()
      srv = harness.start {}
    end)

    teardown(function()
      if srv then srv:stop() end
    end)

    it("gets each request (URL, headers, body) and applies the same retry rules to its answers", function()
      local r = srv:eval([[
        local seen, answers = {}, {
          { status = 503, headers = { ["retry-after"] = "0" }, body = "" },
          { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"PKey":"@a"}' },
        }
        local c = cngx.new { org = "acme", api_key = "key", token = "tok", base_url = "https://mc.adobe.io",
          transport = function(req)
            seen[#seen + 1] = req
            return table.remove(answers, 1)
          end }
        local body, res = c:patch("profileAndServices/profile/@a", { email = "a@b.c" })
        local _, timeout_err = cngx.new { org = "acme", api_key = "key", token = "tok", retries = 1,
          retry_base = 0.01, transport = function() return nil, "timeout", "too slow", false end }
          :post("profileAndServices/profile", { email = "x@y.z" })
        return { body = body, res = res, seen = seen, timeout_err = timeout_err }
      ]])
      assert.equal("@a", r.body.PKey)
      assert.equal(2, r.res.attempts)
      assert.equal(2, #r.seen)
      local req = r.seen[1]
      assert.equal("PATCH", req.method)
      assert.equal("https://mc.adobe.io/acme/campaign/profileAndServices/profile/@a", req.url)
      assert.equal('{"email":"a@b.c"}', req.body)
      assert.equal("Bearer tok", req.headers.Authorization)
      assert.equal("key", req.headers["X-Api-Key"])
      assert.equal("application/json;charset=utf-8", req.headers["Content-Type"])
      -- a POST the transport says was never sent is retried
      assert.equal("timeout", r.timeout_err.kind)
      assert.equal(2, r.timeout_err.attempts)
    end)

    it("lets a cosocket transport run where subrequests cannot: in a timer", function()
      emu:clear_requests()
      local r = srv:eval([[
        -- a minimal HTTP/1.0 transport on ngx.socket.tcp (docs/openresty.md shows lua-resty-http)
        local function cosocket(req)
          local host, port, target = req.url:match("^http://([^:/]+):(%d+)(.*)$")
          local sock = ngx.socket.tcp()
          sock:settimeouts(req.connect_timeout * 1000, req.timeout * 1000, req.timeout * 1000)
          local ok, err = sock:connect(host, tonumber(port))
          if not ok then return nil, "network", err, false end
          local lines = { req.method .. " " .. target .. " HTTP/1.0", "Host: " .. host .. ":" .. port }
          for name, value in pairs(req.headers) do lines[#lines + 1] = name .. ": " .. value end
          if req.body then lines[#lines + 1] = "Content-Length: " .. #req.body end
          sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or ""))
          local status_line, rerr = sock:receive("*l")
          if not status_line then return nil, "network", rerr, true end
          local headers = {}
          while true do
            local line = sock:receive("*l")
            if not line or line == "" then break end
            local name, value = line:match("^([^:]+):%s*(.*)$")
            if name then headers[name:lower()] = value end
          end
          local body = sock:receive("*a")
          sock:close()
          return { status = tonumber(status_line:match("^HTTP/%S+ (%d+)")), headers = headers, body = body }
        end
        local dict = ngx.shared.campaign_test
        dict:delete("timer")
        ngx.timer.at(0, function()
          local body, res = client { transport = cosocket }:get("profileAndServices/profile",
            { query = { _lineCount = 2 } })
          dict:set("timer", body and #body.content or tostring(res))
        end)
        for _ = 1, 200 do
          if dict:get("timer") then break end
          ngx.sleep(0.01)
        end
        return { got = dict:get("timer") }
      ]], { emu = harness.emu_params(emu) })
      assert.equal(2, r.got)
      assert.equal(1, #emu:requests())
    end)
  end)
end)
