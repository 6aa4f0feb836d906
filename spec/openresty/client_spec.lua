-- campaign.ngx inside a real nginx (Debian's nginx + ngx_lua, build/jit/campaign.so) against the
-- emulator: every client method in a handler, the same results and error objects as the C
-- client, retries on injected faults, the 401 refresh, and the failures of the transport.
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.ngx in an nginx handler", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    -- a short proxy_read_timeout, so the timeout spec does not wait 30 s
    srv = harness.start { workers = 1, upstream = emu.base_url, read_timeout = "1s" }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    emu:fresh()
  end)

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  local function logged(method, pattern)
    local out = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == method and r.uri:find(pattern) then out[#out + 1] = r end
    end
    return out
  end

  local function first_pkey()
    return emu:profiles()[1].PKey
  end

  it("get returns the bare record and res = {status, headers, attempts, elapsed}", function()
    local pkey = first_pkey()
    local r = eval([[
      local body, res = client():get("profileAndServices/profile/" .. params.pkey)
      return { body = body, res = res }
    ]], { pkey = pkey })
    assert.equal(pkey, r.body.PKey)
    assert.equal(200, r.res.status)
    assert.equal(1, r.res.attempts)
    assert.is_number(r.res.elapsed)
    assert.matches("^application/json", r.res.headers["content-type"])
  end)

  it("sends the client's headers and none of the handler's own request headers", function()
    local pkey = first_pkey()
    local status = srv:post_json("/eval", {
      code = [[ return (client():get("profileAndServices/profile/" .. params.pkey)) and true ]],
      params = { emu = params.emu, pkey = pkey },
    }, { Cookie = "session=visitor-secret", Authorization = "Basic dmlzaXRvcjpzZWNyZXQ=",
      ["X-Forwarded-For"] = "203.0.113.9" })
    assert.equal(200, status)
    local seen = logged("GET", "/profile/")
    assert.equal(1, #seen)
    local h = seen[1].headers
    assert.equal("Bearer " .. emu.access_token, h.authorization)
    assert.equal(emu.api_key, h["x-api-key"])
    assert.equal("no-cache", h["cache-control"])
    assert.equal("application/json", h.accept)
    assert.matches("^lua%-campaign/%d+%.%d+%.%d+ ngx_lua/", h["user-agent"])
    assert.is_nil(h.cookie)
    assert.is_nil(h["x-forwarded-for"])
    -- ours, on every request (the handler's own "application/json" was not forwarded)
    assert.equal("application/json;charset=utf-8", h["content-type"])
    assert.is_nil(h["content-length"]) -- the handler's POST body was not forwarded either
    assert.equal("", seen[1].body or "")
  end)

  it("post creates (201 record), patch updates ({PKey, href}), delete removes", function()
    local r = eval([[
      local c = client()
      local out = {}
      out.created, out.post_res = c:post("profileAndServices/profile",
        { email = "ngx.client@example.com", firstName = "Ngx" })
      local path = "profileAndServices/profile/" .. out.created.PKey
      out.patched = c:patch(path, { lastName = "Resty" })
      out.read = c:get(path)
      out.deleted, out.delete_res = c:delete(path)
      out.gone_body, out.gone = c:get(path)
      return out
    ]])
    assert.equal(201, r.post_res.status)
    assert.equal("ngx.client@example.com", r.created.email)
    assert.equal(r.created.PKey, r.patched.PKey)
    assert.matches("/profileAndServices/profile/", r.patched.href)
    assert.equal("Resty", r.read.lastName)
    assert.equal(200, r.delete_res.status)
    assert.is_nil(r.gone_body)
    assert.equal("http", r.gone.kind)
    assert.equal(404, r.gone.status)
    local patches = logged("PATCH", "/profile/")
    assert.equal(1, #patches)
    assert.equal("application/json;charset=utf-8", patches[1].headers["content-type"])
    assert.same({ lastName = "Resty" }, harness.json.decode(patches[1].body))
  end)

  it("request encodes the query once, returns raw bodies, and follows a same-origin next.href", function()
    local r = eval([[
      local c = client()
      local out = {}
      out.raw, out.res = c:request("GET", "profileAndServices/profile",
        { query = { _lineCount = 2, _order = "email desc" }, raw = true })
      local page = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
      out.next_href = page.next.href
      local second = c:get(page.next.href)
      out.second_pkey = second.content[1].PKey
      out.first_pkey = page.content[1].PKey
      return out
    ]])
    assert.is_string(r.raw)
    assert.equal(2, #harness.json.decode(r.raw).content)
    assert.equal(1, #logged("GET", "_order=email%%20desc"))
    assert.equal(0, #logged("GET", "%%2520"))
    assert.matches("^" .. emu.base_url:gsub("%p", "%%%0"), r.next_href)
    assert.not_equal(r.first_pkey, r.second_pkey)
  end)

  it("raises on misuse before anything is sent, like campaign.new and the C client", function()
    local r = eval([[
      local c = client()
      local function msg(f, ...)
        local ok, err = pcall(f, ...)
        return not ok and tostring(err) or "no error"
      end
      return {
        other_origin = msg(c.get, c, "https://evil.example/acme/campaign/profileAndServices/profile"),
        dotdot = msg(c.get, c, "profileAndServices/../../_emulator/requests"),
        crlf = msg(c.get, c, "profileAndServices/profile", { query = { x = "a\r\nX-Injected: 1" } }),
        header = msg(c.request, c, "GET", "x", { headers = { Authorization = "Bearer other" } }),
        unknown = msg(cngx.new, { org = "a", api_key = "k", token = "t", timout = 3 }),
        named = tostring(c),
        insecure = msg(cngx.new, { org = "a", api_key = "k", token = "t", insecure = true }),
        missing = msg(cngx.new, { org = "a", token = "t" }),
        body = msg(c.post, c, "profileAndServices/profile", { f = function() end }),
        method = msg(c.request, c, "BREW", "x"),
        location = (function()
          local misplaced = client { location = "/no_such_location" }
          return msg(misplaced.get, misplaced, "profileAndServices/profile")
        end)(),
        closed = (function()
          local closing = client()
          closing:close()
          closing:close()
          return msg(closing.get, closing, "x")
        end)(),
      }
    ]])
    assert.matches("another origin", r.other_origin)
    assert.matches("'%.' and '%.%.' are refused", r.dotdot)
    assert.matches("control characters", r.crlf)
    assert.matches("is set by the client and cannot be given", r.header) -- the C core's words
    assert.matches("unknown option 'timout'", r.unknown)
    assert.equal("campaign.ngx.Client(" .. emu.org .. ")", r.named)
    assert.matches("proxy_ssl_verify", r.insecure)
    assert.matches("option 'api_key' is required", r.missing)
    assert.not_equal("no error", r.body)
    assert.matches("unsupported method 'BREW'", r.method)
    assert.matches("/no_such_location did not run campaign.ngx's handlers", r.location)
    assert.matches("client is closed", r.closed)
    assert.equal(0, #emu:requests())
  end)

  it("turns an ACS validation error into the error object (kind, status, code, codes, message)", function()
    local r = eval([[
      local body, err = client():patch("profileAndServices/profile/" .. params.pkey, { age = 3 })
      return { body = body, err = err }
    ]], { pkey = first_pkey() })
    assert.is_nil(r.body)
    local err = r.err
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert.equal("PATCH", err.method)
    assert.matches("RST%-360011", err.message)
    assert.equal("RST-360011", err.codes[1])
    assert.equal(1, err.attempts) -- never retried: ACS answers validation errors with 500
    assert.matches("^campaign: PATCH profileAndServices/profile/@[^ ]+ %-> 500 Internal Server Error: "
      .. "RST%-360011", err.text)
    assert.not_matches("\n", err.text)
    assert.equal(1, #logged("PATCH", "/profile/"))
  end)

  it("retries GET and PATCH on 503 and 429 (Retry-After honoured) but not a POST that was sent", function()
    local pkey = first_pkey()
    emu:faults {
      { method = "GET", path = "/profile/@", status = 503, times = 2 },
      { method = "PATCH", path = "/profile/@", status = 429, headers = { ["Retry-After"] = "1" }, times = 1 },
      { method = "POST", path = "/profile$", status = 503, times = 1 },
    }
    local r = eval([[
      local c = client()
      local out = {}
      local body, res = c:get("profileAndServices/profile/" .. params.pkey)
      out.get_attempts = res.attempts
      local t0 = ngx.now()
      body, res = c:patch("profileAndServices/profile/" .. params.pkey, { firstName = "Retried" })
      ngx.update_time()
      out.patch_attempts, out.patch_wait = res.attempts, ngx.now() - t0
      out.post_body, out.post_err = c:post("profileAndServices/profile", { email = "once@example.com" })
      return out
    ]], { pkey = pkey })
    assert.equal(3, r.get_attempts)
    assert.equal(2, r.patch_attempts)
    assert.is_true(r.patch_wait >= 0.9 and r.patch_wait < 5, "waited " .. r.patch_wait .. " s")
    assert.is_nil(r.post_body)
    assert.equal(503, r.post_err.status)
    assert.equal(1, r.post_err.attempts)
    assert.equal(1, #logged("POST", "/profile$"))
    assert.equal(3, #logged("GET", "/profile/@"))
  end)

  it("gives up after `retries` and reports an HTML 502 page with a readable message", function()
    emu:faults { { method = "GET", path = "/profile/@", html = true, status = 502, times = 5 } }
    local r = eval([[
      local body, err = client{ retries = 2 }:get("profileAndServices/profile/" .. params.pkey)
      return { err = err }
    ]], { pkey = first_pkey() })
    assert.equal("http", r.err.kind)
    assert.equal(502, r.err.status)
    assert.equal(3, r.err.attempts)
    assert.equal("502 Bad Gateway", r.err.message)
    assert.matches("^<html>", r.err.body)
  end)

  it("reads error bodies like the C client: plain-text ACS chains, JSON strings, nested errors", function()
    emu:faults {
      { method = "PATCH", path = "/plainacs$", status = 500, body = "RST-360011 An error has occurred.\n"
        .. "Cannot update the 'age' property that is read-only.\nXTK-170006 Unable to parse expression.\n" },
      { method = "GET", path = "/jsonstring$", status = 500,
        body = ' "RST-360011 Oops.\\nXTK-170036 Bad key."' },
      { method = "GET", path = "/nested$", status = 400,
        body = { error = { code = "BadRequest", message = "Missing" } } },
    }
    local r = eval([[
      local c = client{ retries = 0 }
      local _, plain = c:patch("plainacs", { age = 3 })
      local _, str = c:get("jsonstring")
      local _, nested = c:get("nested")
      return { plain = plain, plain_line = tostring(plain), str = str, nested = nested }
    ]])
    assert.same({ "RST-360011", "XTK-170006" }, r.plain.codes)
    assert.equal("campaign: PATCH plainacs -> 500 Internal Server Error: RST-360011 An error has occurred. / "
      .. "Cannot update the 'age' property that is read-only. / XTK-170006 Unable to parse expression.",
      r.plain_line)
    assert.equal("RST-360011 Oops.\nXTK-170036 Bad key.", r.str.message)
    assert.same({ "RST-360011", "XTK-170036" }, r.str.codes)
    assert.equal("BadRequest", r.nested.code)
    assert.equal("Missing", r.nested.message)
  end)

  it("calls a token provider with force_refresh on 401 and sends once more", function()
    local r = eval([[
      local calls = {}
      local provider = function(force)
        calls[#calls + 1] = force
        return force and params.emu.access_token or "expired-token"
      end
      local body, res = client{ token = provider }:get("profileAndServices/profile/" .. params.pkey)
      local sbody, serr = client{ token = "expired-token" }:get("profileAndServices/profile/" .. params.pkey)
      return { ok = body ~= nil, attempts = res.attempts, calls = calls, string_err = serr }
    ]], { pkey = first_pkey() })
    assert.is_true(r.ok)
    assert.equal(2, r.attempts)
    -- first call; after the 401 a plain call (another request may have refreshed the shared
    -- token already), then, as it hands out the refused token again, force_refresh = true
    assert.same({ false, false, true }, r.calls)
    -- with a plain string token a 401 is the answer
    assert.equal(401, r.string_err.status)
    assert.equal("401013", r.string_err.code)
  end)

  it("keeps a token for the provider's expires_in; a 401 drops it and refreshes", function()
    local r = eval([[
      local calls, token = {}, "expired-token"
      local c = client{ token = function(force)
        calls[#calls + 1] = force
        if force then token = params.emu.access_token end
        return token, 3600
      end }
      local path = "profileAndServices/profile/" .. params.pkey
      local _, first = c:get(path)                  -- asks (false), 401, asks (false), asks (true)
      local ok2 = c:get(path) ~= nil                -- kept: no call
      local ok3 = c:get(path) ~= nil
      return { first_attempts = first.attempts, ok = ok2 and ok3, calls = calls }
    ]], { pkey = first_pkey() })
    assert.equal(2, r.first_attempts)
    assert.is_true(r.ok)
    assert.same({ false, false, true }, r.calls)
  end)

  it("reads a provider's expires_in above 10^7 as milliseconds, as the C client does", function()
    local r = eval([[
      local calls = 0
      local c = client{ token = function() calls = calls + 1 return params.emu.access_token, 5e12 end }
      local path = "profileAndServices/profile/" .. params.pkey
      local ok = c:get(path) ~= nil and c:get(path) ~= nil
      return { ok = ok, calls = calls }
    ]], { pkey = first_pkey() })
    assert.is_true(r.ok)
    assert.equal(1, r.calls) -- 5e9 s kept; as seconds (past the 1e12 bound) it would be 2
  end)

  it("returns kind 'auth' when the token provider fails, without calling the API", function()
    local r = eval([[
      local _, e1 = client{ token = function() return nil, "IMS is down" end }:get("x")
      local _, e2 = client{ token = function() error("boom") end }:get("x")
      return { e1 = e1, e2 = e2 }
    ]])
    assert.equal("auth", r.e1.kind)
    assert.matches("IMS is down", r.e1.message)
    assert.equal("auth", r.e2.kind)
    assert.matches("boom", r.e2.message)
    assert.equal(0, #emu:requests())
  end)

  it("reports network failures (retried, POST included when never sent) and timeouts", function()
    local closed = "http://127.0.0.1:" .. harness.free_port()
    emu:faults { { method = "GET", path = "/profile/@", delay_ms = 2500, times = 1 } }
    local r = eval([[
      local down = client{ base_url = params.closed, retries = 2 }
      local out = {}
      out.get_body, out.get_err = down:get("profileAndServices/profile")
      out.post_body, out.post_err = down:post("profileAndServices/profile", { email = "x@example.com" })
      -- timeout: the cosocket transport's read timeout (the capture one: proxy_read_timeout 1s)
      out.slow_body, out.slow_err = client{ retries = 0, timeout = 1 }
        :get("profileAndServices/profile/" .. params.pkey)
      return out
    ]], { closed = closed, pkey = first_pkey() })
    assert.equal("network", r.get_err.kind)
    assert.equal(3, r.get_err.attempts)
    assert.equal("network", r.post_err.kind)
    assert.equal(3, r.post_err.attempts)
    assert.equal("timeout", r.slow_err.kind)
    assert.equal(1, r.slow_err.attempts)
  end)

  it("does not resend a POST whose connection dropped after it was sent, but retries a GET", function()
    emu:faults {
      { method = "POST", path = "/profile$", drop = true, times = 1 },
      { method = "GET", path = "/profile/@", drop = true, times = 1 },
    }
    local r = eval([[
      local c = client()
      local out = {}
      out.post_body, out.post_err = c:post("profileAndServices/profile", { email = "dropped@example.com" })
      local body, res = c:get("profileAndServices/profile/" .. params.pkey)
      out.get_attempts = res.attempts
      return out
    ]], { pkey = first_pkey() })
    assert.equal("network", r.post_err.kind)
    assert.equal(1, r.post_err.attempts)
    assert.equal(2, r.get_attempts)
  end)

  it("fails with kind 'json' on an invalid 2xx body and 'too_large' above max_body", function()
    emu:faults { { method = "GET", path = "/profile/@", invalid = true, times = 1 } }
    local r = eval([[
      local path = "profileAndServices/profile/" .. params.pkey
      local _, bad = client():get(path)
      local _, big = client{ max_body = 100 }:get(path)
      return { bad = bad, big = big }
    ]], { pkey = first_pkey() })
    assert.equal("json", r.bad.kind)
    assert.equal(200, r.bad.status)
    assert.equal("too_large", r.big.kind)
    assert.equal(100, r.big.max_body)
    assert.equal(1, r.big.attempts) -- not retried: the answer would be as large again
  end)

  it("batch: results in request order, failures as err, at most `concurrency` in flight", function()
    local pkeys = {}
    for i, p in ipairs(emu:profiles()) do
      if i > 8 then break end
      pkeys[i] = p.PKey
    end
    emu:faults { { method = "GET", path = "/profile/@", delay_ms = 200, times = 8 } }
    local r = eval([[
      local requests = {}
      for i, pkey in ipairs(params.pkeys) do
        requests[i] = { "GET", "profileAndServices/profile/" .. pkey }
      end
      -- a well-formed PKey no record has: 404 (a malformed one would be ACS's 500)
      requests[#requests + 1] = { "GET", "profileAndServices/profile/@" .. ("NoSuchProfile0"):rep(8) }
      requests[#requests + 1] = { "PATCH", "profileAndServices/profile/" .. params.pkeys[1],
        { lastName = "Batch" } }
      local inflight, max_inflight, called = 0, 0, 0
      local c = client{ on_event = function(ev)
        if ev.type == "request" then
          inflight = inflight + 1
          if inflight > max_inflight then max_inflight = inflight end
        elseif ev.type == "response" or ev.type == "error" then
          inflight = inflight - 1
        end
      end }
      local results = c:batch(requests, { concurrency = 3, on_result = function() called = called + 1 end })
      local out = { max_inflight = max_inflight, called = called, n = #results, pkeys = {}, statuses = {} }
      for i, res in ipairs(results) do
        out.pkeys[i] = res.body and res.body.PKey or false
        out.statuses[i] = res.status
      end
      out.missing = results[#results - 1]
      return out
    ]], { pkeys = pkeys })
    assert.equal(#pkeys + 2, r.n)
    assert.equal(#pkeys + 2, r.called)
    for i, pkey in ipairs(pkeys) do assert.equal(pkey, r.pkeys[i]) end
    assert.equal(404, r.missing.status)
    assert.equal("http", r.missing.err.kind)
    assert.equal(200, r.statuses[#pkeys + 2])
    assert.equal(3, r.max_inflight)
  end)

  it("refuses the capture transport outside the request phases, naming the alternatives", function()
    local r = eval([[
      local dict = ngx.shared.campaign_test
      ngx.timer.at(0, function()
        local c = client { transport = "capture" }
        local ok, err = pcall(c.get, c, "profileAndServices/profile")
        dict:set("timer", ok and "no error" or tostring(err))
      end)
      for _ = 1, 100 do
        if dict:get("timer") then break end
        ngx.sleep(0.01)
      end
      return { message = dict:get("timer") }
    ]])
    assert.matches("rewrite, access and content phases", r.message)
    assert.matches("timer", r.message)
  end)

  it("logs no secret in nginx's error log", function()
    eval([[ return { client():get("profileAndServices/profile/@nope") } ]])
    local log = srv:error_log()
    assert.not_matches(emu.access_token, log, 1, true)
    assert.not_matches(emu.api_key, log, 1, true)
  end)
end)
