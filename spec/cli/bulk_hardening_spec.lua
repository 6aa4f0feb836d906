-- bin/campaign bulk-update and the CLI's output after the red team of 2026-12-03:
--   item 2   a --report that is the input is refused; the summary counts what was sent
--   item 4   SIGINT/SIGTERM stop a run in order: every item reported, exit 130/143
--   item 9   a PATCH that may have been applied is "unknown" (exit 5), not "failed"
--   item 12  control characters from the server never reach the terminal raw
--   item 14b a report line is written even for a message that is not UTF-8
-- bin/campaign runs as a subprocess against the shared emulator.
local emulator = require "emulator"
local cjson = require "cjson"
local cli_process = require "cli_process"

local output = require "campaign.cli.output"

local emu = emulator.shared()

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

local function ims_env() return cli_process.ims_env(emu) end

local function command_line(argv, env)
  return cli_process.command_line(env or ims_env(), argv)
end

--- Runs bin/campaign; returns {code =, out =, err =}.
local function campaign(argv, opts)
  opts = opts or {}
  return cli_process.exec(opts.env or ims_env(), argv, opts.stdin)
end

local function expect(code, result)
  assert(result.code == code, ("exit %s, expected %d\nstdout: %s\nstderr: %s"):format(
    tostring(result.code), code, tostring(result.out), tostring(result.err)))
  return result
end

local function json_out(result)
  local ok, value = pcall(cjson.decode, result.out)
  assert(ok, "stdout is not JSON: " .. tostring(result.out) .. "\nstderr: " .. tostring(result.err))
  return value
end

local function report_lines(path)
  local lines = {}
  for text in (read_file(path) or ""):gmatch("[^\n]+") do
    local ok, value = pcall(cjson.decode, text)
    assert(ok, "a report line is not JSON: " .. text)
    lines[#lines + 1] = value
  end
  return lines
end

local function profiles(n)
  local status, listing = emu:call("GET", "profileAndServices/profile?_lineCount=" .. n .. "&_order=email")
  assert.equal(200, status)
  return listing.content
end

local function stored(pkey)
  local status, profile = emu:call("GET", "profileAndServices/profile/" .. pkey)
  assert.equal(200, status)
  return profile
end

local function patches()
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "PATCH" then n = n + 1 end
  end
  return n
end

local function pattern(pkey) return pkey:gsub("%p", "%%%0") .. "$" end

local function ndjson(rows)
  local lines = {}
  for i, row in ipairs(rows) do lines[i] = cjson.encode(row) end
  return table.concat(lines, "\n") .. "\n"
end

describe("bulk-update --report and its input (item 2)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("refuses a report that is the input file, by any name, before writing or sending", function()
    local list = profiles(3)
    local rows = {}
    for i, p in ipairs(list) do rows[i] = {PKey = p.PKey, phone = "0700" .. i} end
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. sh(dir)))
    finally(function() os.execute("rm -rf " .. sh(dir)) end)
    local input = write_file(dir .. "/changes.ndjson", ndjson(rows))
    local content = read_file(input)
    assert(os.execute("ln " .. sh(input) .. " " .. sh(dir .. "/hard.ndjson")))
    assert(os.execute("ln -s changes.ndjson " .. sh(dir .. "/soft.ndjson")))
    emu:clear_requests()
    local names = {input, dir .. "/./changes.ndjson", dir .. "/hard.ndjson", dir .. "/soft.ndjson"}
    for _, report in ipairs(names) do
      local result = expect(2, campaign({"bulk-update", input, "--report", report}))
      assert.matches("is the input file", result.err, 1, true)
      assert.equal("", result.out)
      assert.equal(content, read_file(input), "the input was changed through " .. report)
    end
    -- and the other way round: the input named through the link
    expect(2, campaign({"bulk-update", dir .. "/soft.ndjson", "--report", input}))
    assert.equal(content, read_file(input))
    assert.equal(0, patches())
    -- another file is fine
    local result = expect(0, campaign({"bulk-update", input, "--report", dir .. "/report.ndjson"}))
    assert.same({3, 3, 0}, {json_out(result).total, json_out(result).ok, json_out(result).failed})
  end)

  it("tells the same file by device and inode with LuaFileSystem and with stat(1) alone", function()
    local cli = require "campaign.cli"
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. sh(dir)))
    finally(function() os.execute("rm -rf " .. sh(dir)) end)
    local a = write_file(dir .. "/it's a.ndjson", "{}\n")
    local copy = write_file(dir .. "/copy.ndjson", "{}\n")
    assert(os.execute("ln " .. sh(a) .. " " .. sh(dir .. "/hard")))
    assert(os.execute("ln -s " .. sh(a) .. " " .. sh(dir .. "/soft")))
    local function check()
      assert.is_true(cli._same_file(a, dir .. "/hard"))
      assert.is_true(cli._same_file(dir .. "/soft", a))
      assert.is_false(cli._same_file(a, copy))
      assert.is_false(cli._same_file(a, dir .. "/missing"))
    end
    check()
    -- as where LuaFileSystem is not installed
    local saved_loaded, saved_preload = package.loaded.lfs, package.preload.lfs
    package.loaded.lfs, package.preload.lfs = nil, function() error("no lfs here") end
    local ok, err = pcall(check)
    package.loaded.lfs, package.preload.lfs = saved_loaded, saved_preload
    assert(ok, err)
  end)

  it("counts what was sent, not what the first pass counted, when the file changes meanwhile", function()
    local list = profiles(5)
    local rows = {}
    for i, p in ipairs(list) do rows[i] = {PKey = p.PKey, phone = "0711" .. i} end
    local input = write_file(fresh_name(".ndjson"), ndjson(rows))
    local report = os.tmpname()
    -- `--emulator` runs the launcher's status between the two passes: this one first cuts the
    -- input to its first two lines, in place (same inode).
    local wrapper = write_file(os.tmpname(), table.concat({
      "#!/bin/sh",
      "head -n 2 " .. sh(input) .. " > " .. sh(input .. ".cut"),
      "cat " .. sh(input .. ".cut") .. " > " .. sh(input),
      "exec " .. sh(emulator.launcher) .. ' "$@"',
    }, "\n") .. "\n")
    finally(function()
      for _, f in ipairs({input, input .. ".cut", report, wrapper}) do os.remove(f) end
    end)
    assert(os.execute("chmod +x " .. sh(wrapper)))
    local result = expect(4, campaign({"--emulator", "--emulator-prefix", emu.prefix, "bulk-update", input,
      "--report", report}, {env = {CAMPAIGN_EMULATOR = wrapper}}))
    local summary = json_out(result)
    assert.same({2, 2, 0, 0}, {summary.total, summary.ok, summary.failed, summary.unknown})
    assert.is_true(summary.input_changed)
    assert.equal(5, summary.counted)
    assert.matches("changed while it was read", result.err, 1, true)
    local lines = report_lines(report)
    assert.equal(2, #lines)
    for i = 1, 2 do
      assert.same({true, "applied", list[i].PKey}, {lines[i].ok, lines[i].outcome, lines[i].PKey})
      assert.equal("0711" .. i, stored(list[i].PKey).phone)
    end
    assert.are_not.equal("07113", stored(list[3].PKey).phone)
  end)
end)

