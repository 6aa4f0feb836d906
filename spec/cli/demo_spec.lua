-- `make demo`'s example against the shared emulator, line by line; and scripts/demo itself,
-- which must stop its emulator also when the example fails.
local emulator = require "emulator"

local emu = emulator.shared()

local sh = require("cli_process").quote

-- Runs `command` (a list of words) with a clean environment plus `env`; returns code, output
-- (stdout and stderr together, in order).
local function run(command, env)
  local words = {"env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp")}
  for key, value in pairs(env) do words[#words + 1] = key .. "=" .. value end
  for _, word in ipairs(command) do words[#words + 1] = word end
  for i, word in ipairs(words) do words[i] = sh(word) end
  local pipe = io.popen(table.concat(words, " ") .. " 2>&1 </dev/null")
  local output = pipe:read("a")
  local _, _, code = pipe:close()
  return code, output
end

local function emulator_env()
  return {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
end

local function escape(text)
  return (text:gsub("%p", "%%%0"))
end

describe("examples/update_profile.lua", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("reads Amy Dakota's profile, PATCHes her phone, reads it again and verifies", function()
    local code, output = run({"lua5.4", "examples/update_profile.lua"}, emulator_env())
    assert.equal(0, code, output)
    local pkey = output:match("found amy%.dakota@mail%.com: PKey (@[%w_%-]+)\n")
    assert.is_string(pkey, output)
    local path = "profileAndServices/profile/" .. pkey
    local get1 = output:find("\n1%. GET " .. escape(path) .. "\n")
    local patch = output:find("\n2%. PATCH " .. escape(path) .. ' {"phone":"3301020304"}\n')
    local get2 = output:find("\n3%. GET " .. escape(path) .. "\n")
    local verified = output:find("\nverified: phone = 3301020304\n")
    assert.is_number(get1, output)
    assert.is_number(patch, output)
    assert.is_number(get2, output)
    assert.is_number(verified, output)
    assert.is_true(get1 < patch and patch < get2 and get2 < verified)
    -- The profile as read first, the {PKey, href} answer, the profile read again.
    local first = output:sub(get1, patch)
    assert.matches('"email": "amy%.dakota@mail%.com"', first)
    assert.matches('"birthDate": "1980%-10%-24"', first)
    local answer = output:sub(patch, get2)
    assert.matches('"PKey": "' .. escape(pkey) .. '"', answer)
    assert.matches('"href": "[^"]*/profileAndServices/profile/' .. escape(pkey) .. '"', answer)
    assert.matches('"phone": "3301020304"', output:sub(get2, verified))
    assert.matches("\nupdate_and_verify%(phone = 3301020304%): verified, changed = false\n$", output)
    for _, secret in ipairs({emu.client_secret, emu.api_key, emu.access_token}) do
      assert.is_nil(output:find(secret, 1, true))
    end
  end)

  it("uses CAMPAIGN_PKEY when it is set, and exits 3 when the change does not read back", function()
    local env = emulator_env()
    local code, output = run({"lua5.4", "examples/update_profile.lua"}, env)
    assert.equal(0, code, output)
    env.CAMPAIGN_PKEY = output:match("PKey (@[%w_%-]+)")
    env.CAMPAIGN_PHONE = "0707070707"
    emu:faults{{method = "PATCH", status = 200, body = '{"PKey":"' .. env.CAMPAIGN_PKEY .. '","href":"x"}'}}
    code, output = run({"lua5.4", "examples/update_profile.lua"}, env)
    assert.equal(3, code, output)
    assert.is_nil(output:find("found ", 1, true))
    assert.matches("not verified: phone = 3301020304, expected 0707070707", output)
  end)

  it("names the missing settings (exit 2)", function()
    local code, output = run({"lua5.4", "examples/update_profile.lua"}, {})
    assert.equal(2, code)
    assert.matches("CAMPAIGN_ORG", output)
  end)
end)

describe("scripts/demo", function()
  local prefix = "build/demo-emulator"
  local function demo_emulator_running()
    local code = run({"emulator/campaign-emulator", "status", "--prefix",
      os.getenv("PWD") .. "/" .. prefix}, {})
    return code == 0
  end

  it("runs the example against its own emulator and stops it", function()
    local code, output = run({"scripts/demo"}, {})
    assert.equal(0, code, output)
    assert.matches("\nverified: phone = 3301020304\n", output)
    assert.is_false(demo_emulator_running())
  end)

  it("stops the emulator also when the example fails, and exits with its status", function()
    local code, output = run({"scripts/demo"}, {CAMPAIGN_EMAIL = "nobody@nowhere.example"})
    assert.equal(1, code, output)
    assert.matches("no profile with email nobody@nowhere%.example", output)
    assert.is_false(demo_emulator_running())
  end)
end)
