-- Tokens: a provider function(force_refresh) is asked before a call (unless the expires_in it
-- gave has not run out) and once more after a 401; its failures are kind "auth" with no secret
-- in them.
local campaign = require "campaign"
local h = require "integration.client_helper"

describe("token provider", function()
  local emu
  before_each(function() emu = h.fresh() end)

  it("is called with false before the first attempt and its token is sent", function()
    local calls = {}
    local c = h.client(emu, {token = function(force)
      calls[#calls + 1] = force
      return emu.access_token
    end})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.same({false, false}, calls) -- no expires_in: asked before every call
    assert.equal("Bearer " .. emu.access_token,
                 h.logged(emu, "/profileAndServices/profile")[1].headers.authorization)
  end)

  it("keeps a token for the expires_in the provider gave, then asks again", function()
    local calls = 0
    local c = h.client(emu, {token = function()
      calls = calls + 1
      return emu.access_token, "0.3" -- a numeric string counts too
    end})
    for _ = 1, 3 do assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}})) end
    local results = c:batch({{"GET", "profileAndServices/profile"}, {"GET", "profileAndServices/profile"}})
    assert.equal(200, results[2].status)
    assert.equal(1, calls)
    campaign.sleep(0.35)
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(2, calls)
    c:close()
  end)

  it("a kept token refused with 401 is refreshed at once, before its expires_in runs out", function()
    local old = emu:new_token()
    local calls = {}
    local c = h.client(emu, {token = function(force)
      calls[#calls + 1] = force
      if force then return emu:new_token(), 3600 end
      return old, 3600
    end})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    emu:expire_tokens()
    local body, res = c:get("profileAndServices/profile", {query = {_lineCount = 1}})
    assert.is_table(body)
    assert.equal(2, res.attempts)
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.same({false, true}, calls)
  end)

  it("reads an expires_in above 10^7 as the legacy exchange's milliseconds", function()
    -- 5e12 ms is 5e9 s, kept; read as seconds it would be past the 1e12 s sanity bound and
    -- the provider would be asked before every call
    local calls = 0
    local c = h.client(emu, {token = function() calls = calls + 1 return emu.access_token, 5e12 end})
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    c:close()
    assert.equal(1, calls)
  end)

  it("a provider with expires_in = 0, negative or not a number is asked before every call", function()
    for _, expires_in in ipairs({0, -5, "soon", true}) do
      local calls = 0
      local c = h.client(emu, {token = function() calls = calls + 1 return emu.access_token, expires_in end})
      assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
      assert(c:get("profileAndServices/profile", {query = {_lineCount = 1}}))
      c:close()
      assert.equal(2, calls)
    end
  end)

  it("on 401 is called with true and the request is sent once more with the new token", function()
    local old = emu:new_token()
    local fresh
    local calls = {}
    local c = h.client(emu, {token = function(force)
      calls[#calls + 1] = force
      if force then fresh = emu:new_token() return fresh end
      return old
    end})
    emu:expire_tokens()
    local body, res = c:get("profileAndServices/profile", {query = {_lineCount = 1}})
    c:close()
    assert.is_table(body)
    assert.equal(2, res.attempts)
    assert.same({false, true}, calls)
    local logged = h.logged(emu, "/profileAndServices/profile")
    assert.equal("Bearer " .. old, logged[1].headers.authorization)
    assert.equal("Bearer " .. fresh, logged[2].headers.authorization)
  end)

  it("refreshes only once per call: a second 401 is returned", function()
    local calls = 0
    local c = h.client(emu, {token = function() calls = calls + 1 return "always-expired" end})
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(401, err.status)
    assert.equal(2, err.attempts)
    assert.equal(2, calls)
  end)

  it("with a string token, a 401 is returned as is", function()
    local token = emu:new_token()
    local c = h.client(emu, {token = token})
    emu:expire_tokens()
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal(401, err.status)
    assert.equal("401013", err.code)
    assert.equal(1, err.attempts)
  end)

  it("a provider that raises: kind auth with its message, nothing sent", function()
    local c = h.client(emu, {token = function() error("IMS unreachable", 0) end})
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("auth", err.kind)
    assert.equal("token provider failed: IMS unreachable", err.message)
    assert.equal(0, err.attempts)
    assert.equal("GET", err.method)
    assert.equal(0, #h.logged(emu, "/profileAndServices/profile"))
  end)

  it("a provider returning nil, message: kind auth", function()
    local c = h.client(emu, {token = function() return nil, "invalid_client" end})
    local _, err = c:patch("profileAndServices/profile/@x", {a = 1})
    c:close()
    assert.equal("auth", err.kind)
    assert.equal("token provider failed: invalid_client", err.message)
    assert.matches("^campaign: PATCH profileAndServices/profile/@x %-> auth: ", tostring(err))
  end)

  it("a provider returning nil, err object: that object is returned", function()
    local own = campaign.error{kind = "auth", message = "IMS said 400 invalid_scope", status = 400}
    local c = h.client(emu, {token = function() return nil, own end})
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal(own, err)
  end)

  it("a provider raising an error object: that object is returned", function()
    local own = campaign.error{kind = "auth", message = "boom"}
    local c = h.client(emu, {token = function() error(own) end})
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal(own, err)
  end)

  it("a provider returning something that is not a token: kind auth, token not shown", function()
    for _, bad in ipairs{"", "with space", "line\nbreak"} do
      local c = h.client(emu, {token = function() return bad end})
      local _, err = c:get("profileAndServices/profile")
      c:close()
      assert.equal("auth", err.kind)
      assert.matches("invalid token", err.message)
    end
    local c = h.client(emu, {token = function() return 42 end})
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal("auth", err.kind)
  end)

  it("a failing refresh after a 401 is kind auth", function()
    local c = h.client(emu, {token = function(force)
      if force then return nil, "refresh failed" end
      return "expired-token"
    end})
    local _, err = c:get("profileAndServices/profile")
    c:close()
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal(1, err.attempts)
    assert.equal("token provider failed: refresh failed", err.message)
  end)
end)
