-- workflow.run_workflow_and_wait / signal_and_wait against the emulator through the libcurl
-- client: a command or a signal, then the state (the emulator applies commands after
-- workflow_delay; WKF2's signal2 runs it to its end; workflow_outcome fails or stalls them).
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

describe("workflow.run_workflow_and_wait / signal_and_wait against the emulator", function()
  local emu, client
  local FAST = { poll = 0.02, deadline = 5 }

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    emu:config { workflow_delay = 0.08 }
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
  end)

  teardown(function() emu:fresh() end)

  local function states(history)
    local out = {}
    for i, h in ipairs(history) do out[i] = h.status end
    return out
  end

  describe("run_workflow_and_wait", function()
    it("starts a stopped workflow and waits until it is started", function()
      local wf, history = workflow.run_workflow_and_wait(client, "WKF2", FAST)
      assert.is_table(wf, tostring(history))
      assert.equal("started", wf.state)
      assert.same({ "stopped", "started" }, states(history))
      local r = emu:requests()
      assert.equal("GET", r[1].method)
      assert.equal("POST", r[2].method)
      assert.matches("/workflow/execution/WKF2/commands$", r[2].uri)
      assert.equal('{"method":"start"}', r[2].body)
    end)

    it("sends the other commands and waits for their state (pause, resume, stop)", function()
      for _, step in ipairs { { "pause", "paused" }, { "resume", "started" }, { "stop", "stopped" } } do
        local wf, history = workflow.run_workflow_and_wait(client, "WKF1", { command = step[1], poll = 0.02,
          deadline = 5 })
        assert.is_table(wf, tostring(history))
        assert.equal(step[2], wf.state)
      end
    end)

    it("a state equal to the one before the command counts only once the workflow moved", function()
      -- start, waiting for "stopped": the first reads still show the old "stopped" (the command is
      -- pending); done when lastModified shows the change (here: never, as the start leads to started)
      local wf, err = workflow.run_workflow_and_wait(client, "WKF2", { state = "stopped", poll = 0.02,
        deadline = 0.3 })
      assert.is_nil(wf)
      assert.equal("timeout", err.kind)
      assert.equal("started", err.last_status)
      assert.same({ "stopped", "started" }, states(err.status_history))
    end)

    it("a failed workflow (state error) is kind 'workflow_failed'", function()
      emu:config { workflow_outcome = "error" }
      local wf, err = workflow.run_workflow_and_wait(client, "WKF2", FAST)
      assert.is_nil(wf)
      assert.equal("workflow_failed", err.kind)
      assert.equal("error", err.last_status)
      assert.matches("workflow WKF2 after 'start' ended in state 'error' instead of 'started'", err.message)
    end)

    it("a stalled command is kind 'timeout' at the deadline", function()
      emu:config { workflow_outcome = "stall" }
      local t0 = campaign.gettime()
      local wf, err = workflow.run_workflow_and_wait(client, "WKF2", { poll = 0.02, deadline = 0.25 })
      local took = campaign.gettime() - t0
      assert.is_nil(wf)
      assert.equal("timeout", err.kind)
      assert.equal("stopped", err.last_status)
      assert.is_true(took >= 0.25 and took < 1.5, tostring(took))
      assert.matches("^campaign: GET workflow/execution/WKF2 %-> timeout: workflow WKF2 after 'start' "
        .. "%(waiting for state 'started'%) is still 'stopped' at the deadline", tostring(err))
    end)

    it("returns a refused command as the client's error (start of a started workflow: 500)", function()
      local wf, err = workflow.run_workflow_and_wait(client, "WKF1", FAST)
      assert.is_nil(wf)
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.matches("Cannot start", err.message)
    end)

    it("returns an unknown workflow as the client's 404", function()
      local wf, err = workflow.run_workflow_and_wait(client, "WKF9", FAST)
      assert.is_nil(wf)
      assert.equal(404, err.status)
    end)
  end)

  describe("signal_and_wait", function()
    it("triggers the signal and waits until the workflow ran to its end", function()
      assert.is_table((workflow.run_workflow_and_wait(client, "WKF2", FAST)))
      emu:clear_requests()
      local wf, history = workflow.signal_and_wait(client, "WKF2", { parameters = { audience = "vip" } },
        FAST)
      assert.is_table(wf, tostring(history))
      assert.equal("stopped", wf.state)
      assert.same({ "started", "stopped" }, states(history))
      local r = emu:requests()
      assert.equal("POST", r[2].method)
      assert.matches("/workflow/execution/@[%w_-]+/activities/activity/@[%w_-]+/trigger/$", r[2].uri)
      assert.matches('"source":"API"', r[2].body)
      assert.matches('"audience":"vip"', r[2].body)
    end)

    it("names the activity by name or PKey, and fails for an unknown one (kind 'not_found')", function()
      assert.is_table((workflow.run_workflow_and_wait(client, "WKF2", FAST)))
      local wf, err = workflow.signal_and_wait(client, "WKF2", { activity = "signal9" }, FAST)
      assert.is_nil(wf)
      assert.equal("not_found", err.kind)
      assert.same({ "signal2" }, err.activities)
      assert.equal("workflow WKF2 has no signal activity 'signal9' (it has: signal2)", err.message)
      local done = workflow.signal_and_wait(client, "WKF2", { activity = "signal2", source = "Spec" }, FAST)
      assert.equal("stopped", done.state)
    end)

    it("needs a name when the workflow has several signal activities (kind 'ambiguous')", function()
      local _, wf = emu:call("GET", "workflow/execution/WKF1")
      local two = wf.activities.activity.signal1
      wf.activities.activity.signal3 = { PKey = "@s3", name = "signal3",
        trigger = { href = two.trigger.href } }
      emu:faults { { method = "GET", path = "/workflow/execution/WKF1$", status = 200, body = wf } }
      local res, err = workflow.signal_and_wait(client, "WKF1", nil, FAST)
      assert.is_nil(res)
      assert.equal("ambiguous", err.kind)
      assert.same({ "signal1", "signal3" }, err.activities)
    end)

    it("a workflow that stays running reaches no end: kind 'timeout' at the deadline", function()
      local wf, err = workflow.signal_and_wait(client, "WKF1", {}, { poll = 0.02, deadline = 0.2 })
      assert.is_nil(wf)
      assert.equal("timeout", err.kind)
      assert.equal("started", err.last_status)
    end)

    it("returns ACS's refusal of the trigger (a stopped workflow, an undeclared parameter)", function()
      local wf, err = workflow.signal_and_wait(client, "WKF2", {}, FAST)
      assert.is_nil(wf)
      assert.equal(500, err.status)
      assert.matches("is not started", err.message)
      local _, perr = workflow.signal_and_wait(client, "WKF1", { parameters = { contentURL = "x" } }, FAST)
      assert.equal(500, perr.status)
      assert.matches("'contentURL' parameter isn't defined", perr.message)
    end)

    it("a run that ends in error is kind 'workflow_failed'", function()
      assert.is_table((workflow.run_workflow_and_wait(client, "WKF2", FAST)))
      emu:config { workflow_outcome = "error" }
      local wf, err = workflow.signal_and_wait(client, "WKF2", nil, FAST)
      assert.is_nil(wf)
      assert.equal("workflow_failed", err.kind)
      assert.equal("error", err.last_status)
    end)
  end)

  it("raise for misuse before sending anything", function()
    local function raises(pattern, fn, ...)
      local ok, msg = pcall(fn, ...)
      assert.is_false(ok)
      assert.matches(pattern, msg)
    end
    local run, signal = workflow.run_workflow_and_wait, workflow.signal_and_wait
    raises("bad argument #2 'workflow_id'", run, client, nil)
    raises("bad argument #2 'workflow_id' %(it must not contain '/'", run, client, "WKF/1")
    raises("opts.command must be start, pause, resume or stop %(got 'restart'%)", run, client, "WKF1",
      { command = "restart" })
    raises("unknown opts key 'until'", run, client, "WKF1", { ["until"] = "started" })
    raises("opts.state must be a name or a list of names", run, client, "WKF1", { state = 3 })
    raises("bad argument 'signal' %(table or nil expected, got string%)", signal, client, "WKF1", "signal1")
    raises("unknown signal key 'params'", signal, client, "WKF1", { params = {} })
    raises("unknown opts key 'command'", signal, client, "WKF1", {}, { command = "start" })
    assert.equal(0, #emu:requests())
  end)
end)
