-- campaign._error_text: the rule every client applies to text it copies from a server's answer
-- into an error (docs/errors.md "Text from the server"), used by campaign.ngx and campaign.auth.
local campaign = require "campaign"

local FFFD = "\239\191\189"  -- decimal escapes throughout: Lua 5.1 has no \x

describe("campaign._error_text", function()
  local text = campaign._error_text

  it("keeps valid UTF-8 and replaces each stray byte by U+FFFD", function()
    assert.equal("donn\195\169es", text("donn\195\169es"))
    assert.equal("donn" .. FFFD .. "es", text("donn\233es"))
    -- overlong forms, surrogates, a lone continuation byte, a sequence cut short
    assert.equal(FFFD .. FFFD .. "|" .. FFFD .. FFFD .. FFFD .. "|" .. FFFD .. "|" .. FFFD .. FFFD,
                 text("\192\175|\237\160\128|\128|\226\130"))
  end)

  it("cuts at max bytes on a character boundary", function()
    assert.equal(("a"):rep(1023), text(("a"):rep(1023) .. "é", 1024))
    assert.equal("x" .. ("é"):rep(511), text("x" .. ("é"):rep(700), 1024))
    assert.equal("ab", text("ab" .. FFFD, 4)) -- the 3-byte replacement does not fit either
  end)

  it("raw: keeps the bytes, only a cut inside a well-formed sequence backs off", function()
    assert.equal("donn\233es", text("donn\233es", 0, nil, true))
    assert.equal("x", text("x\195\169", 2, nil, true))
    assert.equal("\255\254", text("\255\254\253", 2, nil, true))
  end)

  it("redacts whole secrets, and a 16+ character start of one (a cut's leftover)", function()
    local token = ("0123456789abcdef"):rep(4) -- 64 characters
    local key = "the-api-key"
    local secrets = { key, token }
    assert.equal("k=<redacted> t=<redacted>!", text("k=" .. key .. " t=" .. token .. "!", 0, secrets))
    assert.equal("cut <redacted>", text("cut " .. token:sub(1, 16), 0, secrets))
    assert.equal("cut <redacted>x", text("cut " .. token:sub(1, 40) .. "x", 0, secrets))
    -- 15 characters are not a secret's start (ordinary text could hold them)
    assert.equal("cut " .. token:sub(1, 15), text("cut " .. token:sub(1, 15), 0, secrets))
    -- short secrets (under 8) are not searched for; non-strings are skipped
    assert.equal("a k b", text("a k b", 0, { "k", 42 }))
  end)

  it("redacts before it cuts: no start of a secret at the cut edge", function()
    local token = ("ABCDEFGHIJKLMNOPQRSTUVWXYZ"):rep(47) -- 1,222 characters
    local out = text("Bearer " .. token, 1024, { token })
    assert.equal("Bearer <redacted>", out)
  end)

  it("raises on misuse", function()
    assert.has_error(function() text(nil) end)
    assert.has_error(function() text("x", -1) end)
    assert.has_error(function() text("x", 0, "secret") end)
  end)
end)
