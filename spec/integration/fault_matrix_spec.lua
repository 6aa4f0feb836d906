-- The fault matrix (issue 7): for each way a request can go wrong, what the caller gets back
-- (err.kind, attempts) and what reached the server. Retries are made fast (retry_base 10 ms)
-- except where the wait itself is the behaviour (Retry-After), which gets generous bounds.
local campaign = require "campaign"
local emulator = require "emulator"

local function merge(a, b)
  local out = {}
  for k, v in pairs(a) do out[k] = v end
  for k, v in pairs(b or {}) do out[k] = v end
  return out
end

local FAST = { retries = 2, retry_base = 0.01, retry_max = 0.05, timeout = 5, connect_timeout = 2 }
-- A TLS handshake under valgrind on a loaded machine can take seconds: a connect timeout there
-- would be retried and hide the one-attempt TLS refusal these rows assert.
local TLS_ROOMY = { timeout = 30, connect_timeout = 20 }

-- bench/static-server: plain nginx with a certificate of our choosing and any file served.
local function static_server(prefix, san)
  local cmd = "bench/static-server start --prefix '" .. prefix .. "'"
  if san then cmd = cmd .. " --san '" .. san .. "'" end
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  p:close()
  local info = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do info[k] = v end
  if not info.base_url then   -- a failed start must not leave its prefix behind
    os.execute("bench/static-server stop --prefix '" .. prefix .. "' >/dev/null 2>&1; rm -rf '"
      .. prefix .. "'")
    error("bench/static-server did not start: " .. out, 2)
  end
  info.stop = function()
    os.execute("bench/static-server stop --prefix '" .. prefix .. "' >/dev/null 2>&1; rm -rf '"
      .. prefix .. "'")
  end
  return info
end

local function tmpdir()
  local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/campaign-faults.XXXXXX\"")
  local dir = p:read("*l")
  p:close()
  return dir
end

