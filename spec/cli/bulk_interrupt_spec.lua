-- bulk-update stopped by a signal, in-process (red team 2026-12-03, item 4): cli.main runs with
-- a fake client that plays the signal contract of campaign.trap_signals (docs/client.md) or
-- the interpreter's own hook (a raise of "interrupted!" out of client:batch), so the CLI's side
-- is checked whether or not this build of the C module traps signals. The real signals are
-- sent to bin/campaign in spec/cli/bulk_hardening_spec.lua.
local campaign = require "campaign"
local cjson = require "cjson"
local cli = require "campaign.cli"

-- A new temporary name ending in `suffix`: os.tmpname() creates its own (empty) file, which is
-- removed at once so that nothing of it is left in /tmp.
local function fresh_name(suffix)
  local base = os.tmpname()
  os.remove(base)
  return base .. suffix
end

local function buffer()
  local chunks = {}
  return {
    write = function(self, ...)
      for _, s in ipairs({...}) do chunks[#chunks + 1] = s end
      return self
    end,
    flush = function() end,
    text = function() return table.concat(chunks) end,
  }
end

local write_file = require("files").write

local function report_lines(path)
  local lines = {}
  local file = assert(io.open(path, "rb"))
  for text in file:lines() do lines[#lines + 1] = cjson.decode(text) end
  file:close()
  return lines
end

-- A client whose batch answers ok until `stop_at` PATCHes were answered; then the signal
-- arrives: the next item is aborted in flight (sent = true), the others never start
-- (sent = false), and every later call is refused, as campaign.trap_signals promises.
-- mode "raise": the interpreter's hook instead, raising "interrupted!" out of on_result.
local function fake_client(state, stop_at, mode)
  local client = {}
  local function interrupted(sent)
    return campaign.error{kind = "interrupted", sent = sent, message = "interrupted by a signal"}
  end
  function client.get()
    if state.signal then return nil, interrupted(false) end
    return {}, {status = 200}
  end
  function client.batch(_, requests, opts)
    local results = {}
    for k, r in ipairs(requests) do
      local result
      if state.signal then
        result = {err = interrupted(false)}
      elseif r[1] == "GET" then
        result = {status = 200, body = state.stored[r[2]] or {}}
      elseif state.answered == stop_at then
        if mode == "raise" then error("bin/campaign:1: interrupted!", 0) end
        state.signal = state.which
        result = {err = interrupted(true)}
      else
        state.answered = state.answered + 1
        state.stored[r[2]] = r[3]
        result = {status = 200, body = {PKey = "x"}}
      end
      results[k] = result
      if opts and opts.on_result then opts.on_result(k, result) end
    end
    return results
  end
  return client
end

local function with_fake_module(state, client, trap, fn)
  local saved = {new = campaign.new, trap_signals = rawget(campaign, "trap_signals"),
    interrupted = rawget(campaign, "interrupted")}
  campaign.new = function() return client end
  if trap then
    campaign.trap_signals = function() state.trapped = true end
    campaign.interrupted = function() return state.signal end
  else
    campaign.trap_signals, campaign.interrupted = nil, nil
  end
  local ok, err = pcall(fn)
  campaign.new, campaign.trap_signals, campaign.interrupted = saved.new, saved.trap_signals, saved.interrupted
  if not ok then error(err, 0) end
end

local function run(argv, state, client, trap)
  local out, err = buffer(), buffer()
  local code
  local words = {"--org", "acme", "--api-key", "key-0123456789", "--access-token", "token-0123456789"}
  for _, w in ipairs(argv) do words[#words + 1] = w end
  with_fake_module(state, client, trap, function()
    code = cli.main(words, {stdout = out, stderr = err, isatty = function() return false end,
      getenv = function() return nil end, clock = function() return 0 end})
  end)
  return code, out:text(), err:text()
end

describe("bulk-update after a signal (in-process, item 4)", function()
  local input, report
  local N = 40

  before_each(function()
    local rows = {}
    for i = 1, N do rows[i] = cjson.encode({PKey = "@p" .. i, phone = "07" .. i}) end
    rows[7] = '{"PKey": "@p7"}'           -- a bad row: nothing to change
    input = write_file(fresh_name(".ndjson"), table.concat(rows, "\n") .. "\n")
    report = os.tmpname()
  end)

  after_each(function()
    os.remove(input)
    os.remove(report)
  end)

  local function check(code, out, err, expected_code, signal_name, state)
    assert.equal(expected_code, code, err)
    local lines = report_lines(report)
    assert.equal(N, #lines, "a report line for every input item")
    local count = {applied = 0, failed = 0, unknown = 0, not_sent = 0}
    for i, line in ipairs(lines) do
      assert.equal("@p" .. i, line.PKey)
      count[line.outcome] = count[line.outcome] + 1
      if i == 7 then
        assert.same({false, "failed", "input"}, {line.ok, line.outcome, line.kind})
      elseif line.outcome == "applied" then
        assert.is_true(line.ok)
        assert.same({phone = "07" .. i}, state.stored["profileAndServices/profile/@p" .. i])
      else
        assert.is_false(line.ok)
        assert.same({phone = "07" .. i}, line.changes)   -- the rerun recipe needs them
        if line.outcome == "not_sent" then
          assert.equal("interrupted", line.kind)
          assert.is_nil(state.stored["profileAndServices/profile/@p" .. i])
        end
      end
    end
    assert.is_true(count.applied > 0 and count.not_sent > 0)
    local summary = cjson.decode(out)
    assert.same({N, count.applied, count.unknown, count.not_sent, count.failed + count.not_sent},
      {summary.total, summary.ok, summary.unknown, summary.not_sent, summary.failed})
    assert.equal(signal_name, summary.interrupted)
    assert.matches("interrupted by " .. signal_name .. ": " .. count.applied .. " applied, " ..
      count.unknown .. " unknown", err, 1, true)
    assert.matches("grep '\"ok\":false' '" .. report .. "' | campaign bulk-update -", err, 1, true)
    return count
  end

  it("SIGINT through campaign.trap_signals: exit 130, every item in the report", function()
    local state = {answered = 0, stored = {}, which = 2}
    local client = fake_client(state, 13, "trap")
    local code, out, err = run({"bulk-update", input, "--report", report, "--concurrency", "2"}, state,
      client, true)
    assert.is_true(state.trapped)
    local count = check(code, out, err, 130, "SIGINT", state)
    assert.equal(13, count.applied)
    assert.equal(1, count.unknown)
  end)

  it("SIGTERM: exit 143; with --verify too (not the usage code)", function()
    local state = {answered = 0, stored = {}, which = 15}
    local code, out, err = run({"bulk-update", input, "--report", report}, state, fake_client(state, 20),
      true)
    check(code, out, err, 143, "SIGTERM", state)
    state = {answered = 0, stored = {}, which = 15}
    code, out, err = run({"bulk-update", input, "--report", report, "--verify", "--concurrency", "2"},
      state, fake_client(state, 9), true)
    check(code, out, err, 143, "SIGTERM", state)
  end)

  it("the interpreter's own interrupt (no trap_signals): exit 130, the report is kept", function()
    local state = {answered = 0, stored = {}}
    local code, out, err = run({"bulk-update", input, "--report", report, "--concurrency", "2"}, state,
      fake_client(state, 11, "raise"), false)
    local count = check(code, out, err, 130, "SIGINT", state)
    assert.equal(11, count.applied)
  end)
end)
