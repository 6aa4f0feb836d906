-- workflow.send_and_track against the emulator through the libcurl client: the event moves
-- pending -> processing -> its outcome (emulator config), followed with backoff to the end,
-- a failure status, a stall to the deadline. Times are tens of milliseconds.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

describe("workflow.send_and_track against the emulator", function()
  local emu, client
  local EVENT = { email = "jack@mail.com", ctx = { firstName = "Jack" } }
  local FAST = { poll = 0.02, deadline = 5 }

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    emu:config { event_pending = 0.06, event_processing = 0.06 }
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
  end)

  teardown(function() emu:fresh() end)

  local function statuses(history)
    local out = {}
    for i, h in ipairs(history) do out[i] = h.status end
    return out
  end

  it("sends the event and polls it until processed, returning it and the status history", function()
    local polls = {}
    local opts = { poll = 0.02, deadline = 5, on_poll = function(rec, elapsed)
      polls[#polls + 1] = { rec.status, elapsed }
    end }
    local event, history = workflow.send_and_track(client, "EVTcartAbandonment", EVENT, opts)
    assert.is_table(event, tostring(history))
    assert.equal("processed", event.status)
    assert.same({ "pending", "processing", "processed" }, statuses(history))
    assert.is_true(history[3].elapsed >= 0.12 and history[3].elapsed < 2, tostring(history[3].elapsed))
    assert.equal("processed", polls[#polls][1])
    assert.equal(#polls, #emu:requests()) -- the POST answer and one GET per later read
    local r = emu:requests()
    assert.equal("POST", r[1].method)
    assert.matches("/acme/campaign/mcacme/EVTcartAbandonment$", r[1].uri)
    for i = 2, #r do
      assert.equal("GET", r[i].method)
      assert.matches("/mcacme/EVTcartAbandonment/" .. event.PKey .. "$", r[i].uri)
    end
  end)

  it("backs off x1.5 between polls, capped by max_poll", function()
    emu:config { event_pending = 0.3, event_processing = 0 }
    local sleeps = {}
    local clock = require "campaign.clock"
    local _, history = workflow.send_and_track(client, "EVTcartAbandonment", EVENT, { poll = 0.02,
      max_poll = 0.05, deadline = 5, sleep = function(s) sleeps[#sleeps + 1] = s; clock.sleep(s) end })
    assert.is_table(history)
    assert.is_true(#sleeps >= 4)
    assert.near(0.02, sleeps[1], 1e-9)
    assert.near(0.03, sleeps[2], 1e-9)
    assert.near(0.045, sleeps[3], 1e-9)
    for i = 4, #sleeps do assert.near(0.05, sleeps[i], 1e-9) end
  end)

  for _, status in ipairs { "ignored", "deliveryFailed", "routingFailed", "tooOld", "targetingFailed" } do
    it("a terminal failure status (" .. status .. ") is kind 'event_failed' with the history", function()
      emu:config { event_outcome = status }
      local event, err = workflow.send_and_track(client, "EVTcartAbandonment", EVENT, FAST)
      assert.is_nil(event)
      assert.equal("event_failed", err.kind)
      assert.equal(status, err.last_status)
      assert.same({ "pending", "processing", status }, statuses(err.status_history))
      assert.equal(status, err.record.status)
      assert.matches("ended in status '" .. status .. "'", err.message)
    end)
  end

  it("a stalled event is kind 'timeout' at the deadline, still pending", function()
    emu:config { event_outcome = "stall" }
    local t0 = campaign.gettime()
    local event, err = workflow.send_and_track(client, "EVTcartAbandonment", EVENT,
      { poll = 0.02, deadline = 0.3 })
    local took = campaign.gettime() - t0
    assert.is_nil(event)
    assert.equal("timeout", err.kind)
    assert.equal("pending", err.last_status)
    assert.same({ "pending" }, statuses(err.status_history))
    assert.equal(0.3, err.deadline)
    assert.is_true(err.elapsed >= 0.3, tostring(err.elapsed))
    assert.is_true(took >= 0.3 and took < 1.5, tostring(took))
    assert.is_true(err.polls >= 3)
    assert.is_nil(err.curl_code) -- not a transport timeout
    assert.matches("^campaign: GET mcacme/EVTcartAbandonment/@[%w_-]+ %-> timeout: transactional event "
      .. "EVTcartAbandonment/@[%w_-]+ is still 'pending' at the deadline %(0%.3 s, %d+ polls%)$",
      tostring(err))
  end)

  it("paused is not an end: the wait goes on to the deadline", function()
    emu:config { event_outcome = "paused" }
    local event, err = workflow.send_and_track(client, "EVTcartAbandonment", EVENT,
      { poll = 0.02, deadline = 0.4 })
    assert.is_nil(event)
    assert.equal("timeout", err.kind)
    assert.equal("paused", err.last_status)
    assert.same({ "pending", "processing", "paused" }, statuses(err.status_history))
  end)

  it("returns a failing poll as the client's error, with the history so far", function()
    emu:faults { { method = "GET", path = "/EVTcartAbandonment/@", status = 500 } }
    local event, err = workflow.send_and_track(client, "EVTcartAbandonment", EVENT, FAST)
    assert.is_nil(event)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert.equal("pending", err.last_status)
  end)

  it("returns a refused send as the client's error (an event id ACS does not know: 404)", function()
    local event, err = workflow.send_and_track(client, "cartAbandonment", EVENT, FAST)
    assert.is_nil(event)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
  end)

  it("raises for misuse before sending anything", function()
    local function raises(pattern, ...)
      local ok, msg = pcall(workflow.send_and_track, ...)
      assert.is_false(ok)
      assert.matches(pattern, msg)
    end
    raises("bad argument #1 'client'", "c", "EVTx", EVENT)
    raises("bad argument #2 'event_id'", client, nil, EVENT)
    raises("bad argument #2 'event_id' %(it must not contain '/'", client, "EVT/x", EVENT)
    raises("bad argument #3 'event'", client, "EVTx", 12)
    raises("unknown opts key 'timeout'", client, "EVTx", EVENT, { timeout = 3 })
    raises("opts.poll must be a number > 0", client, "EVTx", EVENT, { poll = 0 })
    raises("opts.deadline must be a number >= 0", client, "EVTx", EVENT, { deadline = -1 })
    raises("opts.on_poll must be a function", client, "EVTx", EVENT, { on_poll = "print" })
    raises("opts.max_poll %(0.1%) must be >= opts.poll %(1%)", client, "EVTx", EVENT,
      { poll = 1, max_poll = 0.1 })
    raises("opts.tenant must be a non%-empty string", client, "EVTx", EVENT, { tenant = "" })
    assert.equal(0, #emu:requests())
  end)
end)
