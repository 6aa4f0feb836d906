-- The workflows of campaign/workflow/*.lua run unchanged with campaign.ngx inside a handler,
-- and their waits sleep with ngx.sleep (campaign.clock): the worker keeps serving meanwhile.
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("campaign.workflow's waiting workflows with campaign.ngx in a handler", function()
  local emu, srv, params

  setup(function()
    emu = emulator.shared()
    srv = harness.start { workers = 1 }
    params = { emu = harness.emu_params(emu) }
  end)

  teardown(function()
    if srv then srv:stop() end
    emu:fresh()
  end)

  before_each(function()
    emu:fresh()
  end)

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  local function statuses(history)
    local out = {}
    for i, h in ipairs(history or {}) do out[i] = h.status end
    return out
  end

  it("send_and_track follows an event to processed, and reports a failure status", function()
    emu:config { event_pending = 0.05, event_processing = 0.05 }
    local r = eval([[
      local wf = require "campaign.workflow"
      local polls = 0
      local event, history = wf.send_and_track(client(), "EVTcartAbandonment", { email = "a@b.c" },
        { poll = 0.02, deadline = 5, on_poll = function() polls = polls + 1 end })
      return { event = event, history = history, polls = polls }
    ]])
    assert.equal("processed", r.event.status)
    assert.same({ "pending", "processing", "processed" }, statuses(r.history))
    assert.is_true(r.polls >= 3)
    emu:config { event_outcome = "routingFailed" }
    local f = eval([[
      local event, err = require("campaign.workflow").send_and_track(client(), "EVTcartAbandonment",
        { email = "a@b.c" }, { poll = 0.02, deadline = 5 })
      return { event = event or false, kind = err.kind, last = err.last_status, msg = tostring(err) }
    ]])
    assert.is_false(f.event)
    assert.equal("event_failed", f.kind)
    assert.equal("routingFailed", f.last)
  end)

  -- A ticker thread beside the wait counts how often the worker gets to run it: a wait that
  -- slept with a blocking sleep would leave it a handful of ticks instead of ~50.
  local TICKER = [[
    local wf = require "campaign.workflow"
    ngx.update_time()
    local t0, ticks, done = ngx.now(), 0, false
    local th = ngx.thread.spawn(function()
      local event, err = wf.send_and_track(client(), "EVTcartAbandonment", { email = "a@b.c" },
        { poll = 0.05, deadline = 0.5, sleep = %s })
      done = true
      return { ok = event ~= nil, kind = err and err.kind, last = err and err.last_status,
        polls = err and err.polls }
    end)
    while not done do ngx.sleep(0.01); ticks = ticks + 1 end
    local _, out = ngx.thread.wait(th)
    ngx.update_time()
    out.ticks, out.elapsed = ticks, ngx.now() - t0
    return out
  ]]

  it("a stalled event times out at its deadline, and the wait never blocks the worker", function()
    emu:config { event_outcome = "stall" }
    local r = eval(TICKER:format("nil"))
    assert.is_false(r.ok)
    assert.equal("timeout", r.kind)
    assert.equal("pending", r.last)
    assert.is_true(r.elapsed >= 0.5 and r.elapsed < 1.5, tostring(r.elapsed))
    assert.is_true(r.ticks >= 30, "the ticker ran " .. r.ticks .. " times in " .. r.elapsed .. " s")
    -- control: the same wait with the C module's blocking sleep starves the ticker
    local blocking = eval(TICKER:format("campaign.sleep"))
    assert.equal("timeout", blocking.kind)
    assert.is_true(blocking.ticks < 20, "control: the ticker ran " .. blocking.ticks .. " times")
  end)

  it("upsert_profile, subscribe_and_verify, unsubscribe_and_verify, gdpr_request_and_fetch, "
    .. "run_workflow_and_wait, signal_and_wait", function()
    emu:config { privacy_new = 0.03, privacy_processing = 0.03, workflow_delay = 0.05 }
    local r = eval([[
      local wf = require "campaign.workflow"
      local c = client()
      local fast = { poll = 0.02, deadline = 5 }
      local out = {}
      local profile, how = wf.upsert_profile(c, "nginx.user@example.com", { firstName = "Ngx" })
      out.upsert = { how = how, first = profile and profile.firstName }
      local sub, shown = wf.subscribe_and_verify(c, profile.PKey, "SVC2")
      out.subscribe = { how = shown, service = sub and sub.serviceName }
      local gone, unshown = wf.unsubscribe_and_verify(c, profile.PKey, "SVC2")
      out.unsubscribe = { gone = gone, how = unshown }
      local data, request, history = wf.gdpr_request_and_fetch(c, { name = "PT9", namespaceName = "AMCDS2",
        reconciliationValue = "amy.dakota@mail.com", regulation = "gdpr" }, fast)
      out.gdpr = { data = data, status = request and request.status, history = history }
      local started = wf.run_workflow_and_wait(c, "WKF2", fast)
      out.run = started and started.state
      local ended, ehistory = wf.signal_and_wait(c, "WKF2", { parameters = { audience = "x" } }, fast)
      out.signal = { state = ended and ended.state, history = ehistory }
      return out
    ]])
    assert.same({ how = "created", first = "Ngx" }, r.upsert)
    assert.same({ how = "subscribed", service = "SVC2" }, r.subscribe)
    assert.same({ gone = true, how = "unsubscribed" }, r.unsubscribe)
    assert.matches("amy.dakota@mail.com", r.gdpr.data, 1, true)
    assert.equal("complete", r.gdpr.status)
    assert.same({ "new", "processing", "complete" }, statuses(r.gdpr.history))
    assert.equal("started", r.run)
    assert.equal("stopped", r.signal.state)
    assert.same({ "started", "stopped" }, statuses(r.signal.history))
  end)
end)
