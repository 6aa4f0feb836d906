-- campaign._core (src/core.c): the request core without I/O that campaign.ngx drives. Every
-- decision here is the C client's (design.md "Retries and tokens", docs/errors.md): the specs
-- feed it transport answers by hand, no server, no sleep.
local campaign = require "campaign"

local KEY = "key-0123456789abcdef"
local TOKEN = "token-abcdefghijklmnopqrstuvwxyz"

local function core(extra, fname)
  local settings = { org = "acme", api_key = KEY, token = function() end,
    base_url = "https://api.example.test", user_agent = "spec-agent" }
  for k, v in pairs(extra or {}) do settings[k] = v end
  return campaign._core(settings, fname or "campaign.ngx.new", true)
end

local function answer(status, headers, body)
  return { status = status, headers = headers or {}, body = body or "" }
end

-- The message f(...) raises.
local function raises(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return tostring(err)
end

-- Runs one attempt and returns what :outcome said.
local function attempt(x, ...)
  x:attempt(TOKEN)
  return x:outcome(...)
end

describe("campaign._core", function()
  it("validates settings with campaign.new's rules, prefixed with the caller's name", function()
    assert.matches("^campaign.ngx.new: option 'api_key' is required",
      raises(campaign._core, { org = "acme", token = "t" }, "campaign.ngx.new"))
    assert.matches("^x.new: unknown option 'timout'",
      raises(campaign._core, { org = "acme", api_key = "k", token = "t", timout = 1 }, "x.new"))
    assert.matches("plain http://", raises(campaign._core, { org = "acme", api_key = "k", token = "t",
      base_url = "http://api.example.test" }, "campaign.ngx.new"))
    assert.matches("^campaign.new: option 'rate' must be a positive number",
      raises(campaign._core, { org = "acme", api_key = "k", token = "t", rate = "5" }))
  end)

  it("builds URLs as the C client does, and refuses what it refuses", function()
    local k = core()
    local c = campaign.new { org = "acme", api_key = KEY, token = "t", base_url = "https://api.example.test" }
    for _, case in ipairs {
      { "profileAndServices/profile/a b", { query = { x = { 1, 2 }, a = true } } },
      { "/acme/campaign/profileAndServices/profile", nil },
      { "https://api.example.test/acme/campaign/x?y=%zz", nil },
    } do
      assert.equal(c:url(case[1], case[2]), k:url("campaign.ngx.url", case[1], case[2]))
    end
    c:close()
    assert.matches("^campaign.ngx.url: .*another origin",
      raises(k.url, k, "campaign.ngx.url", "https://evil.example/acme/campaign/x"))
    assert.matches("^campaign.ngx.get: path segments '.' and '..' are refused",
      raises(k.request, k, "campaign.ngx.get", "GET", "a/../b"))
    assert.matches("^campaign.ngx.get: unsupported method 'BREW'",
      raises(k.request, k, "campaign.ngx.get", "BREW", "x"))
    assert.matches("header 'Authorization' is set by the client",
      raises(k.request, k, "campaign.ngx.get", "GET", "x", nil, { headers = { Authorization = "x" } }))
    assert.matches("unknown option 'body'",
      raises(k.request, k, "campaign.ngx.get", "GET", "x", nil, { body = "{}" }))
    assert.is_true((pcall(k.request, k, "campaign.ngx.request", "GET", "x", nil, { body = "{}" }, true)))
  end)

  it("gives the transport's request: URL, headers for the token, body and limits", function()
    local k = core { timeout = 7, connect_timeout = 2, max_body = 1000, on_event = function() end }
    local x = k:request("campaign.ngx.patch", "patch", "profile/p1", { a = 1 }, nil)
    local req, ev = x:attempt(TOKEN, 4)
    assert.same({ method = "PATCH", url = "https://api.example.test/acme/campaign/profile/p1",
      body = '{"a":1}', timeout = 7, connect_timeout = 2, max_body = 1000,
      headers = { Authorization = "Bearer " .. TOKEN, ["X-Api-Key"] = KEY,
        ["Cache-Control"] = "no-cache", Accept = "application/json",
        ["Content-Type"] = "application/json;charset=utf-8", ["User-Agent"] = "spec-agent" } }, req)
    assert.same({ type = "request", method = "PATCH", url = req.url, attempt = 1, index = 4 }, ev)
    -- extra headers replace a default of the same name; an empty value stays empty
    x = k:request("campaign.ngx.get", "GET", "x", nil, { headers = { accept = "text/plain", ["X-E"] = "" } })
    req = x:attempt(false)
    assert.is_nil(req.headers.Authorization)
    assert.is_nil(req.headers.Accept)
    assert.equal("text/plain", req.headers.accept)
    assert.equal("", req.headers["X-E"])
    -- no on_event: no event tables
    local quiet = core():request("campaign.ngx.get", "GET", "x")
    assert.is_nil(select(2, quiet:attempt(TOKEN)))
  end)

  it("gives a user transport its own headers table per attempt: changing it changes no later one", function()
    local settings = { org = "acme", api_key = KEY, token = function() end,
      base_url = "https://api.example.test", user_agent = "spec-agent" }
    local user = campaign._core(settings, "campaign.ngx.new", false) -- transport = a function
    local first = user:request("campaign.ngx.get", "GET", "x"):attempt(TOKEN)
    first.headers.Authorization, first.headers["X-Added"] = "changed", "1"
    local second = user:request("campaign.ngx.get", "GET", "x"):attempt(TOKEN)
    assert.equal("Bearer " .. TOKEN, second.headers.Authorization)
    assert.is_nil(second.headers["X-Added"])
    assert.are_not.equal(first.headers, second.headers)
    -- the built-in transports only read it: one table per token serves them all
    local shared = core()
    assert.equal(shared:request("campaign.ngx.get", "GET", "x"):attempt(TOKEN).headers,
      shared:request("campaign.ngx.get", "GET", "y"):attempt(TOKEN).headers)
  end)

  it("x:lesson(): what the last attempt says about the load, by the libcurl batch's rule", function()
    local unpack_args = table.unpack or unpack -- luacheck: ignore (5.1's global)
    local k = core { retries = 3, retry_base = 0, retry_max = 0 }
    local x = k:request("campaign.ngx.get", "GET", "x")
    assert.matches("before any attempt", raises(x.lesson, x))
    for _, case in ipairs {
      { { answer(503) }, "overload" }, { { answer(429) }, "overload" }, { { answer(502) }, "ok" },
      { { nil, "timeout", "slow", true }, "timeout" }, { { nil, "network", "refused", false }, "ignore" },
      { { nil, "tls", "bad certificate", false }, "ignore" }, { { answer(200, {}, "{}") }, "ok" },
    } do
      x = k:request("campaign.ngx.get", "GET", "x")
      attempt(x, unpack_args(case[1], 1, 4))
      local outcome, rtt = x:lesson()
      assert.are.equal(case[2], outcome)
      assert.is_true(rtt >= 0 and rtt < 5)
    end
    -- per attempt: a 503 then a 200 is first an overload, then an answer
    x = k:request("campaign.ngx.get", "GET", "x")
    assert.are.equal("retry", (attempt(x, answer(503))))
    assert.are.equal("overload", (x:lesson()))
    assert.are.equal("done", (attempt(x, answer(200, {}, "{}"))))
    assert.are.equal("ok", (x:lesson()))
  end)

  it("decides by status and method: 429/502/503/504 retried for idempotent methods only", function()
    local k = core { retries = 2, retry_base = 0, retry_max = 0 }
    for _, case in ipairs {
      { "GET", 503, "retry" }, { "PUT", 429, "retry" }, { "DELETE", 502, "retry" },
      { "PATCH", 504, "retry" }, { "POST", 503, "done" }, { "GET", 500, "done" },
      { "GET", 404, "done" }, { "GET", 200, "done" },
    } do
      local x = k:request("f", case[1], "x")
      assert.equal(case[3], (attempt(x, answer(case[2]))), case[1] .. " " .. case[2])
    end
    -- the retries run out: the last answer is the result
    local x = k:request("f", "GET", "x")
    assert.equal("retry", (attempt(x, answer(503))))
    assert.equal("retry", (attempt(x, answer(503))))
    local step, _, body, err = attempt(x, answer(503, nil, '{"message":"busy"}'))
    assert.equal("done", step)
    assert.is_nil(body)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.equal("busy", err.message)
  end)

  it("waits Retry-After (capped at retry_max) or a backoff within retry_base * 2^(n-1)", function()
    local k = core { retry_base = 0.5, retry_max = 10, on_event = function() end }
    local x = k:request("f", "GET", "x")
    local step, ev, wait, retry_ev = attempt(x, answer(429, { ["retry-after"] = "3" }))
    assert.equal("retry", step)
    local _
    assert.equal(3, wait)
    assert.same({ type = "response", method = "GET", url = ev.url, attempt = 1, status = 429,
      elapsed = ev.elapsed }, ev)
    assert.same({ type = "retry", method = "GET", url = ev.url, attempt = 1, status = 429, wait = 3 },
      retry_ev)
    step, _, wait = attempt(x, answer(429, { ["retry-after"] = "3600" }))
    assert.equal("retry", step)
    assert.equal(10, wait)
    step, _, wait = attempt(x, answer(503, { ["retry-after"] = "soon" }))
    assert.equal("retry", step)
    assert.is_true(wait >= 0 and wait <= 0.5 * 4)
    -- an HTTP date in the past: no wait
    x = k:request("f", "GET", "x")
    step, _, wait = attempt(x, answer(503, { ["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT" }))
    assert.equal("retry", step)
    assert.equal(0, wait)
  end)

  it("retries a transport failure when the method allows it or nothing was sent", function()
    local k = core { retry_base = 0, retry_max = 0 }
    local function first(method, kind, sent)
      return (attempt(k:request("f", method, "x"), nil, kind, "boom", sent))
    end
    assert.equal("retry", first("GET", "network", true))
    assert.equal("retry", first("GET", "timeout", nil))
    assert.equal("retry", first("POST", "network", false))
    assert.equal("done", first("POST", "network", true))
    assert.equal("done", first("POST", "timeout", nil)) -- unknown counts as sent
    assert.equal("done", first("GET", "tls", false))
    assert.equal("done", first("GET", "too_large", true))
    local step, _, body, err = attempt(k:request("f", "POST", "x"), nil, "network", "reset", true)
    assert.equal("done", step)
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal("reset", err.message)
    assert.is_true(err.sent)
    assert.is_nil(err.curl_code)
    assert.equal("POST", err.method)
    assert.equal("x", err.path)
  end)

  it("refreshes the token once after a 401 with a provider, never with a fixed token", function()
    local k = core()
    local x = k:request("f", "GET", "x")
    assert.equal("refresh", (attempt(x, answer(401))))
    local step, _, _, err = attempt(x, answer(401, nil, '{"message":"expired"}'))
    assert.equal("done", step)
    assert.equal(401, err.status)
    assert.equal(2, err.attempts)
    local fixed = core { token = "fixed-token" }
    assert.equal("done", (attempt(fixed:request("f", "GET", "x"), answer(401))))
    -- the provider failing after the 401: its error, located, status 401
    x = k:request("f", "GET", "x")
    attempt(x, answer(401))
    local _, terr = x:token_failed(campaign.error { kind = "auth", message = "IMS is down" })
    assert.equal("auth", terr.kind)
    assert.equal(401, terr.status)
    assert.equal("x", terr.path)
  end)

  it("reads a token provider's answer by the C client's rules", function()
    local k = core()
    assert.same({ "tok", 3600 }, { k:token(true, "tok", 3600) })
    assert.same({ "tok", 86399.992 }, { k:token(true, "tok", 86399992) }) -- legacy milliseconds
    local _, err = k:token(true, "has space")
    assert.matches("invalid token", err.message)
    _, err = k:token(false, "boom")
    assert.equal("auth", err.kind)
    assert.equal("token provider failed: boom", err.message)
    local own = campaign.error { kind = "auth", message = "mine" }
    assert.equal(own, select(2, k:token(false, own)))
    assert.equal(own, select(2, k:token(true, nil, own)))
  end)

  it("makes the results and error objects of the C client, secrets redacted", function()
    local k = core { max_body = 100 }
    local step, _, body, res = attempt(k:request("f", "GET", "x"), answer(200, { a = "1" }, '{"n":1}'))
    assert.equal("done", step)
    assert.same({ n = 1 }, body)
    assert.equal(200, res.status)
    assert.same({ a = "1" }, res.headers)
    assert.equal(1, res.attempts)
    assert.is_number(res.elapsed)
    local raw = k:request("f", "GET", "x", nil, { raw = true })
    assert.equal("{}", (select(3, attempt(raw, answer(200, {}, "{}")))))
    -- not JSON: kind json
    local _, _, _, err = attempt(k:request("f", "GET", "x"), answer(200, {}, "{nope"))
    assert.equal("json", err.kind)
    assert.equal(200, err.status)
    -- an echoed token or API key never reaches the error
    _, _, _, err = attempt(k:request("f", "GET", "x"), answer(403,
      { ["x-request-id"] = "rid-" .. TOKEN }, "<html><title>gw " .. KEY .. "</title> " .. TOKEN .. "</html>"))
    assert.equal("http", err.kind)
    assert.equal("gw <redacted>", err.message)
    assert.equal("rid-<redacted>", err.request_id)
    assert.is_nil(tostring(err.body):find(TOKEN, 1, true))
    assert.is_nil(tostring(err):find(KEY, 1, true))
    -- an ACS error body: code, message, codes
    _, _, _, err = attempt(k:request("f", "GET", "x"), answer(400, {},
      '{"error_code":"RST-360011","message":"RST-360011 An error has occurred"}'))
    assert.equal("RST-360011", err.code)
    assert.same({ "RST-360011" }, err.codes)
    -- a body over max_body is kind too_large
    _, _, _, err = attempt(k:request("f", "GET", "x"), answer(200, {}, string.rep("x", 101)))
    assert.equal("too_large", err.kind)
    assert.equal(100, err.max_body)
  end)

  it("refuses an attempt the budget refused, nothing sent", function()
    local x = core():request("f", "GET", "x")
    local body, err = x:refused("budget spent")
    assert.is_nil(body)
    assert.equal("budget", err.kind)
    assert.equal("budget spent", err.message)
    assert.is_false(err.sent)
    assert.equal(0, err.attempts)
  end)

  it("checks batch's arguments by the C client's batch rules, for any caller's name", function()
    local k = core()
    local n, limiter = k:batch_options("campaign.ngx.batch", {}, { concurrency = 8 })
    assert.equal(8, n)
    assert.is_nil(limiter)
    assert.equal(16, (k:batch_options("campaign.ngx.batch", {}, nil)))
    n, limiter = k:batch_options("campaign.ngx.batch", function() end,
      { concurrency = "auto", concurrency_max = 32, on_result = function() end })
    assert.equal(4, n)
    assert.same({ 4, 32 }, { limiter:limit(), limiter:state().max })
    local c = campaign.new { org = "acme", api_key = KEY, token = TOKEN }
    for _, case in ipairs {
      { {}, { concurrency = 0 } }, { {}, { concurrency = "fast" } }, { {}, { concurrency_max = 8 } },
      { {}, { concurrency = "auto", concurrency_start = 9, concurrency_max = 8 } },
      { {}, { on_result = 1 } }, { {}, { window = 2 } }, { function() end, nil }, { "x", nil },
      { {}, "opts" },
    } do
      local driver = raises(k.batch_options, k, "campaign.ngx.batch", case[1], case[2])
      local libcurl = raises(c.batch, c, case[1], case[2])
      -- the same text on both drivers, each naming its own function
      assert.equal(libcurl:gsub("^campaign%.batch: ", ""), (driver:gsub("^campaign%.ngx%.batch: ", "")))
    end
    c:close()
  end)

  it("splits an absolute URL by url.c's rules", function()
    assert.same({ "https", "example.com", 443, "Example.COM", "/a?b" },
      { campaign._url_split("HTTPS://Example.COM/a?b") })
    assert.same({ "http", "[::1]", 8080, "[::1]:8080", "" }, { campaign._url_split("http://[::1]:8080") })
    assert.is_nil(campaign._url_split("http://user@host/"))
    assert.is_nil(campaign._url_split("ftp://host/"))
  end)
end)
