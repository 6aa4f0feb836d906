-- bulk_update's journal and resume (issue 13, item 2): campaign.journal's format and reading
-- (torn lines, a wrong header, a damaged middle, checksums equal on every Lua), and
-- bulk_update{journal =, resume =} with fake clients: what is journaled, what a resume skips and
-- sends again, and what it refuses before sending anything. The CLI's runs killed with SIGKILL
-- against the emulator are in spec/cli/bulk_journal_spec.lua.
local campaign = require "campaign"
local workflow = require "campaign.workflow"
local journal = require "campaign.journal"

local PATH = "profileAndServices/profile/"

local files = require "files"
local read_file, write_file = files.read, files.write

local function lines_of(path)
  local out = {}
  for line in (read_file(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- A client that applies every PATCH to `stored`, unless fail(path, value) gives a result.
local function store_client(fail)
  local client = { stored = {}, sent = {}, calls = 0 }
  function client.get() return {}, { status = 200 } end
  function client.batch(_, requests, opts)
    local results = {}
    for k, r in ipairs(requests) do
      client.calls = client.calls + 1
      client.sent[#client.sent + 1] = r[2]
      local result = fail and fail(r[2], r[3].phone)
      if not result then
        client.stored[r[2]] = r[3].phone
        result = { status = 200, body = { PKey = "x" } }
      end
      results[k] = result
      if opts and opts.on_result then opts.on_result(k, result) end
    end
    return results
  end
  return client
end

local function items_of(n, suffix)
  local items = {}
  for i = 1, n do items[i] = { pkey = "@p" .. i, changes = { phone = "07" .. i .. (suffix or "") } } end
  return items
end

local function iterator(list)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end

local HEADER = '{"campaign_journal":1,"checksum":"poly257-67108859",' ..
  '"resource":"profileAndServices/profile","run":1}'

local function record(i, item, outcome)
  return ('{"i":%d,"sum":%d,"outcome":"%s","PKey":"%s"}'):format(i, journal.sum(item.pkey, item.changes),
    outcome, item.pkey)
end

-- A journal's text: the header, then each line given, each ending with a newline.
local function journal_text(...)
  return HEADER .. "\n" .. table.concat({ ... }, "\n") .. "\n"
end

describe("campaign.journal: checksums", function()
  it("gives the same sum on every Lua (doubles or integers), whatever the key order or 42 vs 42.0", function()
    local sum = journal.sum("@p1", { phone = "01", age = 42, tags = campaign.array {},
      nested = { b = true, a = { 1, 2.5, campaign.null } }, ["\195\169"] = "x" })
    assert.equal(28108939, sum)
    assert.equal(24789249, journal.sum("@p1", { age = 42.0, phone = "01" }))
    assert.equal(24789249, journal.sum("@p1", { phone = "01", age = 42 }))
    assert.equal(58900565, journal._checksum(string.rep("\255", 1000)))
  end)

  it("tells a changed value, key, PKey or type apart", function()
    local base = journal.sum("@p1", { phone = "01" })
    assert.are_not.equal(base, journal.sum("@p1", { phone = "02" }))
    assert.are_not.equal(base, journal.sum("@p2", { phone = "01" }))
    assert.are_not.equal(base, journal.sum("@p1", { phone2 = "01" }))
    assert.are_not.equal(base, journal.sum("@p1", { phone = 1 }))
    assert.are_not.equal(journal.sum("@p1", { tags = campaign.array {} }), journal.sum("@p1", { tags = {} }))
  end)
end)

describe("campaign.journal.load", function()
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("reads a missing, an empty or a torn-header journal as holding nothing", function()
    os.remove(path)
    local state = assert(journal.load(path))
    assert.same({ nil, 0, 0 }, { state.header, state.records, state.max_i })
    write_file(path, "")
    assert.is_nil(assert(journal.load(path)).header)
    write_file(path, '{"campaign_journal":1,"chec')
    assert.is_nil(assert(journal.load(path)).header)
  end)

  it("refuses a file that is not a journal (a report, say) and another format version", function()
    write_file(path, '{"line":1,"PKey":"@p1","ok":true,"outcome":"applied"}\n')
    local state, err = journal.load(path)
    assert.is_nil(state)
    assert.equal("journal", err.kind)
    assert.matches("is not a bulk_update journal", err.message, 1, true)
    write_file(path, '{"campaign_journal":2,"checksum":"poly257-67108859"}\n')
    state, err = journal.load(path)
    assert.is_nil(state)
    assert.matches("another version", err.message, 1, true)
  end)

  it("tolerates a torn last line (a kill during a write), also once a resume followed it", function()
    local items = items_of(3)
    write_file(path, journal_text(record(1, items[1], "applied"), record(2, items[2], "applied"))
      .. '{"i":3,"sum":12')
    local state = assert(journal.load(path))
    assert.same({ 2, 2, 4, false }, { state.records, state.applied, state.torn, state.newline_at_end })
    assert.equal("applied", (journal.entry(state, 2)))
    assert.is_nil(journal.entry(state, 3))
    -- A resume puts the torn bytes on a line of their own, then its run record: still readable.
    local writer = assert(journal.start(state, { resume = true, resource = "profileAndServices/profile" }))
    assert(journal.record(writer, 3, journal.sum(items[3].pkey, items[3].changes), "applied", nil, "@p3", 3))
    journal.close(writer)
    local lines = lines_of(path)
    assert.equal('{"i":3,"sum":12', lines[4])
    assert.matches('^{"run":2,"started":"', lines[5])
    state = assert(journal.load(path))
    assert.same({ 3, 3, 2 }, { state.records, state.applied, state.runs })
  end)

  it("refuses a journal damaged in the middle, naming the line", function()
    local items = items_of(2)
    write_file(path, HEADER .. "\n" .. "garbage\n" .. record(2, items[2], "applied") .. "\n")
    local state, err = journal.load(path)
    assert.is_nil(state)
    assert.matches("line 2 is not a journal record %(the journal is damaged%)", err.message)
  end)

  it("keeps an item's last record: applied, then unknown, is unknown", function()
    local items = items_of(1)
    write_file(path, journal_text(record(1, items[1], "applied"), record(1, items[1], "unknown")))
    local state = assert(journal.load(path))
    assert.same({ "unknown", 0, 0 }, { (journal.entry(state, 1)), state.applied, state.max_applied })
  end)
end)

describe("bulk_update with opts.journal", function()
  local path
  before_each(function()
    path = os.tmpname()
    os.remove(path)
  end)
  after_each(function() os.remove(path) end)

  it("journals a header, every item's outcome and the input's count, one flushed line each", function()
    local client = store_client(function(p) if p == PATH .. "@p2" then return { status = 500 } end end)
    local seen_in_journal = {}
    local report = assert(workflow.bulk_update(client, items_of(3), { journal = path,
      on_item = function(i)
        -- Journaled before on_item hears of it: a crash after this point loses nothing.
        seen_in_journal[i] = read_file(path):find('"i":' .. i .. ',', 1, true) ~= nil
      end }))
    assert.same({ 3, 2, 1, 0 }, { report.total, report.ok, report.failed, report.skipped })
    assert.same({ true, true, true }, seen_in_journal)
    local lines = lines_of(path)
    assert.equal(5, #lines)
    assert.matches('^{"campaign_journal":1,"checksum":"poly257%-67108859",' ..
      '"resource":"profileAndServices/profile"', lines[1])
    local state = assert(journal.load(path))
    assert.same({ 3, 2, 3 }, { state.records, state.applied, state.count })
    assert.same({ "failed", journal.sum("@p2", { phone = "072" }) }, { journal.entry(state, 2) })
    assert.matches('"kind":"http","status":500', read_file(path), 1, true)
  end)

  it("refuses a journal with records without resume, and sends nothing", function()
    assert(workflow.bulk_update(store_client(), items_of(2), { journal = path }))
    local before = read_file(path)
    local client = store_client()
    local report, err = workflow.bulk_update(client, items_of(2), { journal = path })
    assert.is_nil(report)
    assert.equal("journal", err.kind)
    assert.matches("already exists %(2 record%(s%), 2 item%(s%) applied%): resume it", err.message)
    assert.equal(0, client.calls)
    assert.equal(before, read_file(path))
  end)

  it("resume: skips what was applied, sends failed, unknown, not_sent and never journaled items", function()
    local items = items_of(6)
    write_file(path, journal_text(record(1, items[1], "applied"), record(2, items[2], "failed"),
      record(3, items[3], "unknown"), record(4, items[4], "applied"), record(5, items[5], "not_sent")))
    local client = store_client()
    local heard = {}
    local report = assert(workflow.bulk_update(client, items, { journal = path, resume = true,
      on_item = function(i, outcome, _, skipped) heard[i] = outcome .. (skipped and " skipped" or "") end }))
    assert.same({ 6, 6, 0, 2 }, { report.total, report.ok, report.failed, report.skipped })
    assert.same({ PATH .. "@p2", PATH .. "@p3", PATH .. "@p5", PATH .. "@p6" }, client.sent)
    assert.same({ "applied skipped", "applied", "applied", "applied skipped", "applied", "applied" }, heard)
    local state = assert(journal.load(path))
    assert.same({ 6, 2 }, { state.applied, state.runs })
    -- Nothing left: a second resume sends nothing.
    client = store_client()
    report = assert(workflow.bulk_update(client, items, { journal = path, resume = true }))
    assert.same({ 6, 6, 0 }, { report.skipped, report.ok, client.calls })
  end)

  it("resume: a row after one of its record that is sent again goes again (last row wins)", function()
    local items = {
      { pkey = "@a", changes = { phone = "first" } },
      { pkey = "@b", changes = { phone = "b" } },
      { pkey = "@a", changes = { phone = "last" } },
    }
    -- Run 1: row 1 unknown (a timeout), row 3 of the same record applied after it.
    write_file(path, journal_text(record(1, items[1], "unknown"), record(2, items[2], "applied"),
      record(3, items[3], "applied")))
    local client = store_client()
    local report = assert(workflow.bulk_update(client, items, { journal = path, resume = true }))
    assert.same({ PATH .. "@a", PATH .. "@a" }, client.sent)
    assert.equal("last", client.stored[PATH .. "@a"])
    assert.same({ 3, 1 }, { report.ok, report.skipped })
  end)

  it("resume: a changed item of a list is refused before anything is sent, naming it", function()
    local items = items_of(4)
    assert(workflow.bulk_update(store_client(function(p)
      if p == PATH .. "@p4" then return { status = 503 } end
    end), items, { journal = path }))
    local before = read_file(path)
    items[3].changes.phone = "changed"
    local client = store_client()
    local report, err = workflow.bulk_update(client, items, { journal = path, resume = true })
    assert.is_nil(report)
    assert.equal("journal", err.kind)
    assert.equal(3, err.item)
    assert.matches("item 3 (PKey @p3) is not the item journaled as item 3", err.message, 1, true)
    assert.matches("nothing was sent", err.message, 1, true)
    assert.equal(0, client.calls)
    assert.equal(before, read_file(path))
    -- Fewer items than the journal holds: refused too.
    report, err = workflow.bulk_update(client, { items_of(4)[1] }, { journal = path, resume = true })
    assert.is_nil(report)
    assert.matches("written for an input of 4 item(s), the input has 1", err.message, 1, true)
    assert.equal(0, client.calls)
  end)

  it("resume: an iterator is checked item by item; a changed item stops the run before it is sent", function()
    local items = items_of(4)
    write_file(path, journal_text(record(1, items[1], "failed"), record(3, items[3], "applied")))
    local changed = items_of(4)
    changed[3].changes.phone = "changed"
    local client = store_client()
    local report, err = workflow.bulk_update(client, iterator(changed), { journal = path, resume = true,
      window = 1, concurrency = 1 })
    assert.is_nil(report)
    assert.equal(3, err.item)
    assert.same({ PATH .. "@p1", PATH .. "@p2" }, client.sent)
    assert.same({ 3, 2, 1 }, { err.report.total, err.report.ok, err.report.not_sent })
    -- The changed item was not journaled over its record: a resume with the right input works.
    local state = assert(journal.load(path))
    assert.equal("applied", (journal.entry(state, 3)))
    client = store_client()
    report = assert(workflow.bulk_update(client, iterator(items), { journal = path, resume = true }))
    assert.same({ 4, 3 }, { report.ok, report.skipped })
    assert.same({ PATH .. "@p4" }, client.sent)
  end)

  it("resume of a journal that does not exist yet starts it", function()
    local client = store_client()
    local report = assert(workflow.bulk_update(client, items_of(2), { journal = path, resume = true }))
    assert.same({ 2, 0, 2 }, { report.ok, report.skipped, client.calls })
    assert.equal(2, assert(journal.load(path)).applied)
  end)

  -- In a process of its own: inside this busted run, LuaJIT's flush to /dev/full sometimes
  -- succeeded (3 runs in 10; never in a fresh process, never on PUC Lua), a harness effect we
  -- did not pin down, and the spec must not depend on it.
  it("a journal that cannot be written stops before anything is sent", function()
    local lua = os.getenv("CAMPAIGN_TEST_LUA") or (jit and "luajit" or "lua5.4")
    local flavour = lua == "luajit" and "jit" or lua:match("^lua(5%.%d)$") or "5.4"
    local script = os.tmpname()
    finally(function() os.remove(script) end)
    local f = assert(io.open(script, "wb"))
    f:write([[
package.path = "lua/?.lua;" .. package.path
package.cpath = "build/]], flavour, [[/?.so;" .. package.cpath
local workflow = require "campaign.workflow"
local calls = 0
local client = { get = function() return {}, { status = 200 } end }
function client.batch(_, requests, opts)
  local results = {}
  for k in ipairs(requests) do
    calls = calls + 1
    results[k] = { status = 200, body = { PKey = "x" } }
    if opts and opts.on_result then opts.on_result(k, results[k]) end
  end
  return results
end
local report, err = workflow.bulk_update(client, { { pkey = "@p1", changes = { phone = "1" } },
  { pkey = "@p2", changes = { phone = "2" } } }, { journal = "/dev/full" })
io.write(tostring(report), "|", tostring(err and err.kind), "|", tostring(calls), "|",
  tostring(err and err.message), "\n")
]])
    f:close()
    local pipe = assert(io.popen(lua .. " " .. script .. " 2>&1"))
    local out = pipe:read("*a")
    pipe:close()
    local report, kind, calls, message = out:match("^([^|]*)|([^|]*)|([^|]*)|(.*)\n$")
    assert.equal("nil", report, out)
    assert.equal("journal", kind, out)
    assert.equal("0", calls, out)
    assert.matches("cannot be written", message, 1, true)
  end)

  it("refuses another resource on resume, and misuse raises", function()
    assert(workflow.bulk_update(store_client(), items_of(1),
      { journal = path, resource = "profileAndServices/x" }))
    local report, err = workflow.bulk_update(store_client(), items_of(1), { journal = path, resume = true })
    assert.is_nil(report)
    assert.matches("was written for resource profileAndServices/x", err.message, 1, true)
    assert.has_error(function() workflow.bulk_update(store_client(), {}, { journal = 42 }) end,
      "campaign.workflow.bulk_update: opts.journal must be a file name (or campaign.journal.load's state)")
    assert.has_error(function()
      workflow.bulk_update(store_client(), {}, { journal = path, resume = "yes" })
    end,
      "campaign.workflow.bulk_update: opts.resume must be a boolean")
    assert.has_error(function() workflow.bulk_update(store_client(), {}, { resume = true }) end,
      "campaign.workflow.bulk_update: opts.resume needs opts.journal (the journal to resume)")
  end)
end)