describe("bulk-update outcomes (item 9)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("reports a PATCH that timed out after it was sent as unknown: exit 5, and 4 with a failure", function()
    local list = profiles(3)
    -- The emulator applies the PATCH after the delay, when the client has given up.
    emu:faults{{method = "PATCH", path = pattern(list[1].PKey), delay_ms = 1500}}
    local rows = {{PKey = list[1].PKey, firstName = "Late"}, {PKey = list[2].PKey, firstName = "OnTime"}}
    local report = os.tmpname()
    finally(function() os.remove(report) end)
    local result = expect(5, campaign({"--timeout", "0.5", "--retries", "0", "bulk-update", "-",
      "--concurrency", "1", "--report", report}, {stdin = ndjson(rows)}))
    local summary = json_out(result)
    assert.same({2, 1, 0, 1}, {summary.total, summary.ok, summary.failed, summary.unknown})
    local lines = report_lines(report)
    assert.same({false, "unknown", "timeout"}, {lines[1].ok, lines[1].outcome, lines[1].kind})
    assert.same({firstName = "Late"}, lines[1].changes)
    assert.same({true, "applied"}, {lines[2].ok, lines[2].outcome})
    assert.matches("unknown", result.err)
    os.execute("sleep 1.2")
    assert.equal("Late", stored(list[1].PKey).firstName)   -- it had been applied: not "failed"

    -- A 500 is a failure: exit 4 even with an unknown item beside it.
    emu:faults{{method = "PATCH", path = pattern(list[1].PKey), delay_ms = 1500},
      {method = "PATCH", path = pattern(list[3].PKey), status = 500,
       body = '{"code":500,"message":"RST-360011 An error has occurred"}'}}
    rows[2] = {PKey = list[3].PKey, firstName = "Refused"}
    result = expect(4, campaign({"--timeout", "0.5", "--retries", "0", "bulk-update", "-",
      "--concurrency", "1", "--report", report}, {stdin = ndjson(rows)}))
    summary = json_out(result)
    assert.same({2, 0, 1, 1}, {summary.total, summary.ok, summary.failed, summary.unknown})
    lines = report_lines(report)
    assert.same({"unknown", "failed"}, {lines[1].outcome, lines[2].outcome})
    os.execute("sleep 1.2")
  end)

  it("a rerun on the failed lines never sends a report line's own fields as changes", function()
    local list = profiles(2)
    local input = cjson.encode({PKey = list[1].PKey, phone = "0722"}) .. "\n" ..
      cjson.encode({PKey = list[2].PKey}) .. "\n"              -- nothing to change: an input failure
    local report = os.tmpname()
    finally(function() os.remove(report) end)
    expect(4, campaign({"bulk-update", "-", "--report", report}, {stdin = input}))
    local failed = {}
    for text in read_file(report):gmatch("[^\n]+") do
      if text:find('"ok":false', 1, true) then failed[#failed + 1] = text end
    end
    assert.equal(1, #failed)
    emu:clear_requests()
    local rerun = expect(4, campaign({"bulk-update", "-"}, {stdin = table.concat(failed, "\n")}))
    assert.same({1, 0, 1}, {json_out(rerun).total, json_out(rerun).ok, json_out(rerun).failed})
    assert.matches("report line without changes", rerun.err, 1, true)
    assert.equal(0, patches())
  end)
end)

describe("control characters from the server (item 12)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  local function assert_clean(text, where)
    for _, bad in ipairs({"\27", "\7", "\194\155", "\127", "\255"}) do
      assert(not text:find(bad, 1, true), where .. " holds a raw control: " .. text)
    end
  end

  it("escapes them in error lines, --verbose lines and bulk failure lines on stderr", function()
    local list = profiles(1)
    emu:faults{
      {method = "GET", path = "/nothing1$", status = 404,
       body = '{"code":404,"message":"gone \\u001b[2J\\u001b]0;pwned\\u0007 \\u009b31m"}'},
      {method = "GET", path = "/nothing2$", status = 500, body = "plain \27[2J\27]0;pwned\7 \255 x"},
      {method = "PATCH", path = pattern(list[1].PKey), status = 500,
       body = '{"code":500,"message":"RST-360011 \\u001b[31mred\\u001b[0m"}'},
    }
    local first = expect(1, campaign({"get", "profileAndServices/nothing1"}))
    assert_clean(first.err, "stderr")
    assert.matches("gone \\x1b[2J\\x1b]0;pwned\\x07 \\u009b31m", first.err, 1, true)
    local second = expect(1, campaign({"-v", "get", "profileAndServices/nothing2"}))
    assert_clean(second.err, "stderr")
    assert.matches("plain \\x1b[2J", second.err, 1, true)
    local bulk = expect(4, campaign({"bulk-update", "-"},
      {stdin = cjson.encode({PKey = list[1].PKey, phone = "1"}) .. "\n"}))
    assert_clean(bulk.err, "stderr")
    assert.matches("RST-360011 \\x1b[31mred", bulk.err, 1, true)
  end)

  it("writes DEL and C1 controls in JSON output as \\u escapes (the same JSON value)", function()
    local list = profiles(1)
    local value = "a\127b\194\155c\27d"
    assert.equal(200, (emu:call("PATCH", "profileAndServices/profile/" .. list[1].PKey, {lastName = value})))
    local result = expect(0, campaign({"profile", "get", list[1].PKey}))
    assert_clean(result.out, "stdout")
    assert.equal(value, json_out(result).lastName)
    local listing = expect(0, campaign({"profile", "list", "--limit", "1", "--order", "email"}))
    assert_clean(listing.out, "stdout")
    assert.equal(value, json_out(listing)[1].lastName)
  end)

  it("output helpers: escape (keeping what is asked), json_safe, to_utf8", function()
    assert.equal("a\\x1bb\n", output.escape("a\27b\n", "\n\r\t"))
    assert.equal("\\u009b \\x7f \\xff é\\x09", output.escape("\194\155 \127 \255 é\t"))
    assert.equal('{"a":"\\u007f\\u0085 é"}', output.json_safe('{"a":"\127\194\133 é"}'))
    assert.equal("ok \\xfe é \n", output.to_utf8("ok \254 é \n"))
  end)
end)

-- Since the C client makes every message valid UTF-8 at its source (item 5), a server's stray
-- bytes reach the report as U+FFFD; the CLI's own fallback (\xNN) stays as defence in depth.
describe("a report line from a server's non-UTF-8 error body (items 5 and 14b)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("is written with the invalid bytes replaced, and the run goes on", function()
    local list = profiles(3)
    emu:faults{{method = "PATCH", path = pattern(list[1].PKey), status = 500,
      body = "broken \255\254 message"}}
    local rows = {}
    for i, p in ipairs(list) do rows[i] = {PKey = p.PKey, phone = "0733" .. i} end
    local report = os.tmpname()
    finally(function() os.remove(report) end)
    local result = expect(4, campaign({"bulk-update", "-", "--report", report}, {stdin = ndjson(rows)}))
    assert.same({3, 2, 1}, {json_out(result).total, json_out(result).ok, json_out(result).failed})
    local lines = report_lines(report)
    assert.equal(3, #lines)
    local replacement = "\239\191\189"   -- U+FFFD
    assert.matches("broken " .. replacement .. replacement .. " message", lines[1].error, 1, true)
    assert.same({phone = "07331"}, lines[1].changes)
    assert.same({true, true}, {lines[2].ok, lines[3].ok})
  end)
end)

-- Signals go through the C module's campaign.trap_signals (a flag set by the handler, checked by
-- every client call); without it the interpreter's hook would lose the first Ctrl-C.
local it_signals = it