describe("fault matrix", function()
  local emu, pkey, path, on_profile

  -- Requests for our profile that reached the emulator, by method.
  local function reached(method)
    local n = 0
    for _, r in ipairs(emu:requests()) do
      if r.method == method and r.uri:find(pkey, 1, true) then n = n + 1 end
    end
    return n
  end

  local function client(extra)
    return campaign.new(emu:client_options(merge(FAST, extra)))
  end

  setup(function()
    emu = emulator.shared()
  end)

  before_each(function()
    emu:clear_faults()
    emu:reset()
    local list = assert(client():get("profileAndServices/profile", { query = { _lineCount = 1 } }))
    pkey = list.content[1].PKey
    path = "profileAndServices/profile/" .. pkey
    on_profile = pkey:gsub("%p", "%%%0") -- faults match a Lua pattern; a PKey holds '-'
    emu:clear_requests()
  end)

  after_each(function()
    -- reset also makes the launch token valid again (two rows expire every token), so the
    -- spec files after this one find the shared emulator as they expect it
    emu:reset()
  end)

  it("connection refused: kind network, every attempt made, nothing reached a server", function()
    local c = campaign.new(merge(FAST, { org = "acme", api_key = "k", token = "t",
      base_url = "http://127.0.0.1:1" }))
    local body, err = c:get("profileAndServices/profile/@x")
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal(3, err.attempts)
    assert.is_nil(err.status)
  end)

  it("unknown host (.invalid): kind network, retried, the secret not in the message", function()
    local c = campaign.new(merge(FAST, { org = "acme", api_key = "k", token = "secret-token-123",
      -- plain http to a host that is not loopback needs allow_http (docs/client.md)
      base_url = "http://campaign-fault-matrix.invalid", allow_http = true }))
    local body, err = c:get("profileAndServices/profile/@x")
    assert.is_nil(body)
    -- a resolver that does not answer in connect_timeout gives "timeout" instead
    assert.is_true(err.kind == "network" or err.kind == "timeout", tostring(err))
    assert.equal(3, err.attempts)
    assert.is_nil(tostring(err):find("secret-token-123", 1, true))
  end)

  it("TLS name mismatch: kind tls, not retried", function()
    local server = static_server(tmpdir(), "DNS:not-this-host.example")
    finally(server.stop)
    local c = campaign.new(merge(merge(FAST, TLS_ROOMY), { org = "bench", api_key = "k", token = "t",
      base_url = server.tls_base_url, cafile = server.cafile }))
    local body, err = c:get("profileAndServices/profile/@bench")
    assert.is_nil(body)
    assert.equal("tls", err.kind)
    assert.equal(1, err.attempts)
  end)

  it("unknown CA: kind tls, not retried, no request reached the emulator", function()
    local tls = emulator.start { tls = true, profiles = 1 }
    finally(function() tls:stop() end)
    local opts = tls:client_options(merge(FAST, TLS_ROOMY))
    opts.cafile = nil -- the system store does not know the emulator's CA
    local body, err = campaign.new(opts):get("profileAndServices/profile")
    assert.is_nil(body)
    assert.equal("tls", err.kind)
    assert.equal(1, err.attempts)
    assert.equal(0, #tls:requests())
  end)

  it("slow headers past the timeout: kind timeout after every attempt, each one reached", function()
    emu:faults { { path = on_profile, delay_ms = 1500, times = 3 } }
    local started = os.time()
    local body, err = client({ timeout = 0.3 }):get(path)
    assert.is_nil(body)
    assert.equal("timeout", err.kind)
    assert.equal(3, err.attempts)
    assert.equal(3, reached("GET"))
    assert.is_true(os.time() - started < 5) -- three 0.3 s attempts, not three 1.5 s answers
  end)

  it("body cut mid-way: retried; a cut on every attempt fails with kind network", function()
    emu:faults { { path = on_profile, status = 200, body = string.rep("x", 4000), truncate = 100,
      times = 3 } }
    local body, err = client():get(path)
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal(3, err.attempts)
    assert.equal(3, reached("GET"))
  end)

  it("body cut once, then whole: the second attempt returns the profile", function()
    emu:faults { { path = on_profile, status = 200, body = string.rep("x", 4000), truncate = 100 } }
    local body, res = client():get(path)
    assert.is_table(body, tostring(res))
    assert.equal(pkey, body.PKey)
    assert.equal(2, res.attempts)
    assert.equal(2, reached("GET"))
  end)

  it("invalid JSON in a 200: kind json, not retried, the raw text kept", function()
    emu:faults { { path = on_profile, invalid = true } }
    local body, err = client():get(path)
    assert.is_nil(body)
    assert.equal("json", err.kind)
    assert.equal(1, err.attempts)
    assert.equal(1, reached("GET"))
  end)

  it("HTML 502 from a proxy: retried, then kind http 502 with a readable message", function()
    emu:faults { { path = on_profile, html = true, status = 502, times = 3 } }
    local body, err = client():get(path)
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(502, err.status)
    assert.equal(3, err.attempts)
    assert.equal(3, reached("GET"))
    assert.matches("502", tostring(err))
    assert.is_nil(tostring(err):find("<html>", 1, true))
  end)

  it("429 with Retry-After in seconds: waits that long, then succeeds", function()
    emu:faults { { path = on_profile, method = "PATCH", status = 429, headers = { ["Retry-After"] = "1" } } }
    local c = client({ retry_max = 10 })
    local body, res = c:patch(path, { firstName = "Waited" })
    assert.is_table(body, tostring(res))
    assert.equal(2, res.attempts)
    -- res.elapsed covers both attempts and the wait between them
    assert.is_true(res.elapsed >= 0.9 and res.elapsed < 8, "took " .. res.elapsed .. " s")
    assert.equal(2, reached("PATCH"))
    assert.equal("Waited", c:get(path).firstName)
  end)

  it("429 with Retry-After as an HTTP date: waits until then, then succeeds", function()
    local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
    emu:faults { { path = on_profile, method = "PATCH", status = 429, headers = { ["Retry-After"] = when } } }
    local body, res = client({ retry_max = 10 }):patch(path, { firstName = "Dated" })
    assert.is_table(body, tostring(res))
    assert.equal(2, res.attempts)
    -- the date has one-second resolution: it lies 1 to 2 s ahead when the 429 arrives
    assert.is_true(res.elapsed >= 0.9 and res.elapsed < 8, "took " .. res.elapsed .. " s")
    assert.equal(2, reached("PATCH"))
  end)

  it("503 three times: the fourth attempt succeeds with retries = 3, and the change is made once", function()
    emu:faults { { path = on_profile, method = "PATCH", status = 503, times = 3 } }
    local c = client({ retries = 3 })
    local body, res = c:patch(path, { lastName = "Fourth" })
    assert.is_table(body, tostring(res))
    assert.equal(4, res.attempts)
    assert.equal(4, reached("PATCH"))
    assert.equal("Fourth", c:get(path).lastName)
  end)

  it("503 three times with retries = 2: kind http 503 after three attempts, nothing changed", function()
    emu:faults { { path = on_profile, method = "PATCH", status = 503, times = 3 } }
    local c = client({ retries = 2 })
    local before = c:get(path).lastName
    local body, err = c:patch(path, { lastName = "Never" })
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.equal(3, reached("PATCH"))
    assert.equal(before, c:get(path).lastName)
  end)

  it("401 after token expiry: the provider is asked for a new token once, the call succeeds", function()
    local forced, current = 0, nil
    local provider = function(force) -- caches its token, like campaign.auth.ims
      if force then forced = forced + 1 end
      if force or not current then current = emu:new_token() end
      return current
    end
    local c = client({ token = provider })
    assert.is_table(c:get(path))
    emu:expire_tokens()
    emu:clear_requests()
    local body, res = c:get(path)
    assert.is_table(body, tostring(res))
    assert.equal(pkey, body.PKey)
    assert.equal(1, forced)
    assert.equal(2, reached("GET")) -- the refused one and the one with the new token
  end)

  it("401 after token expiry with a fixed token: kind http 401, no retry", function()
    local c = client({ token = emu:new_token() })
    assert.is_table(c:get(path))
    emu:expire_tokens()
    emu:clear_requests()
    local body, err = c:get(path)
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(401, err.status)
    assert.equal(1, err.attempts)
    assert.equal(1, reached("GET"))
  end)

  it("body over max_body: kind too_large, not retried", function()
    local body, err = client({ max_body = 200 }):get(path)
    assert.is_nil(body)
    assert.equal("too_large", err.kind)
    assert.equal(1, err.attempts)
    assert.equal(1, reached("GET"))
  end)

  describe("a 50 MB listing", function()
    local server, records

    setup(function()
      server = static_server(tmpdir())
      local f = assert(io.open("bench/fixtures/profile.json"))
      local profile = f:read("*a"):gsub("%s+$", "")
      f:close()
      local parts, size = {}, 0
      repeat
        parts[#parts + 1] = profile
        size = size + #profile + 1
      until size >= 50 * 1024 * 1024
      records = #parts
      local out = assert(io.open(server.www .. "/listing.json", "wb"))
      out:write('{"content":[', table.concat(parts, ","), '],"serverSidePagination":true}')
      out:close()
    end)

    teardown(function()
      if server then server.stop() end
    end)

    it("is read whole and decoded under the default max_body (64 MiB)", function()
      local c = campaign.new(merge(FAST, { org = "bench", api_key = "k", token = "t",
        base_url = server.base_url, timeout = 60 }))
      local body, res = c:get("files/listing.json")
      assert.is_table(body, tostring(res))
      assert.equal(records, #body.content)
      assert.equal(1, res.attempts)
      assert.equal(body.content[1].PKey, body.content[records].PKey)
    end)

    it("fails with kind too_large under a 10 MiB max_body, without retrying", function()
      local c = campaign.new(merge(FAST, { org = "bench", api_key = "k", token = "t",
        base_url = server.base_url, max_body = 10 * 1024 * 1024, timeout = 60 }))
      local body, err = c:get("files/listing.json")
      assert.is_nil(body)
      assert.equal("too_large", err.kind)
      assert.equal(1, err.attempts)
    end)
  end)
end)
