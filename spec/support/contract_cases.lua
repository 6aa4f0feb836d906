-- The request contract (design.md "The C module", "The error object", "Retries and tokens";
-- docs/client.md, docs/errors.md) as data, run against every driver: the libcurl client
-- (spec/integration/contract_spec.lua) and campaign.ngx with each transport
-- (spec/openresty/contract_spec.lua). One case is
--   { id, title, setup = function(ctx) (busted side: faults, data), params = function(ctx) -> t,
--     call = "<Lua text>", check = function(r, ctx), settle = seconds }
-- `call` is source text so that it runs unchanged in a busted process and inside nginx
-- (srv:eval). It sees `params` (the case's params plus `params.emu`), `campaign` (the C
-- module), `new_client(extra)` (the driver's client on the emulator, with short retry waits,
-- `extra` merged) and the helpers of M.prelude; it returns plain data (error objects become
-- tables with their tostring as `text`), which `check` asserts in busted. Each check asserts
-- what a user relies on, from the docs: where a driver differs, the case fails for it.
local assert = require "luassert"

local M = {}

-- The helpers every `call` sees (Lua 5.1 to 5.4: the text runs on LuaJIT in nginx too).
M.prelude = [[
local function collector()
  local list = {}
  return list, function(ev)
    local copy = {}
    for k, v in pairs(ev) do copy[k] = v end
    list[#list + 1] = copy
  end
end
local function raised(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "no error" end
  return tostring(e)
end
local function outcome(body, res)
  if body == nil then return { err = res } end
  return { body = body, res = res }
end
]]

-- Base options of every driver's client (the driver adds its transport).
M.base_options = { retry_base = 0.01, retry_max = 0.05, timeout = 5, connect_timeout = 5 }

local API = "profileAndServices/profile"
local API_URI = "/acme/campaign/" .. API

-- ------------------------------------------------------------------ busted-side helpers

local function logged(ctx, needle, method)
  local out = {}
  for _, r in ipairs(ctx.emu:requests()) do
    if (not needle or r.uri:find(needle, 1, true)) and (not method or r.method == method) then
      out[#out + 1] = r
    end
  end
  return out
end
M.logged = logged

-- The text of a misuse raise without its position and function name: "campaign.get: x" and
-- "campaign.ngx.get: x" both give "x" (each client names its own function).
local function misuse_text(s, fname)
  s = tostring(s)
  -- a position inside lua/campaign/ names the library, not the caller: a wrong error level
  assert(not s:match("^[^:%s]*campaign/[%w_]+%.lua:%d+: "), "the raise points into the library: " .. s)
  s = s:gsub("^[^:%s]+:%d+: ", "")
  local name, rest = s:match("^(campaign[%w._]*): (.*)$")
  if not name then return s end
  if fname then
    assert(name == "campaign." .. fname or name == "campaign.ngx." .. fname,
      "the raise should name campaign[.ngx]." .. fname .. ": " .. s)
  end
  return rest
end
M.misuse_text = misuse_text

local function err_of(r, what)
  assert(type(r) == "table" and type(r.err) == "table", (what or "call") .. " should fail, got "
    .. (type(r) == "table" and r.res and ("status " .. tostring(r.res.status)) or tostring(r)))
  return r.err
end

local function ok_of(r, what)
  assert(type(r) == "table" and r.res, (what or "call") .. " should succeed, got "
    .. tostring(type(r) == "table" and r.err and r.err.text or r))
  return r.res
end

local function near(want, got, eps, what)
  assert(type(got) == "number" and math.abs(got - want) <= (eps or 1e-6),
    (what or "value") .. ": expected " .. want .. ", got " .. tostring(got))
end

local function of_type(events, t)
  local out = {}
  for _, ev in ipairs(events or {}) do
    if ev.type == t then out[#out + 1] = ev end
  end
  return out
end

-- Every string inside v (keys and values, nested), for the secrets checks.
local function strings(v, out, depth)
  out = out or {}
  depth = depth or 0
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and depth < 20 then
    for k, x in pairs(v) do
      strings(k, out, depth + 1)
      strings(x, out, depth + 1)
    end
  end
  return out
end

local function assert_no_secret(v, secrets, what)
  for _, s in ipairs(strings(v)) do
    for name, secret in pairs(secrets) do
      assert(not s:find(secret, 1, true), what .. " holds the " .. name .. ": " .. s:sub(1, 200))
      -- a secret cut short (16+ characters of its start) is a leak too (docs/errors.md)
      assert(not s:find(secret:sub(1, 16), 1, true), what .. " holds the start of the " .. name)
    end
  end
end

-- Collects mismatches and fails once with all of them, so a driver that differs in several
-- fields of one case shows every difference in one run.
local function differences()
  local list = {}
  local d = {}
  function d.equal(want, got, what)
    if want ~= got then
      list[#list + 1] = what .. ": expected " .. tostring(want) .. ", got " .. tostring(got)
    end
  end
  function d.done()
    assert(#list == 0, #list .. " difference(s) from the contract:\n  " .. table.concat(list, "\n  "))
  end
  return d
end

local function http_date(t)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
end

-- ------------------------------------------------------------------ the cases

local cases = {}
local function case(c) cases[#cases + 1] = c end

-- URL and query encoding, as the server receives them ---------------------------------

case {
  id = "url.query_table",
  title = "a query table is encoded once, keys sorted, a space as %20 (never %2520)",
  call = [[
    local c = new_client()
    return { a = outcome(c:get("profileAndServices/profile",
      { query = { _order = "email desc", _lineCount = 2 } })) }
  ]],
  check = function(r, ctx)
    local res = ok_of(r.a)
    assert.equal(200, res.status)
    assert.equal(1, res.attempts)
    assert.is_number(res.elapsed)
    assert.matches("^application/json", res.headers["content-type"])
    for name in pairs(res.headers) do assert.equal(name:lower(), name) end
    assert.equal(2, #r.a.body.content)
    local got = logged(ctx, API)
    assert.equal(1, #got)
    assert.equal(API_URI .. "?_lineCount=2&_order=email%20desc", got[1].uri)
  end,
}

case {
  id = "url.query_string_and_table",
  title = "a path's own query is kept and a query table is appended after it (lists, booleans)",
  call = [[
    local c = new_client()
    return { a = outcome(c:get("profileAndServices/profile?_lineCount=1",
      { query = { _forcePagination = true, tag = { "a b", "c/d" }, none = {} } })) }
  ]],
  check = function(r, ctx)
    assert.is_table(r.a.res or r.a.err)
    local got = logged(ctx, API)
    assert.equal(1, #got)
    assert.equal(API_URI .. "?_lineCount=1&_forcePagination=true&tag=a%20b&tag=c/d", got[1].uri)
  end,
}

case {
  id = "url.segments",
  title = "path segments are percent-encoded on the wire (a PKey keeps its @, + is %2B)",
  call = [[
    local c = new_client()
    return { a = outcome(c:get("profileAndServices/profile/@a b+c/\195\169")) }
  ]],
  check = function(r, ctx)
    assert.is_number(err_of(r.a).status)   -- the emulator refuses such a key; the URL is the point
    local got = logged(ctx, API)
    assert.equal(1, #got)
    assert.equal(API_URI .. "/@a%20b%2Bc/%C3%A9", got[1].uri)
  end,
}

case {
  id = "url.key_one_segment",
  title = "campaign.api sends a key as ONE segment ('?', '#', ':' are data) and refuses a '/'",
  call = [[
    local api = require "campaign.api"
    local c = new_client()
    return { a = outcome(api.get_profile(c, "@k?_lineCount=1#x")),
      slash = raised(api.get_profile, c, "@a/b"),
      dots = raised(api.get_profile, c, "..") }
  ]],
  check = function(r, ctx)
    assert.is_number(err_of(r.a).status)
    local got = logged(ctx, API)
    assert.equal(1, #got)
    assert.equal(API_URI .. "/@k%3F_lineCount%3D1%23x", got[1].uri)
    assert.equal("campaign.api.get_profile: argument #2 'pkey' must not contain '/'", r.slash)
    assert.matches("^campaign%.api%.get_profile: argument #2 'pkey' must not be '%.' or '%.%.'", r.dots)
  end,
}

case {
  id = "url.href_same_origin",
  title = "an absolute href of the client's origin is followed; another origin raises, nothing sent",
  params = function(ctx)
    local port = ctx.emu.base_url:match(":(%d+)$")
    return { other_host = "http://127.0.0.2:" .. port, other_scheme = "https://127.0.0.1:" .. port }
  end,
  call = [[
    local c = new_client()
    local first, res = c:get("profileAndServices/profile", { query = { _lineCount = 1 } })
    local href = first and first.next and first.next.href
    local out = { first = outcome(first, res), href = href }
    if href then out.next = outcome(c:get(href)) end
    local path = "/acme/campaign/profileAndServices/profile"
    out.other_host = raised(c.get, c, params.other_host .. path)
    out.other_scheme = raised(c.get, c, params.other_scheme .. path)
    out.userinfo = raised(c.get, c, params.emu.base_url:gsub("//", "//u:p@") .. path)
    return out
  ]],
  check = function(r, ctx)
    ok_of(r.first)
    assert.is_string(r.href)
    assert.matches("^" .. ctx.emu.base_url:gsub("%p", "%%%0") .. "/", r.href)
    ok_of(r.next, "the next.href GET")
    local got = logged(ctx, API)
    assert.equal(2, #got)
    assert.equal(r.href:sub(#ctx.emu.base_url + 1), got[2].uri)
    local origin = "an absolute URL must have the base_url's scheme, host and port "
      .. "(credentials never go to another origin)"
    local d = differences()
    for _, k in ipairs { "other_host", "other_scheme" } do
      local ok, text = pcall(misuse_text, r[k], "get")
      d.equal(origin, ok and text or ("(" .. tostring(text) .. ")"), k)
    end
    d.equal(true, r.userinfo ~= "no error", "user information in an href raises")
    d.done()
  end,
}

local REFUSED = {
  { "profileAndServices/../x", "path segments '.' and '..' are refused" },
  { "profileAndServices/%2e%2E/x", "path segments '.' and '..' are refused" },
  { "profileAndServices/a%2Fb",
    "encoded '/' and '\\' (%2F, %5C) are refused in paths (no ACS key contains one)" },
  { "profileAndServices/a\\b", "backslashes are refused in paths" },
  { "profileAndServices/profile#x", "'#' is refused in paths (a fragment is never sent; encode it as %23)" },
  { "profileAndServices/profile\r\nX-Injected: 1", "control characters (CR, LF, ...) are refused in paths" },
}

case {
  id = "url.refused",
  title = "refused paths raise with the same message from every method, and nothing is sent",
  params = function() return { refused = REFUSED } end,
  call = [[
    local c = new_client()
    local out = { list = {} }
    for i, p in ipairs(params.refused) do
      local path = p[1]
      out.list[i] = {
        get = raised(c.get, c, path),
        patch = raised(c.patch, c, path, { a = 1 }),
        post = raised(c.post, c, path, { a = 1 }),
        delete = raised(c.delete, c, path),
        request = raised(c.request, c, "PUT", path, { body = "{}" }),
        url = raised(c.url, c, path),
        batch = raised(c.batch, c, { { "GET", "profileAndServices/profile" }, { "DELETE", path } }),
      }
    end
    out.query = raised(c.get, c, "profileAndServices/profile", { query = { q = "a\nb" } })
    return out
  ]],
  check = function(r, ctx)
    assert.equal(0, #logged(ctx))
    local d = differences()
    local function text(s, m)
      local ok, t = pcall(misuse_text, s, m)
      return ok and t or ("(" .. tostring(t) .. ")")
    end
    for i, p in ipairs(REFUSED) do
      for _, m in ipairs { "get", "patch", "post", "delete", "request", "url" } do
        d.equal(p[2], text(r.list[i][m], m), m .. " " .. p[1])
      end
      -- batch names the request's position: "request 2: <text>" (docs/client.md "batch")
      d.equal("request 2: " .. p[2], text(r.list[i].batch, "batch"), "batch " .. p[1])
    end
    d.equal("control characters (CR, LF, ...) are refused in queries", text(r.query, "get"), "query")
    d.done()
  end,
}

-- Headers, as the emulator records them ---------------------------------------------------

local function check_default_headers(h, ctx, version)
  assert.equal("Bearer " .. ctx.emu.access_token, h.authorization)
  assert.equal(ctx.emu.api_key, h["x-api-key"])
  assert.equal("application/json;charset=utf-8", h["content-type"])
  assert.equal("no-cache", h["cache-control"])
  assert.equal("application/json", h.accept)
  assert.matches("^lua%-campaign/" .. version:gsub("%p", "%%%0") .. " ", h["user-agent"])
end

case {
  id = "headers.defaults",
  title = "GET, PATCH, POST and DELETE carry Authorization, X-Api-Key, Content-Type, Cache-Control, "
    .. "Accept, User-Agent",
  needs_pkey = true,
  params = function(ctx) return { pkey = ctx.pkey } end,
  call = [[
    local c = new_client()
    local path = "profileAndServices/profile/" .. params.pkey
    local out = { version = campaign._VERSION }
    out.get = outcome(c:get(path))
    out.patch = outcome(c:patch(path, { firstName = "Contract" }))
    out.post = outcome(c:post("profileAndServices/profile", { email = "contract@example.com" }))
    out.delete = outcome(c:delete(path))
    return out
  ]],
  check = function(r, ctx)
    for _, m in ipairs { "get", "patch", "post", "delete" } do ok_of(r[m], m) end
    local got = logged(ctx, API)
    assert.equal(4, #got)
    assert.same({ "GET", "PATCH", "POST", "DELETE" },
      { got[1].method, got[2].method, got[3].method, got[4].method })
    for _, req in ipairs(got) do check_default_headers(req.headers, ctx, r.version) end
    assert.equal('{"firstName":"Contract"}', got[2].body)
    assert.equal('{"email":"contract@example.com"}', got[3].body)
    -- nothing of the spec's own request (curl's headers, the handler's cookies) goes along
    for _, req in ipairs(got) do assert.is_nil(req.headers.cookie) end
  end,
}

case {
  id = "headers.extra",
  title = "extra headers are sent, replace Accept/User-Agent, an empty one is sent empty; "
    .. "user_agent option",
  call = [[
    local c = new_client { user_agent = "contract-agent/1.0" }
    return { a = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 },
      headers = { ["X-Extra"] = "v 1", Accept = "application/vnd.adobe+json", ["X-Empty"] = "" } })),
      b = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 },
      headers = { ["User-Agent"] = "per-call/2" } })) }
  ]],
  check = function(r, ctx)
    ok_of(r.a)
    ok_of(r.b)
    local got = logged(ctx, API)
    assert.equal(2, #got)
    local h = got[1].headers
    assert.equal("v 1", h["x-extra"])
    assert.equal("application/vnd.adobe+json", h.accept)
    assert.equal("", h["x-empty"])
    assert.equal("contract-agent/1.0", h["user-agent"])
    assert.equal("Bearer " .. ctx.emu.access_token, h.authorization)
    assert.equal("per-call/2", got[2].headers["user-agent"])
  end,
}

case {
  id = "headers.refused",
  title = "headers the client owns, bad names and CR/LF in a value raise, nothing is sent",
  call = [[
    local c = new_client()
    local function with(h) return raised(c.get, c, "profileAndServices/profile", { headers = h }) end
    return { auth = with { Authorization = "Bearer other" }, key = with { ["x-api-key"] = "k" },
      host = with { Host = "evil.example" }, length = with { ["Content-Length"] = "1" },
      crlf = with { ["X-A"] = "v\r\nX-Injected: 1" }, name = with { ["Bad Name"] = "v" } }
  ]],
  check = function(r, ctx)
    -- the texts of src/options.c: "bad input gets a clear error on every driver alike" (issue 12)
    local owned = "is set by the client and cannot be given"
    local d = differences()
    d.equal("header 'Authorization' " .. owned, misuse_text(r.auth, "get"), "Authorization")
    d.equal("header 'x-api-key' " .. owned, misuse_text(r.key, "get"), "x-api-key")
    d.equal("header 'Host' " .. owned, misuse_text(r.host, "get"), "Host")
    d.equal("header 'Content-Length' " .. owned, misuse_text(r.length, "get"), "Content-Length")
    d.equal("header 'X-A' has control characters (CR, LF, ...) in its value", misuse_text(r.crlf, "get"),
      "CR/LF")
    d.equal("invalid header name", misuse_text(r.name, "get"), "a name with a space")
    d.done()
    assert.equal(0, #logged(ctx))
  end,
}

-- Retries by method -----------------------------------------------------------------------

case {
  id = "retry.transient_get",
  title = "429, 502, 503 and 504 are retried for GET",
  setup = function(ctx)
    for _, s in ipairs { 429, 502, 503, 504 } do
      ctx.emu:faults { method = "GET", path = "/profileAndServices/profile$", status = s, times = 1 }
    end
  end,
  call = [[
    local c = new_client { retries = 5 }
    return { a = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } })) }
  ]],
  check = function(r, ctx)
    assert.equal(5, ok_of(r.a).attempts)
    assert.equal(5, #logged(ctx, API))
  end,
}

case {
  id = "retry.methods",
  title = "PATCH, PUT and DELETE are retried after a 503; POST is not; 500 never is",
  needs_pkey = true,
  params = function(ctx) return { pkey = ctx.pkey } end,
  setup = function(ctx)
    ctx.emu:faults {
      { method = "PATCH", status = 503, times = 1 }, { method = "PUT", status = 503, times = 1 },
      { method = "DELETE", status = 503, times = 1 }, { method = "POST", status = 503, times = 1 },
      { method = "GET", status = 500, times = 1 },
    }
  end,
  call = [[
    local c = new_client { retries = 3 }
    local path = "profileAndServices/profile/" .. params.pkey
    return {
      patch = outcome(c:patch(path, { firstName = "Retried" })),
      put = outcome(c:request("PUT", path, { body = { firstName = "Put" } })),
      post = outcome(c:post("profileAndServices/profile", { email = "post@example.com" })),
      get = outcome(c:get(path)),
      delete = outcome(c:delete(path)),
    }
  ]],
  check = function(r, ctx)
    assert.equal(2, ok_of(r.patch, "PATCH").attempts)
    local put = r.put.res or r.put.err          -- the emulator's answer to a PUT after the retry
    assert.equal(2, put.attempts)
    local post = err_of(r.post, "POST")
    assert.equal(503, post.status)
    assert.equal(1, post.attempts)
    local get = err_of(r.get, "GET")
    assert.equal(500, get.status)
    assert.equal(1, get.attempts)
    assert.equal(2, ok_of(r.delete, "DELETE").attempts)
    assert.equal(1, #logged(ctx, API, "POST"))
    assert.equal(1, #logged(ctx, API, "GET"))
  end,
}

case {
  id = "retry.count",
  title = "retries = N makes exactly N + 1 attempts; retries = 0 makes one",
  setup = function(ctx)
    ctx.emu:faults { method = "GET", path = "/profileAndServices/profile$", status = 503, times = -1 }
  end,
  call = [[
    local events, on_event = collector()
    local two = outcome(new_client { retries = 2, on_event = on_event }:get("profileAndServices/profile"))
    local zero = outcome(new_client { retries = 0 }:get("profileAndServices/profile"))
    return { two = two, zero = zero, events = events }
  ]],
  check = function(r, ctx)
    local two = err_of(r.two)
    assert.equal(503, two.status)
    assert.equal(3, two.attempts)
    assert.equal(1, err_of(r.zero).attempts)
    assert.equal(4, #logged(ctx, API))
    local requests, responses = of_type(r.events, "request"), of_type(r.events, "response")
    assert.equal(3, #requests)
    assert.equal(3, #responses)
    for n, ev in ipairs(requests) do
      assert.equal("GET", ev.method)
      assert.equal(ctx.emu.base_url .. API_URI, ev.url)
      assert.equal(n, ev.attempt)
      assert.equal(503, responses[n].status)
      assert.is_number(responses[n].elapsed)
    end
    local retries = of_type(r.events, "retry")
    assert.equal(2, #retries)
    assert.equal(503, retries[1].status)
    assert.is_number(retries[1].wait)
  end,
}

case {
  id = "retry.backoff",
  title = "without Retry-After the wait is full jitter: uniform(0, min(retry_max, retry_base * 2^(n-1)))",
  setup = function(ctx)
    ctx.emu:faults { method = "GET", path = "/profileAndServices/profile$", status = 503, times = -1 }
  end,
  call = [[
    local events, on_event = collector()
    local a = outcome(new_client { retries = 4, retry_base = 0.01, retry_max = 0.03, on_event = on_event }
      :get("profileAndServices/profile"))
    local none, on_none = collector()
    local b = outcome(new_client { retries = 2, retry_base = 0, retry_max = 5, on_event = on_none }
      :get("profileAndServices/profile"))
    return { a = a, events = events, b = b, none = none }
  ]],
  check = function(r)
    assert.equal(5, err_of(r.a).attempts)
    local retries = of_type(r.events, "retry")
    assert.equal(4, #retries)
    local caps, sum = { 0.01, 0.02, 0.03, 0.03 }, 0
    for n, ev in ipairs(retries) do
      assert.is_number(ev.wait)
      assert(ev.wait >= 0 and ev.wait <= caps[n] + 1e-9, "wait " .. n .. " = " .. ev.wait)
      assert.equal(503, ev.status)
      sum = sum + ev.wait
    end
    assert(sum > 0, "full jitter: four waits of exactly 0")
    for _, ev in ipairs(of_type(r.none, "retry")) do assert.equal(0, ev.wait) end
    assert.equal(3, err_of(r.b).attempts)
  end,
}

case {
  id = "retry.retry_after_seconds",
  title = "Retry-After in seconds is the wait, capped by retry_max; err.retry_after on the error",
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", status = 503,
        headers = { ["Retry-After"] = "5" } },
      { method = "GET", path = "/profileAndServices/service$", status = 429,
        headers = { ["Retry-After"] = "1" } },
      { method = "GET", path = "/profileAndServices/history$", status = 429,
        headers = { ["Retry-After"] = "7" } },
    }
  end,
  call = [[
    local capped, on_capped = collector()
    local a = outcome(new_client { retries = 1, retry_base = 0, retry_max = 0.2, on_event = on_capped }
      :get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    local full, on_full = collector()
    local b = outcome(new_client { retries = 1, retry_base = 0, retry_max = 30, on_event = on_full }
      :get("profileAndServices/service", { query = { _lineCount = 1 } }))
    local c = outcome(new_client { retries = 0 }:get("profileAndServices/history"))
    return { a = a, capped = capped, b = b, full = full, c = c }
  ]],
  check = function(r)
    assert.equal(2, ok_of(r.a).attempts)
    local w = of_type(r.capped, "retry")
    assert.equal(1, #w)
    near(0.2, w[1].wait, 1e-6, "Retry-After 5 capped at retry_max 0.2")
    local res = ok_of(r.b)
    assert.equal(2, res.attempts)
    near(1, of_type(r.full, "retry")[1].wait, 1e-6, "Retry-After 1")
    assert(res.elapsed >= 0.95, "waited " .. tostring(res.elapsed))
    local err = err_of(r.c)
    assert.equal(429, err.status)
    assert.equal(7, err.retry_after)
  end,
}

case {
  id = "retry.retry_after_date",
  title = "Retry-After as an HTTP-date is the wait until then, capped by retry_max",
  setup = function(ctx)
    local now = os.time()
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", status = 503,
        headers = { ["Retry-After"] = http_date(now + 30) } },
      { method = "GET", path = "/profileAndServices/service$", status = 503,
        headers = { ["Retry-After"] = http_date(now + 2) } },
    }
  end,
  call = [[
    local capped, on_capped = collector()
    local a = outcome(new_client { retries = 1, retry_base = 0, retry_max = 0.3, on_event = on_capped }
      :get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    local full, on_full = collector()
    local b = outcome(new_client { retries = 1, retry_base = 0, retry_max = 30, on_event = on_full }
      :get("profileAndServices/service", { query = { _lineCount = 1 } }))
    return { a = a, capped = capped, b = b, full = full }
  ]],
  check = function(r)
    assert.equal(2, ok_of(r.a).attempts)
    near(0.3, of_type(r.capped, "retry")[1].wait, 1e-6, "a date 30 s ahead capped at 0.3")
    assert.equal(2, ok_of(r.b).attempts)
    -- a date 2 s ahead (whole seconds, set before the first call): between 0 and 2 s, not 0
    local wait = of_type(r.full, "retry")[1].wait
    assert(type(wait) == "number" and wait > 0.2 and wait <= 2.05, "wait until the date: " .. tostring(wait))
  end,
}

-- The 401 rule ---------------------------------------------------------------------------

case {
  id = "auth.refresh_once",
  title = "401 with a provider: one force_refresh, the request sent once more, then the answer",
  call = [[
    local calls = {}
    local c = new_client { token = function(force)
      calls[#calls + 1] = force
      if force then return params.emu.access_token end
      return "stale-token-0123456789abcdef"
    end }
    return { a = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } })), calls = calls }
  ]],
  check = function(r, ctx)
    assert.equal(2, ok_of(r.a).attempts)
    local forced = 0
    for _, f in ipairs(r.calls) do if f then forced = forced + 1 end end
    assert.equal(1, forced)
    assert.is_true(r.calls[#r.calls])
    local got = logged(ctx, API)
    assert.equal(2, #got)
    assert.equal("Bearer stale-token-0123456789abcdef", got[1].headers.authorization)
    assert.equal("Bearer " .. ctx.emu.access_token, got[2].headers.authorization)
  end,
}

case {
  id = "auth.refresh_then_401",
  title = "a provider whose fresh token is refused too: the 401 error after two attempts, one refresh",
  call = [[
    local calls = {}
    local c = new_client { token = function(force)
      calls[#calls + 1] = force
      return force and "fresh-but-bad-token-0123456789" or "stale-token-0123456789abcdef"
    end }
    local string_token = outcome(new_client { token = "plain-bad-token-0123456789" }
      :get("profileAndServices/profile"))
    return { a = outcome(c:get("profileAndServices/profile")), calls = calls, s = string_token }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal("http", err.kind)
    assert.equal(401, err.status)
    assert.equal("401013", err.code)
    assert.equal(2, err.attempts)
    local forced = 0
    for _, f in ipairs(r.calls) do if f then forced = forced + 1 end end
    assert.equal(1, forced)
    -- a string token's 401 is returned as is: one attempt
    local s = err_of(r.s)
    assert.equal(401, s.status)
    assert.equal(1, s.attempts)
    assert.equal(3, #logged(ctx, API))
  end,
}

case {
  id = "auth.provider_fails",
  title = "a failing provider: kind auth, 'token provider failed: ...', attempts 0, nothing sent",
  call = [[
    local c = new_client { token = function() return nil, "the vault is closed" end }
    return { a = outcome(c:get("profileAndServices/profile")) }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal(0, #logged(ctx))
    local d = differences()
    d.equal("auth", err.kind, "kind")
    d.equal("token provider failed: the vault is closed", err.message, "message")
    d.equal(0, err.attempts, "attempts")
    d.equal("GET", err.method, "method")
    d.equal(ctx.emu.base_url .. API_URI, err.url, "url")
    d.equal(API, err.path, "path")
    d.equal("campaign: GET " .. API .. " -> auth: token provider failed: the vault is closed", err.text,
      "tostring")
    d.done()
  end,
}

-- Timeouts and transport failures ------------------------------------------------------------

case {
  id = "timeout.read",
  title = "timeout: kind timeout, sent = true; a GET is retried, a POST is not",
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", delay_ms = 1200, times = 1 },
      { method = "POST", path = "/profileAndServices/profile$", delay_ms = 1200, status = 503, times = 1 },
    }
  end,
  settle = 1.2,
  call = [[
    local c = new_client { timeout = 0.4, retries = 2 }
    local t0 = campaign.gettime()
    local get = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    local post = outcome(c:post("profileAndServices/profile", { email = "slow@example.com" }))
    return { get = get, post = post, elapsed = campaign.gettime() - t0 }
  ]],
  check = function(r)
    assert.equal(2, ok_of(r.get, "GET after a timeout").attempts)
    local post = err_of(r.post, "POST")
    assert.equal("timeout", post.kind)
    assert.is_true(post.sent)
    assert.equal(1, post.attempts)
    assert.equal("POST", post.method)
    assert.matches("^campaign: POST profileAndServices/profile %-> timeout: ", post.text)
    assert(r.elapsed < 4, "the timeouts took " .. r.elapsed .. " s")
  end,
}

case {
  id = "timeout.connect",
  title = "connect_timeout: kind timeout, sent = false, so even a POST is retried",
  params = function(ctx) return { url = ctx.blackhole_url } end,
  call = [[
    local c = new_client { base_url = params.url, connect_timeout = 0.3, timeout = 2, retries = 1 }
    local t0 = campaign.gettime()
    local post = outcome(c:post("profileAndServices/profile", { email = "x@example.com" }))
    return { post = post, elapsed = campaign.gettime() - t0 }
  ]],
  check = function(r)
    local err = err_of(r.post)
    assert.equal("timeout", err.kind)
    assert.is_false(err.sent)
    assert.equal(2, err.attempts)
    assert(r.elapsed < 1.8, "two connect timeouts of 0.3 s took " .. r.elapsed .. " s")
  end,
}

case {
  id = "network.refused",
  title = "a refused connection: kind network, sent = false, a POST retried",
  params = function(ctx) return { url = ctx.closed_url } end,
  call = [[
    local c = new_client { base_url = params.url, retries = 2 }
    return { post = outcome(c:post("profileAndServices/profile", { email = "x@example.com" })) }
  ]],
  check = function(r, ctx)
    local err = err_of(r.post)
    assert.equal("network", err.kind)
    assert.is_false(err.sent)
    assert.equal(3, err.attempts)
    assert.equal(ctx.closed_url .. API_URI, err.url)
    assert.equal("POST", err.method)
    assert.matches("^campaign: POST " .. API .. " %-> network: .", err.text)
  end,
}

case {
  id = "network.dropped",
  title = "a dropped connection: kind network, sent = true; GET retried, POST not",
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", drop = true, times = 1 },
      { method = "POST", path = "/profileAndServices/profile$", drop = true, times = 1 },
    }
  end,
  call = [[
    local events, on_event = collector()
    local c = new_client { retries = 2, on_event = on_event }
    return { get = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } })),
      post = outcome(c:post("profileAndServices/profile", { email = "drop@example.com" })),
      events = events }
  ]],
  check = function(r, ctx)
    assert.equal(2, ok_of(r.get).attempts)
    local err = err_of(r.post)
    assert.equal("network", err.kind)
    assert.is_true(err.sent)
    assert.equal(1, err.attempts)
    assert.equal(1, #logged(ctx, API, "POST"))
    -- events (docs/client.md "Events"): `error` with kind and message for each failed transfer,
    -- `retry` with the wait and the failure's kind/message
    local errors, retries = of_type(r.events, "error"), of_type(r.events, "retry")
    local d = differences()
    d.equal(2, #errors, "error events (the GET's and the POST's)")
    d.equal(1, #retries, "retry events")
    if errors[1] then
      d.equal("GET", errors[1].method, "error event method")
      d.equal(1, errors[1].attempt, "error event attempt")
      d.equal("network", errors[1].kind, "error event kind")
      d.equal("string", type(errors[1].message), "error event message")
      d.equal("number", type(errors[1].elapsed), "error event elapsed")
    end
    if retries[1] then
      d.equal("network", retries[1].kind, "retry event kind")
      d.equal("string", type(retries[1].message), "retry event message")
      d.equal("number", type(retries[1].wait), "retry event wait")
    end
    d.done()
  end,
}

case {
  id = "batch.rules",
  title = "batch: the same retry rules per method, 500 not retried, one refresh for a 401, in order",
  needs_pkey = true,
  params = function(ctx) return { pkey = ctx.pkey } end,
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/service$", status = 503, times = 1 },
      { method = "POST", path = "/profileAndServices/profile$", status = 503, times = 1 },
    }
  end,
  call = [[
    local c = new_client { retries = 2 }
    local path = "profileAndServices/profile/" .. params.pkey
    local rules = c:batch({
      { "GET", "profileAndServices/service", nil, { query = { _lineCount = 1 } } },
      { "POST", "profileAndServices/profile", { email = "batch@example.com" } },
      { "PATCH", path, { age = 3 } },
      { "GET", path },
    }, { concurrency = 2 })
    -- a provider that caches what it refreshed, as campaign.auth.ims does
    local current, forced = "stale-token-0123456789abcdef", 0
    local p = new_client { token = function(force)
      if force then forced = forced + 1; current = params.emu.access_token end
      return current
    end }
    local auth = p:batch({ { "GET", path }, { "GET", path }, { "GET", path } }, { concurrency = 1 })
    return { rules = rules, auth = auth, forced = forced }
  ]],
  check = function(r)
    local rules = r.rules
    assert.equal(4, #rules)
    assert.equal(200, rules[1].status)
    assert.equal(2, rules[1].attempts)
    assert.is_table(rules[1].body)
    assert.equal(503, rules[2].err.status)
    assert.equal(1, rules[2].err.attempts)
    assert.equal(1, rules[2].attempts)
    assert.equal(500, rules[3].err.status)
    assert.equal("RST-360011", rules[3].err.codes[1])
    assert.equal(1, rules[3].attempts)
    assert.equal(200, rules[4].status)
    assert.is_string(rules[4].body.PKey)
    assert.equal(1, r.forced)
    for i = 1, 3 do assert.equal(200, r.auth[i].status, "auth item " .. i) end
  end,
}

-- Error objects ------------------------------------------------------------------------------

case {
  id = "error.404",
  title = "an HTTP error: kind, status, message, method, url, path, attempts, headers, one-line tostring",
  call = [[
    local c = new_client()
    return { a = outcome(c:get("profileAndServices/cusNothing", { query = { _lineCount = 1 } })) }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("GET", err.method)
    assert.equal(ctx.emu.base_url .. "/acme/campaign/profileAndServices/cusNothing?_lineCount=1", err.url)
    assert.equal("profileAndServices/cusNothing", err.path)
    assert.equal(1, err.attempts)
    assert.is_string(err.message)
    assert.is_table(err.headers)
    assert.is_table(err.codes)
    assert.is_table(err.body)
    assert.equal("campaign: GET profileAndServices/cusNothing -> 404 Not Found: "
      .. err.message:gsub("%s*\n%s*", " / "), err.text)
  end,
}

case {
  id = "error.validation",
  title = "a 500 validation error: engine code, RST/XTK codes in order, every line in tostring",
  needs_pkey = true,
  params = function(ctx) return { pkey = ctx.pkey } end,
  call = [[
    local c = new_client { retries = 3 }
    return { a = outcome(c:patch("profileAndServices/profile/" .. params.pkey, { age = 3 })) }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert.equal(500, err.code)
    assert.equal(1, err.attempts)
    assert.equal("RST-360011", err.codes[1])
    assert.matches("read%-only", err.message)
    assert.equal("PATCH", err.method)
    assert.equal(API .. "/" .. ctx.pkey, err.path)
    assert.matches("^campaign: PATCH " .. (API .. "/" .. ctx.pkey):gsub("%p", "%%%0")
      .. " %-> 500 Internal Server Error: RST%-360011 ", err.text)
    assert.is_nil(err.text:find("\n", 1, true))
  end,
}

case {
  id = "error.bodies",
  title = "an HTML 502 page, a request id, a JSON string body, invalid JSON in a 200",
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", html = true, times = 1 },
      { method = "GET", path = "/profileAndServices/profile$", status = 404,
        headers = { ["X-Request-Id"] = "req-contract-1" }, times = 1 },
      { method = "GET", path = "/profileAndServices/profile$", invalid = true, times = 1 },
    }
  end,
  call = [[
    local c = new_client { retries = 0 }
    return { html = outcome(c:get("profileAndServices/profile")),
      id = outcome(c:get("profileAndServices/profile")),
      json = outcome(c:get("profileAndServices/profile")) }
  ]],
  check = function(r)
    local html = err_of(r.html, "html")
    assert.equal(502, html.status)
    assert.equal("502 Bad Gateway", html.message)
    assert.is_string(html.body)
    assert.equal("campaign: GET " .. API .. " -> 502 Bad Gateway: 502 Bad Gateway", html.text)
    assert.equal("req-contract-1", err_of(r.id, "request id").request_id)
    local json = err_of(r.json, "invalid JSON")
    assert.equal("json", json.kind)
    assert.equal(200, json.status)
    assert.is_number(json.offset)
    assert.equal(1, json.attempts)
  end,
}

case {
  id = "error.too_large",
  title = "a body over max_body: kind too_large with max_body, not retried",
  call = [[
    local c = new_client { max_body = 200, retries = 2 }
    return { a = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 5 } })) }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal("too_large", err.kind)
    assert.equal(200, err.max_body)
    assert.equal(1, err.attempts)
    assert.equal("GET", err.method)
    assert.equal(1, #logged(ctx, API))
  end,
}

-- Secrets --------------------------------------------------------------------------------------

case {
  id = "secrets.echoed",
  title = "a server echoing the token and the API key: neither in the error, its tostring, or events",
  setup = function(ctx)
    local echo = "gateway saw: Authorization: Bearer " .. ctx.emu.access_token .. " X-Api-Key: "
      .. ctx.emu.api_key
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", status = 502, body = echo, times = 1 },
      { method = "GET", path = "/profileAndServices/profile$", status = 400,
        body = { error_code = ctx.emu.api_key, message = echo }, times = 1 },
      { method = "GET", path = "/profileAndServices/profile$", html = true, status = 502,
        body = "<html><head><title>" .. echo .. "</title></head></html>", times = 1 },
    }
  end,
  call = [[
    local events, on_event = collector()
    local c = new_client { retries = 0, on_event = on_event }
    return { text = outcome(c:get("profileAndServices/profile")),
      json = outcome(c:get("profileAndServices/profile")),
      html = outcome(c:get("profileAndServices/profile")), events = events }
  ]],
  check = function(r, ctx)
    local secrets = { token = ctx.emu.access_token, ["API key"] = ctx.emu.api_key }
    for _, k in ipairs { "text", "json", "html" } do
      local err = err_of(r[k], k)
      assert_no_secret({ err.message, err.text, err.code, err.request_id,
        type(err.body) == "string" and err.body or nil }, secrets, k .. " error")
      assert.matches("<redacted>", err.message)
    end
    assert_no_secret(r.events, secrets, "events")
    assert.is_true(#r.events >= 3)
  end,
}

case {
  id = "secrets.requests",
  title = "no secret in events, errors or tostring across a 401 refresh, a timeout and a 503 retry",
  setup = function(ctx)
    ctx.emu:faults {
      { method = "GET", path = "/profileAndServices/profile$", status = 503, times = 1 },
      { method = "GET", path = "/profileAndServices/profile$", delay_ms = 800, times = 1 },
    }
  end,
  settle = 0.8,
  call = [[
    local events, on_event = collector()
    local c = new_client { on_event = on_event, timeout = 0.3, retries = 1, token = function(force)
      return force and params.emu.access_token or "stale-secret-token-0123456789"
    end }
    local a = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    local b = outcome(c:get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    return { a = a, b = b, events = events, client = tostring(c) }
  ]],
  check = function(r, ctx)
    local secrets = { token = ctx.emu.access_token, ["stale token"] = "stale-secret-token-0123456789",
      ["API key"] = ctx.emu.api_key }
    assert_no_secret(r.events, secrets, "events")
    assert_no_secret(r.a, secrets, "first call")
    assert_no_secret(r.b, secrets, "second call")
    assert_no_secret(r.client, secrets, "tostring(client)")
    assert.is_true(#r.events >= 4)
  end,
}

case {
  id = "secrets.client_secret",
  title = "an IMS answer echoing the client secret: not in the auth error or its tostring",
  setup = function(ctx)
    ctx.emu:faults { path = "^/ims/", status = 400, times = 1,
      body = { error = "invalid_client", error_description = "bad client_secret " .. ctx.emu.client_secret } }
  end,
  call = [[
    local auth = require "campaign.auth"
    local e = params.emu
    local provider = auth.ims { client_id = e.client_id, client_secret = e.client_secret,
      scopes = { "openid" }, ims_url = e.ims_url,
      http = new_client { org = "ims", api_key = e.client_id, token = "unused-ims-token", retries = 0 } }
    local events, on_event = collector()
    local c = new_client { token = provider, on_event = on_event }
    return { a = outcome(c:get("profileAndServices/profile")), events = events }
  ]],
  check = function(r, ctx)
    local err = err_of(r.a)
    assert.equal("auth", err.kind)
    assert_no_secret({ err, r.events }, { ["client secret"] = ctx.emu.client_secret }, "auth error")
    -- a provider's own error object is returned with the call's method, url, path and attempts
    -- set on it (docs/client.md "Tokens")
    local d = differences()
    d.equal(0, err.attempts, "attempts")
    d.equal("GET", err.method, "method")
    d.equal(ctx.emu.base_url .. API_URI, err.url, "url")
    d.equal(API, err.path, "path")
    d.equal(true, err.text:find("campaign: GET " .. API .. " -> auth: ", 1, true) == 1,
      "tostring names the call")
    d.done()
  end,
}

M.cases = cases

-- ------------------------------------------------------------------ running a case

--- M.emu_params(emu) -> the emulator's fields the calls need (plain strings)
function M.emu_params(emu)
  return { base_url = emu.base_url, ims_url = emu.ims_url, org = emu.org, api_key = emu.api_key,
    access_token = emu.access_token, client_id = emu.client_id, client_secret = emu.client_secret }
end

--- M.blackhole() -> url, close: a loopback listener whose accept queue is full, so a connect
-- to it hangs until the client's connect timeout (the SYN is dropped), with nothing sent.
function M.blackhole()
  local socket = require "socket"
  local server = assert(socket.tcp())
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(0))
  local _, port = server:getsockname()
  local fillers = {}
  for i = 1, 4 do
    local c = socket.tcp()
    c:settimeout(0)
    c:connect("127.0.0.1", port)
    fillers[i] = c
  end
  socket.sleep(0.05)
  return "http://127.0.0.1:" .. port, function()
    for _, c in ipairs(fillers) do c:close() end
    server:close()
  end
end

--- M.closed_url() -> an http URL on a loopback port nothing listens on
function M.closed_url()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return "http://127.0.0.1:" .. port
end

--- M.run(c, env): fresh emulator, the case's setup, env.run(code, params), the check.
-- env = {emu =, run = function(code, params) -> result, blackhole_url =, closed_url =}
function M.run(c, env)
  local emu = env.emu
  emu:fresh()
  local ctx = { emu = emu, blackhole_url = env.blackhole_url, closed_url = env.closed_url }
  if c.needs_pkey then ctx.pkey = emu:profiles()[1].PKey end
  if c.setup then c.setup(ctx) end
  emu:clear_requests()
  local params = c.params and c.params(ctx) or {}
  params.emu = M.emu_params(emu)
  local ok, result = pcall(env.run, M.prelude .. c.call, params)
  -- a delayed answer the client gave up on still reaches the emulator: let it land before
  -- the next case resets the log
  if c.settle then require("socket").sleep(c.settle) end
  if not ok then error(result, 0) end
  c.check(result, ctx)
end

return M
