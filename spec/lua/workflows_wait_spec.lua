-- campaign.workflow.wait, the polling loop of every waiting workflow, on a fake clock: its
-- backoff (x1.5 up to the cap), the deadline (the last sleep cut to it, one more poll there),
-- on_poll, the verdicts, fetch failures; and the option checks the workflows share.
local campaign = require "campaign"
local wait = require "campaign.workflow.wait"
local common = require "campaign.workflow.common"

-- A fake clock: sleep advances it; statuses are returned in order, the last one repeated.
local function scripted(statuses, opts)
  local t = 0
  local sleeps, fetches = {}, 0
  opts = opts or {}
  opts.clock = function() return t end
  opts.sleep = function(s) sleeps[#sleeps + 1] = s; t = t + s end
  local spec = {
    opts = opts, started = 0,
    fetch = function()
      fetches = fetches + 1
      local s = statuses[math.min(fetches, #statuses)]
      if type(s) == "table" then return nil, s end
      return { status = s, n = fetches }
    end,
    status = function(rec) return rec.status end,
    classify = function(status)
      if status == "ok" then return "done" end
      if status == "bad" then return "failed" end
    end,
    what = "thing T", path = "things/T", failed_kind = "thing_failed",
  }
  return spec, sleeps, function() return fetches end
end

local function close(a, b) return math.abs(a - b) < 1e-9 end

describe("campaign.workflow.wait.poll", function()
  it("polls at once, then backs off x1.5 up to max_poll, and returns the record and the history", function()
    local spec, sleeps = scripted({ "a", "a", "b", "b", "b", "b", "ok" }, { poll = 1, max_poll = 3 })
    local record, history = wait.poll(spec)
    assert.equal("ok", record.status)
    assert.equal(7, record.n)
    assert.equal(6, #sleeps)
    for i, want in ipairs { 1, 1.5, 2.25, 3, 3, 3 } do assert.is_true(close(want, sleeps[i]), i) end
    assert.same({ { status = "a", elapsed = 0 }, { status = "b", elapsed = 2.5 },
      { status = "ok", elapsed = 13.75 } }, history)
  end)

  it("defaults: poll 1 s, cap 30 s, deadline 300 s (timeout at 300 s, after a last poll there)", function()
    local spec, sleeps, fetches = scripted({ "a" })
    local record, err = wait.poll(spec)
    assert.is_nil(record)
    assert.equal("timeout", err.kind)
    local total, biggest = 0, 0
    for _, s in ipairs(sleeps) do total, biggest = total + s, math.max(biggest, s) end
    assert.is_true(close(300, total))
    assert.equal(30, biggest)
    assert.equal(#sleeps + 1, fetches())
    assert.equal(300, err.deadline)
    assert.equal(300, err.elapsed)
    assert.equal(fetches(), err.polls)
    assert.equal("a", err.last_status)
    assert.same({ { status = "a", elapsed = 0 } }, err.status_history)
    assert.equal("GET", err.method)
    assert.equal("things/T", err.path)
    assert.equal("a", err.record.status)
    assert.matches("thing T is still 'a' at the deadline %(300 s, %d+ polls%)", err.message)
    assert.matches("^campaign: GET things/T %-> timeout: ", tostring(err))
  end)

  it("cuts the last sleep to the deadline and polls once more there", function()
    local spec, sleeps = scripted({ "a" }, { poll = 2, deadline = 5 })
    local _, err = wait.poll(spec)
    assert.equal("timeout", err.kind)
    -- 2, 3 (= 2 x 1.5), then 0 left: 2 + 3 = 5
    assert.same({ 2, 3 }, sleeps)
    assert.equal(3, err.polls)
    assert.equal(5, err.elapsed)
  end)

  it("deadline 0: one poll, then the timeout", function()
    local spec, sleeps, fetches = scripted({ "a" }, { deadline = 0 })
    local _, err = wait.poll(spec)
    assert.equal("timeout", err.kind)
    assert.equal(0, #sleeps)
    assert.equal(1, fetches())
  end)

  it("a 'failed' verdict: nil, err of the spec's kind with the status history", function()
    local spec = scripted({ "a", "bad" }, { poll = 0.5 })
    local _, err = wait.poll(spec)
    assert.is_true(campaign.is_error(err))
    assert.equal("thing_failed", err.kind)
    assert.equal("bad", err.last_status)
    assert.same({ "a", "bad" }, { err.status_history[1].status, err.status_history[2].status })
    assert.equal("bad", err.record.status)
    assert.equal("thing T ended in status 'bad'", err.message)
  end)

  it("uses a record already in hand first (the initiating request's answer)", function()
    local spec, sleeps, fetches = scripted({ "ok" }, { poll = 0.5 })
    spec.first = { status = "a" }
    local record, history = wait.poll(spec)
    assert.equal("ok", record.status)
    assert.same({ 0.5 }, sleeps)
    assert.equal(1, fetches())
    assert.equal(2, #history)
  end)

  it("calls on_poll(record, elapsed) after every read, the last one included", function()
    local seen = {}
    local spec = scripted({ "a", "b", "ok" }, { poll = 1, on_poll = function(rec, elapsed)
      seen[#seen + 1] = rec.status .. "@" .. elapsed
    end })
    assert.is_table((wait.poll(spec)))
    assert.same({ "a@0", "b@1", "ok@2.5" }, seen)
  end)

  it("an error raised by on_poll goes through", function()
    local spec = scripted({ "a" }, { on_poll = function() error("stop here", 0) end })
    assert.has_error(function() wait.poll(spec) end, "stop here")
  end)

  it("returns a fetch failure as it is, with the history so far", function()
    local failure = campaign.error { kind = "http", status = 404, message = "gone" }
    local spec = scripted({ "a", failure }, { poll = 1 })
    local record, err = wait.poll(spec)
    assert.is_nil(record)
    assert.equal(failure, err)
    assert.equal("http", err.kind)
    assert.equal("a", err.last_status)
    assert.equal(1, #err.status_history)
  end)

  it("counts the deadline from `started` (the initiating request's time included)", function()
    local spec, sleeps = scripted({ "a" }, { poll = 1, deadline = 3 })
    spec.started = -2.5 -- the workflow began 2.5 s before the first poll
    local _, err = wait.poll(spec)
    assert.equal("timeout", err.kind)
    assert.same({ 0.5 }, sleeps)
  end)
end)

describe("campaign.workflow.common.check_opts (the workflows' option checks)", function()
  local spec = { deadline = "nonnegative", poll = "positive", on_poll = "func", state = "names" }

  it("accepts nil and known keys of the right type", function()
    assert.same({}, common.check_opts("x", nil, spec))
    local o = { deadline = 0, poll = 0.01, on_poll = print, state = { "a", "b" } }
    assert.equal(o, common.check_opts("x", o, spec))
  end)

  it("raises for an unknown key, naming the known ones", function()
    assert.has_error(function() common.check_opts("send_and_track", { dedline = 5 }, spec) end,
      "campaign.workflow.send_and_track: unknown opts key 'dedline' (known: deadline, on_poll, poll, state)")
  end)

  it("raises for a wrong type or value", function()
    assert.has_error(function() common.check_opts("x", { poll = 0 }, spec) end,
      "campaign.workflow.x: opts.poll must be a number > 0 (got number)")
    assert.has_error(function() common.check_opts("x", { deadline = "5" }, spec) end,
      "campaign.workflow.x: opts.deadline must be a number >= 0 (got '5')")
    assert.has_error(function() common.check_opts("x", { on_poll = true }, spec) end,
      "campaign.workflow.x: opts.on_poll must be a function (got boolean)")
    assert.has_error(function() common.check_opts("x", { state = {} }, spec) end,
      "campaign.workflow.x: opts.state must be a name or a list of names (got table)")
    assert.has_error(function() common.check_opts("x", "fast", spec) end,
      "campaign.workflow.x: bad argument 'opts' (table or nil expected, got string)")
    assert.has_error(function() common.check_opts("x", { [1] = true }, spec) end,
      "campaign.workflow.x: unknown opts key '1' (known: deadline, on_poll, poll, state)")
  end)

  it("wait.check refuses max_poll below poll", function()
    assert.has_error(function() wait.check("x", { poll = 2, max_poll = 1 }) end,
      "campaign.workflow.x: opts.max_poll (1) must be >= opts.poll (2)")
  end)
end)
