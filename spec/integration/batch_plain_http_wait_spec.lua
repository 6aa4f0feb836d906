-- client:batch over plain http with http2 = true (the default): no transfer waits for another's
-- connection. CURLOPT_PIPEWAIT made every later transfer wait to learn whether the first
-- connection could multiplex, which plain http never can: a slow first answer held them all
-- until their own timeout ("Failed to resolve host '127.0.0.1' with timeout after 0 ms").
local campaign = require "campaign"
local emulator = require "emulator"

describe("client:batch over plain http", function()
  local emu

  setup(function() emu = emulator.shared() end)
  after_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("answers the fast requests while the first one is slow (http2 on, nothing to multiplex)", function()
    local lister = campaign.new(emu:client_options())
    local listing = assert(lister:get("profileAndServices/profile", { query = { _lineCount = 3 } }))
    lister:close()
    local slow, fast1, fast2 = listing.content[1].PKey, listing.content[2].PKey, listing.content[3].PKey
    emu:faults { { method = "PATCH", path = slow:gsub("%p", "%%%0") .. "$", delay_ms = 3000, times = 1 } }
    -- a fresh client: its first transfers all start at once, before any connection exists
    local client = campaign.new(emu:client_options { timeout = 1.5, retries = 0 })
    assert.is_true(client:url("x"):sub(1, 7) == "http://")
    local results = client:batch({
      { "PATCH", "profileAndServices/profile/" .. slow, { phone = "1" } },
      { "PATCH", "profileAndServices/profile/" .. fast1, { phone = "2" } },
      { "PATCH", "profileAndServices/profile/" .. fast2, { phone = "3" } },
    }, { concurrency = 3 })
    client:close()
    assert.equal("timeout", results[1].err and results[1].err.kind)
    assert.equal(200, results[2].status, results[2].err and tostring(results[2].err))
    assert.equal(200, results[3].status, results[3].err and tostring(results[3].err))
  end)
end)
