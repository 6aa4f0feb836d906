-- bulk_update of 10,000 items against 5% random faults (issue 7): nothing is lost or invented.
-- Item i sets firstName = "bulk-<i>" on profile i % 100. 500 one-shot faults (5% of the items)
-- are queued on random profiles, each answering the next PATCH of that profile instead of the
-- handler: 502, 503, 504, 429 (Retry-After 0), a dropped connection, a body cut mid-way (all
-- transient: retried) or a 500 (final). Windows of 50 items never hold two items of one profile,
-- so each profile's PATCHes reach the emulator in item order. Then:
--   - the report adds up: ok + failed + unknown == total == 10,000, one error per item not ok
--     (a dropped connection is "unknown": the PATCH may have reached ACS);
--   - every failed item failed for a fault: a 500 (not retried, after 1 to 3 attempts: transient
--     faults may come first), anything else after all 3 of the client's attempts (attempts also
--     count libcurl's own resend after a kept-alive connection was dropped, so at least 3);
--     and there are exactly as many 500 failures as 500 faults;
--   - what reached the emulator agrees: PATCH requests == ok + 500 (each success is one
--     unfaulted request, each fault consumed one request);
--   - the data agrees: each profile holds the value of its last successful item, or its
--     original value when none succeeded.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

local ITEMS, FAULTS, PROFILES, WINDOW = 10000, 500, 100, 50

local FAULT_KINDS = {
  { status = 502 }, { status = 503 }, { status = 504 },
  { status = 429, headers = { ["Retry-After"] = "0" } },
  { drop = true },
  { status = 200, body = string.rep("x", 2000), truncate = 100 },
  { status = 500, body = { code = 500, message = "RST-360011 An error has occurred - please contact "
    .. "your administrator." } },
}

describe("bulk_update under 5% random faults", function()
  local emu

  setup(function()
    emu = emulator.shared()
  end)

  after_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("reports exactly what the emulator received and stored", function()
    emu:clear_faults()
    emu:reset()
    local client = campaign.new(emu:client_options { retries = 2, retry_base = 0.001, retry_max = 0.01,
      timeout = 10 })
    local listing = assert(client:get("profileAndServices/profile", { query = { _lineCount = PROFILES } }))
    assert.equal(PROFILES, #listing.content)
    local pkeys, original = {}, {}
    for i, p in ipairs(listing.content) do
      pkeys[i] = p.PKey
      original[p.PKey] = p.firstName
    end

    local seed = os.time()
    math.randomseed(seed)
    local faults, final_faults = {}, 0
    for i = 1, FAULTS do
      local kind = FAULT_KINDS[math.random(#FAULT_KINDS)]
      local fault = { method = "PATCH", path = pkeys[math.random(PROFILES)]:gsub("%p", "%%%0") }
      for k, v in pairs(kind) do fault[k] = v end
      if kind.status == 500 then final_faults = final_faults + 1 end
      faults[i] = fault
    end
    emu:faults(faults)

    local items = {}
    for i = 1, ITEMS do
      items[i] = { pkey = pkeys[i % PROFILES + 1], changes = { firstName = "bulk-" .. i } }
    end

    -- The request log keeps only the last 10,000 entries: count PATCHes by sequence numbers,
    -- between a marker GET before and one after the run.
    emu:clear_requests()
    assert(client:get("profileAndServices/profile/" .. pkeys[1]))
    local marker = emu:requests()[1].seq

    local report = workflow.bulk_update(client, items, { concurrency = 16, window = WINDOW })
    local context = "seed " .. seed

    assert.equal(ITEMS, report.total, context)
    -- ok + failed + unknown: a dropped connection may have reached ACS (red team item 9)
    assert.equal(ITEMS, report.ok + report.failed + report.unknown, context)
    local errors, final_failures = 0, 0
    for i, err in pairs(report.errors) do
      errors = errors + 1
      assert.is_true(i >= 1 and i <= ITEMS, context)
      local expected_outcome = (err.kind == "network" and err.sent ~= false) and "unknown" or "failed"
      assert.equal(expected_outcome, report.outcomes[i], context .. ": " .. tostring(err))
      if err.status == 500 then
        final_failures = final_failures + 1
        -- final at once, though transient faults may have come before it
        assert.is_true(err.attempts >= 1, context .. ": " .. tostring(err))
      else
        assert.is_true(err.kind == "network" or err.kind == "http" and (err.status == 502 or
          err.status == 503 or err.status == 504 or err.status == 429), context .. ": " .. tostring(err))
        assert.is_true(err.attempts >= 3, context .. ": " .. err.attempts .. " " .. tostring(err))
      end
    end
    assert.equal(report.failed + report.unknown, errors, context)
    assert.equal(final_faults, final_failures, context)

    -- The marker after the run must carry sequence number marker + PATCHes + 1.
    assert(client:get("profileAndServices/profile/" .. pkeys[1]))
    local patches = report.ok + FAULTS
    local status, after = emu:call("GET", "/_emulator/requests?limit=5&since=" .. (marker + patches))
    assert.equal(200, status)
    assert.equal(1, #after, context .. ": the emulator did not receive ok + faults PATCH requests")
    assert.equal("GET", after[1].method, context)
    assert.equal(marker + patches + 1, after[1].seq, context)

    local expected = {}
    for pkey, name in pairs(original) do expected[pkey] = name end
    for i = 1, ITEMS do
      if not report.errors[i] then expected[items[i].pkey] = items[i].changes.firstName end
    end
    for _, pkey in ipairs(pkeys) do
      local profile = assert(client:get("profileAndServices/profile/" .. pkey))
      assert.equal(expected[pkey], profile.firstName, context .. ": profile " .. pkey)
    end
  end)
end)
