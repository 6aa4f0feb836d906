-- The emulator's asynchronous statuses (emu.progress): transactional events, privacy requests
-- and workflow commands move on over time, evaluated on GET, with the admin config's durations
-- and outcomes (fail, stall).
local emulator = require "emulator"

local function sleep(s) os.execute("sleep " .. s) end

describe("emulator progress", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function() emu:reset() end)
  teardown(function() emu:reset() end)

  local function get(path) return emu:call("GET", path) end

  describe("transactional events", function()
    local function send()
      local status, ev = emu:call("POST", "mcacme/EVTcartAbandonment", { email = "a@b.c" })
      assert.equals(201, status)
      return ev
    end
    local function status_of(ev) return select(2, get(ev.href)).status end

    it("go pending -> processing -> processed over the configured times, hiding their clock", function()
      emu:config { event_pending = 0.3, event_processing = 0.3 }
      local ev = send()
      assert.equals("pending", ev.status)
      assert.is_nil(ev._since)
      local _, again = get(ev.href)
      assert.equals("pending", again.status)
      assert.is_nil(again._since)
      sleep(0.35)
      assert.equals("processing", status_of(ev))
      sleep(0.3)
      assert.equals("processed", status_of(ev))
      -- the SDK's POST reads the same
      local _, posted = emu:call("POST", ev.href, {})
      assert.equals("processed", posted.status)
    end)

    it("end in the configured failure status, or stall in pending", function()
      emu:config { event_pending = 0, event_processing = 0, event_outcome = "deliveryFailed" }
      assert.equals("deliveryFailed", status_of(send()))
      emu:config { event_outcome = "stall" }
      local stalled = send()
      sleep(0.1)
      assert.equals("pending", status_of(stalled))
      -- a stall lifted: the event moves on by its age
      emu:config { event_outcome = "processed" }
      assert.equals("processed", status_of(stalled))
    end)

    it("keep a status set through the admin API, and restart their clock from it", function()
      emu:config { event_pending = 0.2, event_processing = 10 }
      local ev = send()
      emu:patch_record("event", ev.PKey, { status = "tooOld" })
      sleep(0.25)
      assert.equals("tooOld", status_of(ev))
      emu:patch_record("event", ev.PKey, { status = "pending" })
      assert.equals("pending", status_of(ev))
      sleep(0.25)
      assert.equals("processing", status_of(ev))
    end)

    it("refuses unknown outcomes and negative times (400), changing nothing", function()
      for _, bad in ipairs { { event_outcome = "delivered" }, { event_pending = -1 },
        { privacy_outcome = "done" }, { workflow_outcome = "broken" }, { workflow_delay = -0.5 } } do
        local status, body = emu:call("POST", "/_emulator/config", bad, { auth = false })
        assert.equals(400, status)
        assert.matches("config key", body.error)
      end
      local _, config = emu:call("GET", "/_emulator/config", nil, { auth = false })
      assert.equals("processed", config.event_outcome)
      assert.equals(1, config.event_pending)
      assert.equals(0, config.workflow_delay)
    end)
  end)

  describe("privacy requests", function()
    local function create()
      local status, req = emu:call("POST", "privacy/privacyTool", { name = "PT1", namespaceName = "AMCDS2",
        reconciliationValue = "amy.dakota@mail.com", regulation = "gdpr", type = "access" })
      assert.equals(201, status)
      return req
    end

    it("go new -> processing -> complete, in the record and in the listing", function()
      emu:config { privacy_new = 0.2, privacy_processing = 0.2 }
      local req = create()
      assert.equals("new", req.status)
      assert.is_nil(req._since)
      sleep(0.25)
      assert.equals("processing", select(2, get(req.href)).status)
      sleep(0.2)
      local _, list = get("privacy/privacyTool")
      assert.equals("complete", list.content[1].status)
      assert.is_nil(list.content[1]._since)
    end)

    it("end in the configured error status, or stall in new", function()
      emu:config { privacy_new = 0, privacy_processing = 0, privacy_outcome = "errorDataNotFound" }
      assert.equals("errorDataNotFound", select(2, get(create().href)).status)
      emu:config { privacy_outcome = "stall" }
      local req = create()
      sleep(0.1)
      assert.equals("new", select(2, get(req.href)).status)
    end)
  end)

  describe("workflows", function()
    local function state(id) return select(2, get("workflow/execution/" .. id)).state end
    local function command(id, method)
      return emu:call("POST", "workflow/execution/" .. id .. "/commands", { method = method })
    end

    it("apply a command after workflow_delay (the state shown until then is the old one)", function()
      emu:config { workflow_delay = 0.3 }
      local _, before = get("workflow/execution/WKF2")
      assert.equals(200, (command("WKF2", "start")))
      assert.equals("stopped", state("WKF2"))
      sleep(0.35)
      local _, after = get("workflow/execution/WKF2")
      assert.equals("started", after.state)
      assert.is_nil(after._transition)
      assert.are_not.equal(before.lastModified, after.lastModified)
    end)

    it("run WKF2 to its end when its signal2 is triggered (state stopped)", function()
      assert.equals(200, (command("WKF2", "start")))
      assert.equals("started", state("WKF2"))
      local _, wf = get("workflow/execution/WKF2")
      assert.equals(200, (emu:call("POST", wf.activities.activity.signal2.trigger.href, { source = "API" })))
      assert.equals("stopped", state("WKF2"))
      -- WKF1's signal1 leaves it running
      local _, one = get("workflow/execution/WKF1")
      assert.equals(200, (emu:call("POST", one.activities.activity.signal1.trigger.href, { source = "API" })))
      assert.equals("started", state("WKF1"))
    end)

    it("fail into state error (which can be started again), or stall", function()
      emu:config { workflow_outcome = "error" }
      assert.equals(200, (command("WKF2", "start")))
      assert.equals("error", state("WKF2"))
      emu:config { workflow_outcome = "normal" }
      assert.equals(200, (command("WKF2", "start")))
      assert.equals("started", state("WKF2"))
      emu:config { workflow_outcome = "stall" }
      assert.equals(200, (command("WKF2", "stop")))
      sleep(0.1)
      assert.equals("started", state("WKF2"))
      -- a state set through the admin API drops a change still pending
      emu:config { workflow_outcome = "normal", workflow_delay = 0.2 }
      assert.equals(200, (command("WKF2", "pause")))
      local wf = select(2, get("workflow/execution/WKF2"))
      emu:patch_record("workflow", wf.PKey, { state = "stopped" })
      sleep(0.25)
      assert.equals("stopped", state("WKF2"))
    end)
  end)
end)
