-- The CLI's redactor hides a secret cut short (a 16+ character start of it) as well as a whole
-- one; --allow-http / CAMPAIGN_ALLOW_HTTP=1 resolve into settings.allow_http (docs/cli.md).
local config = require "campaign.cli.config"
local output = require "campaign.cli.output"
local cli = require "campaign.cli"

describe("cli.output.redactor and cut secrets", function()
  local token = ("0123456789abcdefghij"):rep(60) -- 1,200 characters

  it("hides a 16+ character start of a secret wherever it is: end of text, line, quote", function()
    local redact = output.redactor({token})
    assert.equal("message: ***", redact("message: " .. token:sub(1, 1020)))
    assert.equal("a ***\nb", redact("a " .. token:sub(1, 16) .. "\nb"))
    assert.equal('{"message":"***"}', redact('{"message":"' .. token:sub(1, 500) .. '"}'))
    assert.equal("*** and ***", redact(token .. " and " .. token:sub(1, 40)))
  end)

  it("leaves 15 characters of a secret's start alone (ordinary text may hold them)", function()
    local redact = output.redactor({token})
    assert.equal("x " .. token:sub(1, 15), redact("x " .. token:sub(1, 15)))
  end)

  it("no 16-character piece of a 1,203-character token survives a message cut at 1,024 bytes", function()
    local long = ("Zy9-xW8_vU7.tS6"):rep(81):sub(1, 1203)
    local redact = output.redactor({long})
    local cut = ("Bad gateway: Bearer " .. long):sub(1, 1024)
    local text = redact(cut)
    for i = 1, #long - 15 do
      assert.is_nil(text:find(long:sub(i, i + 15), 1, true), "piece at " .. i)
    end
  end)
end)

describe("--allow-http and CAMPAIGN_ALLOW_HTTP", function()
  local function env(values) return function(name) return values[name] end end
  local BASE = {CAMPAIGN_ORG = "o", CAMPAIGN_API_KEY = "k", CAMPAIGN_ACCESS_TOKEN = "t"}
  local function with(extra)
    local values = {}
    for k, v in pairs(BASE) do values[k] = v end
    for k, v in pairs(extra) do values[k] = v end
    return env(values)
  end

  it("resolve into settings.allow_http (off by default)", function()
    assert.is_false(assert(config.resolve({}, with{})).allow_http)
    assert.is_true(assert(config.resolve({allow_http = true}, with{})).allow_http)
    assert.is_true(assert(config.resolve({}, with{CAMPAIGN_ALLOW_HTTP = "1"})).allow_http)
    assert.is_true(assert(config.resolve({}, with{CAMPAIGN_ALLOW_HTTP = "true"})).allow_http)
    assert.is_false(assert(config.resolve({}, with{CAMPAIGN_ALLOW_HTTP = "0"})).allow_http)
  end)

  it("is a global flag every command accepts", function()
    local out, err = {}, {}
    local code = cli.main({"--allow-http", "help"}, {
      getenv = with{}, isatty = function() return false end,
      stdout = {write = function(_, s) out[#out + 1] = s end, flush = function() end},
      stderr = {write = function(_, s) err[#err + 1] = s end, flush = function() end},
    })
    assert.equal(0, code, table.concat(err))
    assert.matches("--allow-http", table.concat(out), 1, true)
  end)
end)

describe("--allow-http reaches the client", function()
  local function run(argv)
    local out, err = {}, {}
    local code = cli.main(argv, {
      getenv = function(name)
        return ({CAMPAIGN_ORG = "o", CAMPAIGN_API_KEY = "k", CAMPAIGN_ACCESS_TOKEN = "t",
          CAMPAIGN_BASE_URL = "http://campaign-allow-http.invalid"})[name]
      end,
      isatty = function() return false end,
      stdout = {write = function(_, s) out[#out + 1] = s end, flush = function() end},
      stderr = {write = function(_, s) err[#err + 1] = s end, flush = function() end},
    })
    return code, table.concat(out), table.concat(err)
  end

  it("refuses a plain-http base URL to another host without it (usage, nothing sent)", function()
    local code, _, err = run({"profile", "get", "@abc"})
    assert.equal(cli.EXIT.usage, code)
    assert.matches("allow_http", err, 1, true)
  end)

  it("lets the request go with it (here: an unknown host, a network failure)", function()
    local code, _, err = run({"--allow-http", "--retries", "0", "profile", "get", "@abc"})
    assert.equal(cli.EXIT.api, code, err)
    assert.not_matches("allow_http", err, 1, true)
  end)
end)
