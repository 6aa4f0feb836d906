-- `campaign profile list --all` / `profile find` against a server whose next.href misbehaves
-- (the shared emulator's faults play it): a pagination cycle and an off-origin href are a
-- server's bad answer, so exit 1 with one line on stderr, not an endless run or the usage
-- exit 2. The records printed before stay a cut JSON array (invalid on purpose, ended by a
-- newline): a partial listing must not parse as a complete one. Every run is under `timeout`,
-- so a CLI that loops fails the spec (exit 124) instead of hanging it.
local emulator = require "emulator"
local cjson = require "cjson"

local emu = emulator.shared()

local sh = require("cli_process").quote

local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  os.remove(path)
  return text
end

-- bin/campaign with `argv` in a clean environment (the emulator's IMS credentials), 20 s at most.
local function campaign(argv)
  local env = {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
  local words = {"env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp")}
  for key, value in pairs(env) do words[#words + 1] = key .. "=" .. value end
  for _, word in ipairs({"timeout", "20", "lua5.4", "bin/campaign"}) do words[#words + 1] = word end
  for _, word in ipairs(argv) do words[#words + 1] = word end
  for i, word in ipairs(words) do words[i] = sh(word) end
  local out_path, err_path = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(table.concat(words, " ") .. " >" .. out_path .. " 2>" .. err_path
    .. " </dev/null")
  return {code = code, out = slurp(out_path), err = slurp(err_path)}
end

local function root() return emu.base_url .. "/" .. emu.org .. "/campaign/" end

-- A fault answering GETs of a path (a Lua pattern on the decoded path) with two records and
-- `href` as next.href, for ever.
local function page(path_pattern, href)
  local tag = path_pattern:gsub("%W", "")
  return { method = "GET", path = path_pattern, status = 200, times = -1,
    body = { content = { { PKey = "@" .. tag .. "1" }, { PKey = "@" .. tag .. "2" } },
             next = { href = href } } }
end

local function gets_of(fragment)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.uri:find(fragment, 1, true) then n = n + 1 end
  end
  return n
end

-- The run failed as a server's bad answer: exit 1, one stderr line naming `what`, stdout the
-- records before the failure as a cut array ended by a newline.
local function failed_midway(result, what, records)
  assert(result.code == 1, ("exit %s\nstdout: %s\nstderr: %s"):format(
    tostring(result.code), result.out:sub(1, 300), result.err:sub(1, 300)))
  assert.matches("^campaign: pagination: [^\n]*" .. what .. "[^\n]*\n$", result.err)
  assert.is_false((pcall(cjson.decode, result.out)))
  assert.equal("\n", result.out:sub(-1))
  local closed = assert(cjson.decode(result.out:gsub("\n$", "") .. "]"))
  assert.equal(records, #closed)
end

describe("CLI listings on a misbehaving next.href", function()
  before_each(function() emu:fresh() end)
  after_each(function() emu:clear_faults() end)

  it("profile list --all: an A -> B -> A cycle exits 1 after each page once", function()
    emu:faults {
      page("/profileAndServices/profile$", root() .. "profileAndServices/profile/cycleB"),
      page("/profileAndServices/profile/cycleB$", root() .. "profileAndServices/profile?_lineStart=@again"),
    }
    local result = campaign({"profile", "list", "--all", "--compact"})
    failed_midway(result, "a pagination cycle", 6)
    assert.equal(2, gets_of("/profileAndServices/profile/cycleB") + gets_of("@again"))
  end)

  it("profile find: a page naming itself exits 1", function()
    local self_href = root() .. "profileAndServices/profile/byEmail/again?email=x"
    emu:faults {
      page("/profileAndServices/profile/byEmail$", self_href),
      page("/profileAndServices/profile/byEmail/again$", self_href),
    }
    local result = campaign({"profile", "find", "--email", "amy.dakota@mail.com", "--pretty"})
    failed_midway(result, "names page 2 again", 4)
  end)

  it("profile list --all: an off-origin next.href exits 1, not 2, and nothing goes there", function()
    local evil = emu.base_url:gsub("127%.0%.0%.1", "localhost") .. "/" .. emu.org
      .. "/campaign/profileAndServices/profile/evil?_lineStart=@x"
    emu:faults { page("/profileAndServices/profile$", evil) }
    local result = campaign({"profile", "list", "--all", "--compact"})
    failed_midway(result, "refused %(an absolute URL must have the base_url's scheme, host and port", 2)
    assert.equal(0, gets_of("/profileAndServices/profile/evil"))
  end)
end)
