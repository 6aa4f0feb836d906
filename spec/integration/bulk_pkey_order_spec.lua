-- bulk_update against the emulator: two rows of one PKey (red team 2026-12-03, item 6).
-- The first row's PATCH meets a 503 (retried); the second row must still be the one stored,
-- as if the rows had been applied one after the other in input order.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

describe("bulk_update and repeated PKeys", function()
  local emu

  setup(function() emu = emulator.shared() end)
  after_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("applies the rows of one PKey in input order through a retried 503", function()
    emu:clear_faults()
    emu:reset()
    local client = campaign.new(emu:client_options { retries = 3, retry_base = 0.05, retry_max = 0.2 })
    local listing = assert(client:get("profileAndServices/profile", { query = { _lineCount = 6 } }))
    local pkeys = {}
    for i, p in ipairs(listing.content) do pkeys[i] = p.PKey end
    local target = pkeys[1]
    -- The first PATCH of the target answers 503 after a short delay: a retry, later.
    emu:faults { { method = "PATCH", path = target:gsub("%p", "%%%0") .. "$", status = 503,
      delay_ms = 100, times = 1 } }
    local items = {
      { pkey = target, changes = { firstName = "first-row" } },
      { pkey = pkeys[2], changes = { firstName = "other-2" } },
      { pkey = target, changes = { firstName = "second-row" } },
      { pkey = pkeys[3], changes = { firstName = "other-3" } },
      { pkey = target, changes = { firstName = "third-row" } },
    }
    local report = workflow.bulk_update(client, items, { concurrency = 8 })
    assert.are.same({ 5, 5, 0, 0 }, { report.total, report.ok, report.failed, report.unknown or 0 })
    local stored = assert(client:get("profileAndServices/profile/" .. target))
    assert.are.equal("third-row", stored.firstName)
    assert.are.equal("other-2", assert(client:get("profileAndServices/profile/" .. pkeys[2])).firstName)

    -- Two rows only, the 503 on the first: the second row wins.
    emu:faults { { method = "PATCH", path = target:gsub("%p", "%%%0") .. "$", status = 503,
      delay_ms = 100, times = 1 } }
    report = workflow.bulk_update(client, {
      { pkey = target, changes = { lastName = "A" } }, { pkey = target, changes = { lastName = "B" } },
    }, { concurrency = 8 })
    assert.are.same({ 2, 2 }, { report.total, report.ok })
    assert.are.equal("B", assert(client:get("profileAndServices/profile/" .. target)).lastName)
    client:close()
  end)
end)