describe("bulk-update stopped by a signal (item 4)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  -- Starts bulk-update in the background (job control on, so SIGINT is not ignored), sends
  -- `signal` after `after` seconds, and returns {code, out, err} once it exited.
  local function interrupted_run(argv, stdin, signal, after)
    local out_path, err_path, in_path, rc_path = os.tmpname(), os.tmpname(), write_file(os.tmpname(), stdin),
      os.tmpname()
    local script = "set -m; " .. command_line(argv) .. " >" .. out_path .. " 2>" .. err_path ..
      " <" .. in_path ..
      " & pid=$!; sleep " .. after .. "; kill -" .. signal .. " $pid; wait $pid; echo $? >" .. rc_path
    -- bash's own job notices (the command line, environment included) are not the CLI's output
    os.execute("bash -c " .. sh(script) .. " 2>/dev/null")
    local result = {code = tonumber(read_file(rc_path)), out = read_file(out_path), err = read_file(err_path)}
    for _, f in ipairs({out_path, err_path, in_path, rc_path}) do os.remove(f) end
    return result
  end

  local function check_stopped_run(signal, code, extra)
    local list = profiles(100)
    local rows = {}
    for i, p in ipairs(list) do rows[i] = {PKey = p.PKey, phone = "0744" .. i} end
    emu:faults{{method = "PATCH", delay_ms = 40, times = -1}}
    local report = os.tmpname()
    finally(function() os.remove(report) end)
    local argv = {"bulk-update", "-", "--concurrency", "2", "--report", report, "--no-progress"}
    for _, word in ipairs(extra or {}) do argv[#argv + 1] = word end
    local result = interrupted_run(argv, ndjson(rows), signal, 0.6)
    expect(code, result)
    emu:clear_faults()
    local summary = json_out(result)
    local lines = report_lines(report)
    assert.equal(100, #lines, "every input item has its report line")
    local count = {applied = 0, unknown = 0, not_sent = 0, failed = 0}
    for i, line in ipairs(lines) do
      assert.equal(list[i].PKey, line.PKey)
      count[line.outcome] = count[line.outcome] + 1
      if line.outcome == "applied" then
        assert.equal("0744" .. i, stored(line.PKey).phone)
      else
        assert.is_false(line.ok)
        assert.same({phone = "0744" .. i}, line.changes)
        if line.outcome == "not_sent" then
          assert.equal("interrupted", line.kind)
          assert.are_not.equal("0744" .. i, stored(line.PKey).phone)
        end
      end
    end
    assert.is_true(count.applied > 0 and count.not_sent > 0, cjson.encode(count))
    assert.same({count.applied, count.unknown, count.not_sent},
      {summary.ok, summary.unknown, summary.not_sent})
    assert.matches("interrupted by " .. (signal == "INT" and "SIGINT" or "SIGTERM"), result.err, 1, true)
    assert.matches("grep '\"ok\":false' ", result.err, 1, true)
    -- The documented recipe finishes the job.
    local failed = {}
    for text in read_file(report):gmatch("[^\n]+") do
      if text:find('"ok":false', 1, true) then failed[#failed + 1] = text end
    end
    local rerun = json_out(expect(0, campaign({"bulk-update", "-"}, {stdin = table.concat(failed, "\n")})))
    assert.equal(#failed, rerun.ok)
    for i, p in ipairs(list) do assert.equal("0744" .. i, stored(p.PKey).phone) end
  end

  it_signals("SIGINT: exit 130, every item reported, the recipe finishes", function()
    check_stopped_run("INT", 130)
  end)

  it_signals("SIGTERM: exit 143", function()
    check_stopped_run("TERM", 143)
  end)

  it_signals("SIGINT with --verify: exit 130, not the usage code", function()
    check_stopped_run("INT", 130, {"--verify"})
  end)
end)
