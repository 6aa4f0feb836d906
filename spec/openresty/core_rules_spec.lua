-- campaign.ngx on the C core (campaign._core, src/core.c): where the former Lua copy of the
-- request contract differed from the C client, the C client's behaviour is campaign.ngx's now
-- (docs/openresty.md "One core, so one set of rules"). A scripted transport stands in for the
-- API: no emulator.
local harness = require "openresty.harness"

describe("campaign.ngx on the C core", function()
  local srv

  setup(function()
    srv = harness.start { workers = 1 }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  local PARAMS = { emu = { org = "acme", api_key = "key-0123456789abcdef", access_token = "t",
    base_url = "http://127.0.0.1:9" } }

  it("validates the options with campaign.new's rules", function()
    local r = srv:eval([[
      local function msg(extra)
        local ok, err = pcall(client, extra)
        return ok and "accepted" or tostring(err)
      end
      return { timeout = msg { timeout = 0 }, retries = msg { retries = 1000 },
        max_body = msg { max_body = 0 }, on_event = msg { on_event = "x" } }
    ]], PARAMS)
    assert.matches("campaign.ngx.new: option 'timeout' must be a positive number", r.timeout)
    assert.matches("campaign.ngx.new: option 'retries' must be a non%-negative integer %(at most 100%)",
      r.retries)
    assert.matches("campaign.ngx.new: option 'max_body' must be a positive integer", r.max_body)
    assert.matches("campaign.ngx.new: option 'on_event' must be a function", r.on_event)
  end)

  it("locates a token provider's failure, with status 401 when it failed after a 401", function()
    local r = srv:eval([[
      local calls = 0
      local function provider()
        calls = calls + 1
        if calls == 1 then return "first-token-0123456789" end
        return nil, "IMS is down"
      end
      local events = {}
      local c = client { token = provider, transport = function() return { status = 401, headers = {},
        body = "" } end, on_event = function(ev) events[#events + 1] = ev.type end }
      local body, err = c:get("profileAndServices/profile")
      local failing = client { token = function() error("no IMS") end }
      local _, first = failing:get("profileAndServices/profile")
      return { body = body, kind = err.kind, status = err.status, path = err.path,
        attempts = err.attempts, events = table.concat(events, ","), first_path = first.path,
        first_attempts = first.attempts, first_message = first.message }
    ]], PARAMS)
    assert.is_nil(r.body)
    assert.equal("auth", r.kind)
    assert.equal(401, r.status)
    assert.equal("profileAndServices/profile", r.path)
    assert.equal(1, r.attempts)
    -- the resend after a 401 is not a retry: no retry event (the C client's events)
    assert.equal("request,response", r.events)
    assert.equal("profileAndServices/profile", r.first_path)
    assert.equal(0, r.first_attempts)
    assert.matches("token provider failed: .*no IMS", r.first_message)
  end)

  it("makes a too large body handed back by a transport an error event, kind too_large", function()
    local r = srv:eval([[
      local events = {}
      local c = client { max_body = 10, transport = function()
        return { status = 200, headers = {}, body = string.rep("x", 11) } end,
        on_event = function(ev) events[#events + 1] = ev.type .. ":" .. tostring(ev.kind) end }
      local _, err = c:get("x")
      return { kind = err.kind, max_body = err.max_body, message = err.message,
        events = table.concat(events, ",") }
    ]], PARAMS)
    assert.equal("too_large", r.kind)
    assert.equal(10, r.max_body)
    assert.equal("the response body is larger than max_body", r.message)
    assert.equal("request:nil,error:too_large", r.events)
  end)
end)
