-- bin/campaign bulk-update --journal FILE [--resume] (issue 13, item 2): a run of 300 PATCHes
-- killed with SIGKILL mid-way, resumed, killed again and resumed to the end; a resume with a
-- changed input is refused before anything is sent; SIGINT says how to resume. bin/campaign runs
-- as a subprocess against a private emulator seeded with 300 profiles.
local emulator = require "emulator"
local cjson = require "cjson"
local cli_process = require "cli_process"
local journal = require "campaign.journal"

local N = 300
local CONCURRENCY = 4

-- A new temporary name ending in `suffix`: os.tmpname() creates its own (empty) file, which is
-- removed at once so that nothing of it is left in /tmp.
local function fresh_name(suffix)
  local base = os.tmpname()
  os.remove(base)
  return base .. suffix
end

local sh = cli_process.quote
local files = require "files"
local read_file, write_file = files.read, files.write

local function report_lines(path)
  local lines = {}
  for text in (read_file(path) or ""):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(text) end
  return lines
end

describe("bulk-update --journal and --resume (issue 13, item 2)", function()
  local emu, input, rows, journal_path, report_path

  setup(function()
    emu = emulator.start { profiles = N }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  local function command_line(argv)
    return cli_process.command_line(cli_process.ims_env(emu), argv)
  end

  local function campaign(argv)
    return cli_process.exec(cli_process.ims_env(emu), argv)
  end

  local function expect(code, result)
    assert(result.code == code, ("exit %s, expected %d\nstdout: %s\nstderr: %s"):format(
      tostring(result.code), code, tostring(result.out), tostring(result.err)))
    return result
  end

  -- Starts bulk-update in the background and kills it (`signal`, default KILL) once the journal
  -- holds `applied` applied records; returns {code, out, err}.
  local function killed_run(argv, applied, signal)
    local out_path, err_path, rc_path = os.tmpname(), os.tmpname(), os.tmpname()
    local count = "cat " .. sh(journal_path) .. " 2>/dev/null | grep -c '\"outcome\":\"applied\"'"
    local redirect = " >" .. out_path .. " 2>" .. err_path .. " </dev/null"
    local script = "set -m; " .. command_line(argv) .. redirect .. " & pid=$!; n=0; " ..
      "while [ \"$(" .. count .. ")\" -lt " .. applied .. " ] && [ $n -lt 1500 ]; do " ..
      "sleep 0.01; n=$((n+1)); done; kill -" .. (signal or "KILL") .. " $pid; wait $pid; echo $? >" .. rc_path
    os.execute("bash -c " .. sh(script) .. " 2>/dev/null")
    local result = { code = tonumber(read_file(rc_path)), out = read_file(out_path),
      err = read_file(err_path) }
    for _, f in ipairs { out_path, err_path, rc_path } do os.remove(f) end
    return result
  end

  -- PKey -> phone as the emulator stores it now.
  local function stored()
    local records = emu:profiles()
    local out = {}
    for _, p in ipairs(records.content or records) do out[p.PKey] = p.phone end
    return out
  end

  -- The PKeys of the PATCHes the emulator received since the last clear_requests (each a count).
  local function patched()
    local out, n = {}, 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "PATCH" then
        local key = r.uri:match("/profile/([^/?]+)$"):gsub("%%(%x%x)", function(h)
          return string.char(tonumber(h, 16))
        end)
        out[key] = (out[key] or 0) + 1
        n = n + 1
      end
    end
    return out, n
  end

  -- The journal's applied items as a set of input positions (their last record is "applied").
  local function journaled_applied()
    local state = assert(journal.load(journal_path))
    local set, n = {}, 0
    for i = 1, N do
      if journal.entry(state, i) == "applied" then set[i], n = true, n + 1 end
    end
    return set, n, state
  end

  -- After a kill: every item the journal says applied is applied on the server, and what the
  -- server applied beyond the journal is at most what was in flight.
  local function check_after_kill()
    os.execute("sleep 0.2")                 -- requests in flight at the kill finish on the server
    local applied, n = journaled_applied()
    local now = stored()
    local beyond = 0
    for i, row in ipairs(rows) do
      if applied[i] then
        assert.equal(row.phone, now[row.PKey], "journaled as applied but not stored: item " .. i)
      elseif now[row.PKey] == row.phone then
        beyond = beyond + 1
      end
    end
    assert(beyond <= CONCURRENCY, beyond .. " item(s) applied on the server but not journaled")
    return applied, n
  end

  before_each(function()
    emu:fresh()
    local list = emu:profiles()
    list = list.content or list
    table.sort(list, function(a, b) return a.PKey < b.PKey end)
    assert.equal(N, #list)
    rows = {}
    local lines = {}
    for i, p in ipairs(list) do
      rows[i] = { PKey = p.PKey, phone = "0811" .. i }
      lines[i] = cjson.encode(rows[i])
    end
    input = write_file(fresh_name(".ndjson"), table.concat(lines, "\n") .. "\n")
    journal_path, report_path = os.tmpname(), os.tmpname()
    os.remove(journal_path)
  end)

  after_each(function()
    emu:clear_faults()
    for _, f in ipairs { input, journal_path, report_path } do os.remove(f) end
  end)

  it("SIGKILL, resume, SIGKILL, resume: only what was not applied is sent, each item once", function()
    emu:faults { { method = "PATCH", delay_ms = 15, times = -1 } }
    local argv = { "bulk-update", input, "--journal", journal_path, "--concurrency", tostring(CONCURRENCY),
      "--no-progress" }
    local resume = { "bulk-update", input, "--journal", journal_path, "--concurrency", tostring(CONCURRENCY),
      "--no-progress", "--resume" }

    -- Run 1, killed after 60 items were journaled as applied.
    emu:clear_requests()
    assert.equal(137, killed_run(argv, 60).code)
    local applied1, n1 = check_after_kill()
    assert(n1 >= 60 and n1 < N, n1)

    -- A torn last line, as a kill in the middle of a write leaves it: tolerated.
    local file = assert(io.open(journal_path, "ab"))
    file:write('{"i":' .. N .. ',"sum":12')
    file:close()

    -- Run 2 (a resume), killed after 80 more.
    emu:clear_requests()
    assert.equal(137, killed_run(resume, n1 + 80).code)
    local sent2 = patched()
    for i, row in ipairs(rows) do
      assert(not (applied1[i] and sent2[row.PKey]), "item " .. i .. " was applied in run 1 and sent again")
    end
    local applied2, n2 = check_after_kill()
    assert(n2 >= n1 + 80 and n2 < N, n2)

    -- Run 3 (a resume) to the end, with a report.
    emu:clear_faults()
    emu:clear_requests()
    local result = expect(0, campaign { "bulk-update", input, "--journal", journal_path, "--resume",
      "--report", report_path, "--no-progress" })
    local sent3, count3 = patched()
    assert.equal(N - n2, count3, "the resume sends exactly the items not applied")
    for i, row in ipairs(rows) do
      if applied2[i] then
        assert.is_nil(sent3[row.PKey], "item " .. i .. " was applied before and sent again")
      else
        assert.equal(1, sent3[row.PKey], "item " .. i)
      end
    end
    local summary = cjson.decode(result.out)
    assert.same({ N, N, n2, 0, 0 },
      { summary.total, summary.ok, summary.skipped, summary.failed, summary.unknown })

    -- The end state: the records equal the input; the report holds every item once, in order.
    local now = stored()
    for i, row in ipairs(rows) do assert.equal(row.phone, now[row.PKey], "item " .. i) end
    local lines = report_lines(report_path)
    assert.equal(N, #lines)
    local skipped = 0
    for i, line in ipairs(lines) do
      assert.same({ i, rows[i].PKey, true, "applied" }, { line.line, line.PKey, line.ok, line.outcome })
      if line.skipped then skipped = skipped + 1 end
      assert.equal(applied2[i] or nil, line.skipped)
    end
    assert.equal(n2, skipped)
    local _, n_final, state = journaled_applied()
    assert.same({ N, N, 3 }, { n_final, state.count, state.runs })
  end)

  it("refuses a resume whose input changed (exit 2, the line named, nothing sent, journal kept)", function()
    expect(0, campaign { "bulk-update", input, "--journal", journal_path, "--no-progress" })
    local before = read_file(journal_path)
    local lines = {}
    for i, row in ipairs(rows) do lines[i] = cjson.encode(row) end
    lines[17] = cjson.encode({ PKey = rows[17].PKey, phone = "changed" })
    write_file(input, table.concat(lines, "\n") .. "\n")
    emu:clear_requests()
    local result = expect(2, campaign { "bulk-update", input, "--journal", journal_path, "--resume" })
    assert.matches("line 17 of " .. input .. " (PKey " .. rows[17].PKey .. ") is not the item journaled as "
      .. "item 17", result.err, 1, true)
    assert.matches("nothing was sent", result.err, 1, true)
    -- Another input: fewer lines.
    write_file(input, table.concat(lines, "\n", 1, 10) .. "\n")
    result = expect(2, campaign { "bulk-update", input, "--journal", journal_path, "--resume" })
    assert.matches("it was written for an input of 300 item(s), " .. input .. " has 10", result.err, 1, true)
    -- Without --resume, a journal with records is not overwritten.
    result = expect(2, campaign { "bulk-update", input, "--journal", journal_path })
    assert.matches("already exists (300 record(s), 300 item(s) applied): resume it", result.err, 1, true)
    local _, count = patched()
    assert.equal(0, count)
    assert.equal(before, read_file(journal_path))
  end)

  it("refuses --resume without --journal, and a journal that is the report or the input", function()
    local result = expect(2, campaign { "bulk-update", input, "--resume" })
    assert.matches("--resume needs --journal FILE", result.err, 1, true)
    result = expect(2, campaign { "bulk-update", input, "--journal", report_path, "--report", report_path })
    assert.matches("--journal and --report name the same file", result.err, 1, true)
    result = expect(2, campaign { "bulk-update", input, "--journal", input })
    assert.matches("is the input file", result.err, 1, true)
    local _, count = patched()
    assert.equal(0, count)
  end)

  it("SIGINT: exit 130 and the message gives the resume command, which finishes the job", function()
    emu:faults { { method = "PATCH", delay_ms = 15, times = -1 } }
    local result = killed_run({ "bulk-update", input, "--journal", journal_path, "--concurrency", "2",
      "--no-progress" }, 20, "INT")
    expect(130, result)
    local recipe = "resume with:  campaign bulk-update " .. sh(input) .. " --journal " .. sh(journal_path) ..
      " --resume"
    assert.matches(recipe, result.err, 1, true)
    local _, n = journaled_applied()
    emu:clear_faults()
    result = expect(0, campaign { "bulk-update", input, "--journal", journal_path, "--resume",
      "--no-progress" })
    assert.same({ N, N, n }, { cjson.decode(result.out).total, cjson.decode(result.out).ok,
      cjson.decode(result.out).skipped })
    local now = stored()
    for i, row in ipairs(rows) do assert.equal(row.phone, now[row.PKey], "item " .. i) end
  end)
end)
