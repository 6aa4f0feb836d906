-- One IMS token for every nginx worker: campaign.auth.ims with
-- cache = campaign.ngx.shared_token_cache(dict) keeps the token in a lua_shared_dict, and its
-- lock makes one refresh happen at a time, so 20 requests arriving together after the token
-- expired (or was refused) cause one IMS call. Counted in the emulator's request log.
local emulator = require "emulator"
local harness = require "openresty.harness"

-- The handler: a provider per request (auth.ims keeps no state of its own here: the token is
-- in the shared dict), its IMS POST through campaign.ngx too, then one profile listing.
local HANDLER = [[
  local auth = require "campaign.auth"
  local e = params.emu
  local provider = auth.ims {
    client_id = e.client_id, client_secret = e.client_secret, ims_url = e.ims_url,
    http = cngx.new { base_url = e.ims_url:match("^(https?://[^/]+)"), org = "ims",
      api_key = e.client_id, token = "unused" },
    cache = cngx.shared_token_cache("campaign_tokens"),
  }
  local body, res = client { token = provider }:get("profileAndServices/profile",
    { query = { _lineCount = 1 } })
  if not body then return { ok = false, err = res } end
  return { ok = true, attempts = res.attempts, pid = ngx.worker.pid() }
]]

local function count(emu, method, pattern)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == method and r.uri:find(pattern) then n = n + 1 end
  end
  return n
end

local function all_ok(results)
  for i, r in ipairs(results) do
    assert(r.ok and r.result and r.result.ok, "request " .. i .. " failed: "
      .. harness.json.encode(r.result or r.error))
  end
end

describe("campaign.ngx.shared_token_cache", function()
  local srv

  setup(function()
    srv = harness.start { workers = 2 }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("raises when the lua_shared_dict does not exist, naming the directive to add", function()
    local r = srv:eval([[
      local ok, err = pcall(cngx.shared_token_cache, "no_such_dict")
      local ok2, err2 = pcall(cngx.shared_token_cache, "campaign_tokens", { lock_timeuot = 1 })
      return { ok = ok, err = tostring(err), ok2 = ok2, err2 = tostring(err2) }
    ]])
    assert.is_false(r.ok)
    assert.matches("lua_shared_dict no_such_dict", r.err)
    assert.is_false(r.ok2)
    assert.matches("unknown option 'lock_timeuot'", r.err2)
  end)

  it("20 requests arriving together after the token expired refresh it once", function()
    local emu = emulator.start { token_ttl = 2 }
    finally(function() emu:stop() end)
    local params = { emu = harness.emu_params(emu) }
    local first = srv:eval(HANDLER, params)
    assert.is_true(first.ok)
    assert.equal(1, count(emu, "POST", "/ims/token/v3"))
    os.execute("sleep 2.2") -- past expires_in: the shared token is stale everywhere
    emu:clear_requests()
    -- a slow IMS: every request arrives while the one refresh is still running
    emu:faults { { method = "POST", path = "/ims/token/v3", delay_ms = 700, times = 20 } }
    local results = srv:eval_parallel(20, HANDLER, params)
    all_ok(results)
    assert.equal(1, count(emu, "POST", "/ims/token/v3"))
    assert.equal(20, count(emu, "GET", "/profile"))
  end)

  it("20 requests meeting the same 401 (token revoked) refresh it once and all succeed", function()
    local emu = emulator.start {}
    finally(function() emu:stop() end)
    local params = { emu = harness.emu_params(emu) }
    assert.is_true(srv:eval(HANDLER, params).ok)
    emu:expire_tokens() -- the shared token is still fresh for the workers, but refused
    emu:clear_requests()
    emu:faults { { method = "POST", path = "/ims/token/v3", delay_ms = 700, times = 20 } }
    local results = srv:eval_parallel(20, HANDLER, params)
    all_ok(results)
    assert.equal(1, count(emu, "POST", "/ims/token/v3"))
    -- those that met the 401 sent once more; later ones found the new token already shared
    local resent = 0
    for _, r in ipairs(results) do
      assert.is_true(r.result.attempts <= 2)
      if r.result.attempts == 2 then resent = resent + 1 end
    end
    assert.is_true(resent >= 1)
    assert.equal(20 + resent, count(emu, "GET", "/profile"))
  end)

  it("every worker uses the one token: no IMS call while it is fresh", function()
    local emu = emulator.start {}
    finally(function() emu:stop() end)
    local params = { emu = harness.emu_params(emu) }
    assert.is_true(srv:eval(HANDLER, params).ok)
    local results = srv:eval_parallel(20, HANDLER, params)
    all_ok(results)
    assert.equal(1, count(emu, "POST", "/ims/token/v3"))
  end)

  it("a refresh that fails is an auth error without the client secret, and releases the lock", function()
    local emu = emulator.start {}
    finally(function() emu:stop() end)
    local params = { emu = harness.emu_params(emu) }
    params.emu.client_secret = "wrong-secret-value"
    local r = srv:eval(HANDLER, params)
    assert.is_false(r.ok)
    assert.equal("auth", r.err.kind)
    assert.not_matches("wrong%-secret%-value", r.err.text)
    -- the lock is free again: the next request tries IMS at once instead of waiting 30 s
    local started = os.time()
    r = srv:eval(HANDLER, params)
    assert.is_false(r.ok)
    assert.is_true(os.time() - started < 10)
    assert.equal(2, count(emu, "POST", "/ims/token/v3"))
  end)
end)
