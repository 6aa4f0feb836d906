-- The CLI's --rate and --budget (CAMPAIGN_RATE, CAMPAIGN_BUDGET): bin/campaign as a subprocess
-- against the shared emulator; the requests the emulator saw are counted.
local emulator = require "emulator"

local emu = emulator.shared()

local function sh(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("a")
  file:close()
  return text
end

local function campaign(argv, env)
  local words = {"env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp"),
    "CAMPAIGN_ORG=" .. emu.org, "CAMPAIGN_API_KEY=" .. emu.api_key,
    "CAMPAIGN_BASE_URL=" .. emu.base_url, "CAMPAIGN_ACCESS_TOKEN=" .. emu.access_token}
  for key, value in pairs(env or {}) do words[#words + 1] = key .. "=" .. value end
  words[#words + 1] = "lua5.4"
  words[#words + 1] = "bin/campaign"
  for _, word in ipairs(argv) do words[#words + 1] = word end
  local quoted = {}
  for i, word in ipairs(words) do quoted[i] = sh(word) end
  local out_path, err_path = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(table.concat(quoted, " ") .. " >" .. out_path .. " 2>" .. err_path
    .. " </dev/null")
  local result = {code = code, out = read_file(out_path), err = read_file(err_path)}
  os.remove(out_path)
  os.remove(err_path)
  return result
end

local function profile_gets()
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.uri:find("/profileAndServices/profile", 1, true) then n = n + 1 end
  end
  return n
end

describe("campaign --rate / --budget", function()
  before_each(function()
    emu:fresh()
    -- the token is the emulator's, but other specs may have expired it: use a fresh one
    emu.access_token = emu:new_token()
  end)

  it("refuses a bad --rate or --budget with a usage error", function()
    for _, argv in ipairs({{"--rate", "0"}, {"--rate", "fast"}, {"--budget", "1.5"}, {"--budget", "0"}}) do
      local args = {argv[1], argv[2], "get", "profileAndServices/profile"}
      local r = campaign(args)
      assert.equal(2, r.code)
      assert.matches("option '" .. argv[1] .. "'", r.err, 1, true)
    end
    local r = campaign({"get", "profileAndServices/profile"}, {CAMPAIGN_RATE = "-3"})
    assert.equal(2, r.code)
    assert.matches("CAMPAIGN_RATE", r.err, 1, true)
    assert.equal(0, profile_gets())
  end)

  it("--budget stops the retries before it sends more, with kind budget", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 10}
    local r = campaign({"--budget", "2", "--retries", "5", "get", "profileAndServices/profile"})
    assert.equal(1, r.code)
    assert.matches("budget spent", r.err, 1, true)
    assert.equal(2, profile_gets())
  end)

  it("CAMPAIGN_BUDGET does the same, and --rate paces every attempt", function()
    emu:faults{method = "GET", path = "/profileAndServices/profile$", status = 503, times = 10}
    local t0 = os.time()
    local r = campaign({"--rate", "2", "--retries", "9", "get", "profileAndServices/profile"},
      {CAMPAIGN_BUDGET = "3"})
    assert.equal(1, r.code)
    assert.matches("budget spent", r.err, 1, true)
    assert.equal(3, profile_gets())
    assert.is_true(os.time() - t0 >= 1) -- 3 attempts at 2/s: 1 s at least
  end)
end)
