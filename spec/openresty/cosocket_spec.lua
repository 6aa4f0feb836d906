-- The built-in cosocket transport (transport = "cosocket"; the automatic choice where
-- ngx.location.capture cannot run): ngx.socket.tcp, TLS verified against
-- lua_ssl_trusted_certificate with SNI, a keep-alive pool per host, HTTP/1.1 framing by the C
-- parser (Content-Length, chunked), timeouts and max_body.
local emulator = require "emulator"
local harness = require "openresty.harness"

-- Established connections from nginx to the port.
local function connections_to(port)
  local out = harness.sh("ss -Htn state established '( dport = :" .. port .. " )'")
  local n = 0
  for _ in out:gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("campaign.ngx's cosocket transport", function()
  local emu, srv, params

  setup(function()
    emu = emulator.start {}
    srv = harness.start { workers = 1 }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:clear_faults()
    emu:clear_requests()
  end)

  -- eval parameters pointing the client at the spec nginx's stand-in API (/spec/campaign/big)
  local function stand_in()
    return { emu = { org = "spec", api_key = "k", access_token = "t", base_url = srv.url } }
  end

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  it("GETs and PATCHes through one pooled keep-alive connection", function()
    local r = eval([[
      local c = client { transport = "cosocket" }
      local list, res = c:get("profileAndServices/profile", { query = { _lineCount = 2 } })
      if not list then return { err = res } end
      local pkey = list.content[1].PKey
      local patched, perr = c:patch("profileAndServices/profile/" .. pkey, { phone = "3301020304" })
      if not patched then return { err = perr } end
      for _ = 1, 8 do assert(c:get("profileAndServices/profile/" .. pkey)) end
      local back = c:get("profileAndServices/profile/" .. pkey)
      return { n = #list.content, status = res.status, ctype = res.headers["content-type"],
        phone = back.phone, pkey = pkey }
    ]])
    assert.is_nil(r.err)
    assert.equal(2, r.n)
    assert.equal(200, r.status)
    assert.matches("application/json", r.ctype)
    assert.equal("3301020304", r.phone)
    local reqs = emu:requests()
    assert.equal(11, #reqs)
    assert.equal("PATCH", reqs[2].method)
    assert.equal(emu.base_url:match("^https?://(.*)$"), reqs[1].headers.host)
    assert.equal('{"phone":"3301020304"}', reqs[2].body)
    -- eleven requests, one connection, still open in the pool
    assert.equal(1, connections_to(emu.base_url:match(":(%d+)$")))
  end)

  it("reads chunked and Content-Length bodies, and stops at max_body (kind too_large)", function()
    local r = srv:eval([[
      local out = {}
      for _, length in ipairs { false, true } do
        local query = { bytes = 300000, length = length and 1 or nil }
        local body, res = client { transport = "cosocket" }:get("big", { query = query })
        local _, err = client { transport = "cosocket", max_body = 100000, retries = 0 }:get("big",
          { query = query })
        out[#out + 1] = { len = body and #body.data, chunked = res.headers["transfer-encoding"],
          kind = err and err.kind, max_body = err and err.max_body, msg = err and err.message }
      end
      return out
    ]], stand_in())
    assert.equal(300000, r[1].len)
    assert.equal("chunked", r[1].chunked)
    assert.equal(300000, r[2].len)
    assert.is_nil(r[2].chunked)
    for i = 1, 2 do
      assert.equal("too_large", r[i].kind)
      assert.equal(100000, r[i].max_body)
      assert.matches("max_body", r[i].msg)
    end
  end)

  it("reads a head longer than one read, and refuses one over max_head (kind too_large)", function()
    local r = srv:eval([[
      local body, res = client { transport = "cosocket" }:get("big",
        { query = { bytes = 10, length = 1, header = 5000 } })
      local _, err = client { transport = "cosocket", retries = 0 }:get("big",
        { query = { bytes = 10, header = 100000 } })
      local _, small = client { transport = "cosocket", retries = 0, max_head = 1000 }:get("big",
        { query = { bytes = 10, header = 2000 } })
      return { data = body and body.data, padding = res.headers["x-padding"], kind = err and err.kind,
        msg = err and err.message, small_kind = small and small.kind }
    ]], stand_in())
    assert.equal(("abcdefghij"), r.data)
    assert.equal(("p"):rep(5000), r.padding)
    assert.equal("too_large", r.kind)
    assert.matches("max_head", r.msg)
    assert.equal("too_large", r.small_kind)
  end)

  -- LuaJIT interns every string, and Debian's luajit2 hashes only a sample of the bytes of a
  -- string of 128 bytes or more: heads read whole, alike but for a request id, would all share
  -- one hash chain (lua/campaign/ngx/cosocket.lua, LINE_READ; docs/openresty.md).
  it("reads each head in pieces under 128 bytes, which LuaJIT hashes whole", function()
    local r = srv:eval([=[
      local real_tcp = ngx.socket.tcp
      local pieces, by_length = {}, 0
      ngx.socket.tcp = function()
        local sock = real_tcp()
        return setmetatable({}, { __index = function(_, name)
          return function(_, ...)
            local data, err, partial = sock[name](sock, ...)
            if name == "receiveany" and data then pieces[#pieces + 1] = #data end
            if name == "receive" and data then by_length = by_length + 1 end
            return data, err, partial
          end
        end })
      end
      local ok, out = pcall(function()
        local c = client { transport = "cosocket" }
        local ids, bodies = {}, 0
        for _ = 1, 20 do
          local query = { bytes = 3000, length = 1, id = 1, header = 300 }
          local body, res = assert(c:get("big", { query = query }))
          ids[res.headers["x-request-id"]] = true
          if #body.data == 3000 then bodies = bodies + 1 end
        end
        local n = 0
        for _ in pairs(ids) do n = n + 1 end
        return { ids = n, bodies = bodies }
      end)
      ngx.socket.tcp = real_tcp
      if not ok then return { err = tostring(out) } end
      local longest = 0
      for _, len in ipairs(pieces) do if len > longest then longest = len end end
      out.longest, out.pieces, out.by_length = longest, #pieces, by_length
      return out
    ]=], stand_in())
    assert.is_nil(r.err)
    assert.equal(20, r.ids) -- twenty heads, each with a request id of its own
    assert.equal(20, r.bodies)
    assert.is_true(r.longest < 128, "a piece of " .. tostring(r.longest) .. " bytes")
    assert.is_true(r.pieces >= 20 * 3, "a head of 400+ bytes in " .. r.pieces / 20 .. " pieces")
    assert.equal(20, r.by_length) -- each body in one read, by its Content-Length
  end)

  it("fails a slow answer with kind timeout (read timeout from the client's timeout)", function()
    emu:faults { { path = "/profile", delay_ms = 1500 } }
    local r = eval([[
      ngx.update_time()
      local t0 = ngx.now()
      local _, err = client { transport = "cosocket", timeout = 0.3, retries = 0 }
        :get("profileAndServices/profile")
      ngx.update_time()
      return { kind = err and err.kind, sent = err and err.sent, elapsed = ngx.now() - t0,
        msg = err and err.message }
    ]])
    assert.equal("timeout", r.kind)
    assert.is_true(r.sent)
    assert.is_true(r.elapsed < 1.2, r.elapsed)
    assert.matches("0.3 s", r.msg)
  end)

  it("says network and sent = false when nothing listens", function()
    local r = eval([[
      local _, err = client { transport = "cosocket", base_url = "http://127.0.0.1:9", retries = 0 }
        :get("profileAndServices/profile")
      return { kind = err.kind, sent = err.sent, msg = err.message }
    ]])
    assert.equal("network", r.kind)
    assert.is_false(r.sent)
    assert.matches("could not connect to 127.0.0.1:9", r.msg)
  end)

  it("leaves a dropped pooled connection to the retry rule: GET retried, POST not resent", function()
    assert.is_true(eval([[
      assert(client { transport = "cosocket" }:get("profileAndServices/profile",
        { query = { _lineCount = 1 } }))
      return true
    ]])) -- a connection in the pool
    emu:faults { { method = "POST", path = "/profile$", drop = true },
      { method = "GET", path = "/profile", drop = true } }
    local r = eval([[
      local c = client { transport = "cosocket", retries = 1 }
      local _, perr = c:post("profileAndServices/profile", { email = "dropped@example.com" })
      local body, res = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
      return { kind = perr and perr.kind, sent = perr and perr.sent, attempts = perr and perr.attempts,
        ok = body ~= nil, get_attempts = res.attempts }
    ]])
    assert.equal("network", r.kind)
    assert.is_true(r.sent)
    assert.equal(1, r.attempts)
    assert.is_true(r.ok)
    assert.equal(2, r.get_attempts)
  end)

  it("is chosen automatically in an ngx.timer.at callback (no transport option)", function()
    local r = eval([[
      local dict = ngx.shared.campaign_test
      dict:delete("timer")
      local ok, terr = ngx.timer.at(0, function()
        local body, res = client():get("profileAndServices/profile", { query = { _lineCount = 2 } })
        dict:set("timer", body and (#body.content .. " " .. ngx.get_phase()) or tostring(res))
      end)
      assert(ok, terr)
      for _ = 1, 200 do
        if dict:get("timer") then break end
        ngx.sleep(0.01)
      end
      return dict:get("timer")
    ]])
    assert.equal("2 timer", r)
    assert.equal(1, #emu:requests())
  end)

  it("raises for options it cannot honour", function()
    local r = eval([[
      local out = {}
      for _, opts in ipairs { { transport = "curl" }, { transport = "cosocket", upstream = "x" },
          { cafile = "/x" }, { pool_size = 0 }, { transport = "resty.http" } } do
        local ok, err = pcall(client, opts)
        out[#out + 1] = ok and "no error" or tostring(err)
      end
      return out
    ]])
    assert.matches("must be \"cosocket\", \"capture\", \"resty.http\" or a function", r[1])
    assert.matches("cannot be combined", r[2])
    assert.matches("lua_ssl_trusted_certificate", r[3])
    assert.matches("pool_size", r[4])
    assert.matches("needs lua%-resty%-http", r[5]) -- not installed on the project's machines
  end)
end)

describe("campaign.ngx's cosocket transport over TLS", function()
  it("verifies against lua_ssl_trusted_certificate with SNI, refuses an unknown CA", function()
    local emu = emulator.start { tls = true }
    local trusting = harness.start { cafile = emu.cafile }
    local default = harness.start {} -- the system CA bundle
    finally(function()
      trusting:stop()
      default:stop()
      emu:stop()
    end)
    local params = { emu = harness.emu_params(emu),
      url = "https://localhost:" .. emu.base_url:match(":(%d+)$") }
    local code = [[
      local c = client { base_url = params.url, transport = "cosocket", retries = 0,
        ssl_verify = params.verify }
      local body, err = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
      local again = body and c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
      return { ok = body ~= nil, again = again ~= nil, err = err }
    ]]
    local ok = trusting:eval(code, params)
    assert.is_true(ok.ok, ok.err and ok.err.message)
    assert.is_true(ok.again)
    emu:clear_requests()
    local refused = default:eval(code, params)
    assert.is_false(refused.ok)
    assert.equal("tls", refused.err.kind, refused.err.message)
    assert.is_false(refused.err.sent)
    assert.matches("TLS handshake with localhost:%d+ failed", refused.err.message)
    assert.equal(0, #emu:requests()) -- nothing was sent to a server it could not verify
    -- an explicit ssl_verify = false is the only way around it
    params.verify = false
    assert.is_true(default:eval(code, params).ok)
  end)
end)
