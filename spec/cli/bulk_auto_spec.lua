-- bin/campaign bulk-update --concurrency auto (issue 13, item 3): the run adapts, the plain
-- progress line shows the limit, misuse is a usage error (exit 2).
local emulator = require "emulator"

local cli_process = require "cli_process"

describe("bulk-update --concurrency auto", function()
  local emu, input

  setup(function()
    emu = emulator.shared()
    emu:clear_faults()
    emu:reset()
    local lines = {}
    for i, p in ipairs(emu:profiles()) do
      if i > 40 then break end
      lines[#lines + 1] = ('{"PKey":"%s","lastName":"auto%d"}'):format(p.PKey, i)
    end
    input = os.tmpname()
    local file = assert(io.open(input, "wb"))
    file:write(table.concat(lines, "\n"), "\n")
    file:close()
  end)

  teardown(function()
    if input then os.remove(input) end
    emu:reset()
  end)

  local function campaign(argv)
    return cli_process.run(emu, argv)
  end

  it("applies every item and shows the limit on the progress line", function()
    local r = campaign { "bulk-update", input, "--concurrency", "auto", "--concurrency-max", "12",
      "--progress-interval", "0" }
    assert.are.equal(0, r.code, r.err)
    local lines = 0
    for line in r.err:gmatch("[^\n]+") do
      local limit = tonumber(line:match("^progress: %d+/40 done, 0 failed, %d+/s, limit (%d+), ETA "))
      assert.is_not_nil(limit, line)
      assert.is_true(limit >= 1 and limit <= 12)
      lines = lines + 1
    end
    assert.is_true(lines >= 2)
    for i, p in ipairs(emu:profiles()) do
      if i > 40 then break end
      assert.are.equal("auto" .. i, p.lastName)
    end
  end)

  it("refuses misuse with exit 2", function()
    local r = campaign { "bulk-update", input, "--concurrency", "fast" }
    assert.are.equal(2, r.code)
    assert.matches("'--concurrency' needs a positive integer, got 'fast' or 'auto'", r.err, 1, true)
    r = campaign { "bulk-update", input, "--concurrency", "4", "--concurrency-max", "8" }
    assert.are.equal(2, r.code)
    assert.matches("option '--concurrency-max' needs --concurrency auto", r.err, 1, true)
    r = campaign { "bulk-update", input, "--concurrency", "auto", "--concurrency-max", "300" }
    assert.are.equal(2, r.code)
    assert.matches("option '--concurrency-max' must be at most 256", r.err, 1, true)
  end)
end)
