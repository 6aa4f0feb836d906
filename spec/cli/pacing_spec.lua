-- The CLI's --rate and --budget (CAMPAIGN_RATE, CAMPAIGN_BUDGET): bin/campaign as a subprocess
-- against the shared emulator; the requests the emulator saw are counted.
local emulator = require "emulator"

local emu = emulator.shared()

local cli_process = require "cli_process"

local function campaign(argv, env)
  return cli_process.run(emu, argv, env)
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
