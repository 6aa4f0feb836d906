-- Time-driven statuses: a transactional event goes pending -> processing -> its outcome, a
-- privacy request new -> processing -> complete, a workflow command takes effect after a
-- delay. ACS does all of it asynchronously (ACS:managing-transactional-messages lists the
-- event statuses, ACS:monitoring-a-privacy-request the request statuses, and "starting is an
-- asynchronous process" says the workflow execution page). Nothing runs in the background:
-- each record keeps when it entered its status (`_since`, never rendered) and a GET moves it
-- on by the time elapsed since, with the durations and outcome of the admin config at that
-- moment (emu.state: event_*, privacy_*, workflow_*).
local state = require "emu.state"

local ngx = ngx
local type, pairs = type, pairs

local _M = {}

-- The outcomes the admin config accepts. "stall": the record never leaves its first status.
local EVENT_OUTCOMES = {
  processed = true, ignored = true, deliveryFailed = true, routingFailed = true, tooOld = true,
  targetingFailed = true, paused = true, stall = true,
}
local WORKFLOW_OUTCOMES = { normal = true, stall = true, error = true }

local EVENT_STEPS = { pending = "event_pending", processing = "event_processing" }
local EVENT_NEXT = { pending = "processing" }
local PRIVACY_STEPS = { new = "privacy_new", processing = "privacy_processing" }
local PRIVACY_NEXT = { new = "processing" }

--- Checks the progress keys of a POST config body: nil, or a message for the 400.
function _M.check_config(changes)
  for _, key in pairs { "event_pending", "event_processing", "privacy_new", "privacy_processing",
    "workflow_delay" } do
    local v = changes[key]
    if type(v) == "number" and (v < 0 or v ~= v) then
      return "config key '" .. key .. "' must be a number of seconds >= 0"
    end
  end
  local v = changes.event_outcome
  if type(v) == "string" and not EVENT_OUTCOMES[v] then
    return "config key 'event_outcome' must be processed, ignored, deliveryFailed, routingFailed, "
      .. "tooOld, targetingFailed, paused or stall (got '" .. v .. "')"
  end
  v = changes.privacy_outcome
  if type(v) == "string" and v ~= "complete" and v ~= "stall" and not v:match("^error%w*$") then
    return "config key 'privacy_outcome' must be complete, stall or an error status such as "
      .. "errorDataNotFound (got '" .. v .. "')"
  end
  v = changes.workflow_outcome
  if type(v) == "string" and not WORKFLOW_OUTCOMES[v] then
    return "config key 'workflow_outcome' must be normal, stall or error (got '" .. v .. "')"
  end
  return nil
end

-- Moves rec.status along `steps` (status -> config key of its duration) while its time is
-- up; `next_of` names the status after each step, the last one leads to `outcome`.
-- Returns true when the status changed (the caller stores the record).
local function advance(rec, steps, next_of, outcome)
  local since = rec._since
  if type(since) ~= "number" or outcome == "stall" then return false end
  local now = ngx.now()
  local changed = false
  while true do
    local key = steps[rec.status]
    if not key then break end           -- a final status, or one set through the admin API
    local duration = state.config(key)
    if now - since < duration then break end
    since = since + duration
    rec.status = next_of[rec.status] or outcome
    changed = true
  end
  rec._since = since
  return changed
end

--- A new event or privacy request: its clock starts now.
function _M.start(rec)
  rec._since = ngx.now()
  return rec
end

function _M.advance_event(rec)
  return advance(rec, EVENT_STEPS, EVENT_NEXT, state.config("event_outcome"))
end

function _M.advance_privacy(rec)
  return advance(rec, PRIVACY_STEPS, PRIVACY_NEXT, state.config("privacy_outcome"))
end

--- A copy of the record without the progress bookkeeping, for an answer.
function _M.public(rec)
  local out = {}
  for k, v in pairs(rec) do
    if k ~= "_since" and k ~= "_transition" then out[k] = v end
  end
  return out
end

-- Workflows ----------------------------------------------------------------------------------

--- Applies a workflow's pending state change when its time has come. Returns true when the
-- state changed (the caller stores the record).
function _M.settle_workflow(wf, datetime)
  local t = wf._transition
  if type(t) ~= "table" or ngx.now() < (t.at or 0) then return false end
  wf.state = t.to
  wf._transition = nil
  wf.lastModified = datetime()
  return true
end

--- Schedules the state a command (or a signal that runs the workflow to its end) leads to:
-- after the config's workflow_delay (0: at once), `to`, or "error" when workflow_outcome is
-- "error"; nothing at all when it is "stall" (the command is accepted, the state never moves).
-- A new change replaces one still pending.
function _M.schedule_workflow(wf, to, datetime)
  local outcome = state.config("workflow_outcome")
  if outcome == "stall" then
    wf._transition = nil
    return
  end
  if outcome == "error" then to = "error" end
  local delay = state.config("workflow_delay")
  if delay <= 0 then
    wf._transition = nil
    wf.state = to
    wf.lastModified = datetime()
  else
    wf._transition = { to = to, at = ngx.now() + delay }
  end
end

--- PATCH /_emulator/records/<kind>/<PKey> set a status or a state by hand: the record's clock
-- restarts from there, and a workflow change still pending is dropped.
function _M.patched(rec, body)
  if body.status ~= nil and rec._since ~= nil then rec._since = ngx.now() end
  if body.state ~= nil then rec._transition = nil end
end

return _M
