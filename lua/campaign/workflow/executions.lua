--- campaign.workflow.executions: run_workflow_and_wait and signal_and_wait, an ACS workflow
-- command or signal trigger followed by a wait for the workflow's `state`.
-- ACS applies commands asynchronously ("the request is saved and will be processed as soon
-- as possible by the workflow execution engine"), so the workflow is read before the
-- command, and a state counts only once the workflow has moved since: its state or its
-- lastModified differs from that first read. Without that rule, `start` on a stopped
-- workflow waiting for "stopped" (a workflow that runs to its end) would end at once.
-- The emulator's states are started, paused, stopped, and error (docs/emulator.md); ACS
-- documents none, and third-party descriptions add "finished": it is waited for beside
-- "stopped". No state at module level.
local campaign = require "campaign"
local api = require "campaign.api"
local common = require "campaign.workflow.common"
local wait = require "campaign.workflow.wait"

local type, pairs, tostring = type, pairs, tostring
local table_sort, table_concat = table.sort, table.concat

---@class campaign.workflow.executions
local executions = {}

-- The state(s) each command leads to (opts.state replaces them).
local TARGETS = {
  start = { "started" }, resume = { "started" }, pause = { "paused" }, stop = { "stopped", "finished" },
}
local SIGNAL_TARGETS = { "stopped", "finished" }
local FAILED = { "error" }

local RUN_OPTIONS = { command = "string", state = "names", failed_states = "names" }
local SIGNAL_OPTIONS = { state = "names", failed_states = "names" }
for k, v in pairs(wait.OPTIONS) do RUN_OPTIONS[k], SIGNAL_OPTIONS[k] = v, v end
local SIGNAL_KEYS = { activity = "string", parameters = "table", source = "string" }

local function check_id(fname, workflow_id)
  if type(workflow_id) ~= "string" or workflow_id == "" then
    common.fail(fname, "bad argument #2 'workflow_id' (a workflow id such as 'WKF1' or its PKey "
      .. "expected, got " .. (workflow_id == "" and "empty string" or type(workflow_id)) .. ")", 2)
  end
  common.check_pkey(fname, 2, "workflow_id", workflow_id, 1)
end

local function names(list)
  local out = {}
  for i = 1, #list do out[i] = "'" .. list[i] .. "'" end
  return table_concat(out, " or ")
end

-- Waits for the workflow to reach one of `targets` after having moved since `before`.
local function wait_state(client, workflow_id, before, targets, failed, opts, started, what)
  local target_set, failed_set = common.set(targets), common.set(failed)
  local function moved(rec)
    return rec.state ~= before.state or rec.lastModified ~= before.lastModified
  end
  return wait.poll {
    opts = opts, started = started,
    fetch = function() return api.get_workflow(client, workflow_id) end,
    status = function(rec) return type(rec) == "table" and rec.state or nil end,
    classify = function(state, rec)
      if not moved(rec) then return nil end
      if target_set[state] then return "done" end
      if failed_set[state] then return "failed" end
      return nil
    end,
    what = what .. " (waiting for state " .. names(targets) .. ")",
    path = "workflow/execution/" .. api.key_segment(workflow_id),
    failed_kind = "workflow_failed",
    failed_message = function(state)
      return what .. " ended in state '" .. tostring(state) .. "' instead of " .. names(targets)
    end,
  }
end

local function as_list(v, default)
  if v == nil then return default end
  if type(v) == "string" then return { v } end
  return v
end

--- run_workflow_and_wait(client, workflow_id[, opts]) -> workflow, history | nil, err
-- Reads the workflow (api.get_workflow), sends opts.command (default "start"; pause, resume,
-- stop: api.control_workflow), then polls the workflow through the shared wait
-- (campaign.workflow.wait: opts.deadline, poll, max_poll, on_poll, clock, sleep) until its
-- `state` is one of opts.state (a name or a list; default: start and resume "started",
-- pause "paused", stop "stopped" or "finished"), the workflow having moved since the first
-- read. A state of opts.failed_states (default "error") ends it: nil, err kind
-- "workflow_failed"; the deadline: kind "timeout" (err.last_status, err.status_history).
-- history = {{status = <state>, elapsed =}, ...}. A command ACS refuses (a start of a
-- started workflow: 500) is returned as the client's error.
---@param client campaign.AnyClient
---@param workflow_id string
---@param opts? campaign.workflow.RunOpts
---@return table|nil workflow
---@return campaign.StatusChange[]|campaign.Error history_or_err
function executions.run_workflow_and_wait(client, workflow_id, opts)
  local fname = "run_workflow_and_wait"
  common.check_client(fname, client)
  check_id(fname, workflow_id)
  opts = common.check_opts(fname, opts, RUN_OPTIONS)
  wait.check(fname, opts)
  local command = (opts.command or "start"):lower()
  if not TARGETS[command] then
    common.fail(fname, "opts.command must be start, pause, resume or stop (got '" .. opts.command .. "')")
  end
  local targets = as_list(opts.state, TARGETS[command])
  local failed = as_list(opts.failed_states, FAILED)
  local started = wait.now(opts)

  local before, err = api.get_workflow(client, workflow_id)
  if before == nil then return nil, err end
  if type(before) ~= "table" then
    return nil, campaign.error { kind = "json", message = "the workflow answer is not an object" }
  end
  local answer, cerr = api.control_workflow(client, workflow_id, command)
  if answer == nil then return nil, cerr end
  return wait_state(client, workflow_id, before, targets, failed, opts, started,
    "workflow " .. workflow_id .. " after '" .. command .. "'")
end

-- The activity to trigger: signal.activity (its name or PKey), else the only one with a
-- trigger -> activity name, trigger href | nil, err (not_found, ambiguous; err.activities).
local function pick_activity(wf, wanted, workflow_id)
  local map = type(wf.activities) == "table" and type(wf.activities.activity) == "table"
    and wf.activities.activity or {}
  local available = {}
  for name, a in pairs(map) do
    if type(a) == "table" and type(a.trigger) == "table" and type(a.trigger.href) == "string" then
      available[#available + 1] = tostring(name)
    end
  end
  table_sort(available)
  local function href(name) return map[name].trigger.href end
  if wanted then
    for _, name in pairs(available) do
      if name == wanted or map[name].PKey == wanted or map[name].name == wanted then
        return name, href(name)
      end
    end
    return nil, campaign.error { kind = "not_found", activities = available,
      message = "workflow " .. workflow_id .. " has no signal activity '" .. wanted .. "' (it has: "
        .. (#available > 0 and table_concat(available, ", ") or "none") .. ")" }
  end
  if #available == 1 then return available[1], href(available[1]) end
  if #available == 0 then
    return nil, campaign.error { kind = "not_found", activities = available,
      message = "workflow " .. workflow_id .. " has no signal activity to trigger" }
  end
  return nil, campaign.error { kind = "ambiguous", activities = available,
    message = "workflow " .. workflow_id .. " has " .. #available .. " signal activities ("
      .. table_concat(available, ", ") .. "): name one with signal.activity" }
end

--- signal_and_wait(client, workflow_id, signal[, opts]) -> workflow, history | nil, err
-- signal = {activity = name or PKey (optional when the workflow has one signal activity),
-- parameters = {...}, source = "API" (the default)}, or nil. Reads the workflow, triggers
-- the activity's trigger href (api.trigger_signal_activity; ACS's refusals, the plain-text
-- cooldown answer included, come back as the client's or campaign.api's error), then waits
-- as run_workflow_and_wait does, by default for "stopped" or "finished" (the workflow ran
-- to its end; opts.state = "started" only checks that it still runs). An unknown activity:
-- kind "not_found"; several and none named: "ambiguous" (err.activities).
---@param client campaign.AnyClient
---@param workflow_id string
---@param signal? campaign.workflow.Signal
---@param opts? campaign.workflow.SignalOpts
---@return table|nil workflow
---@return campaign.StatusChange[]|campaign.Error history_or_err
function executions.signal_and_wait(client, workflow_id, signal, opts)
  local fname = "signal_and_wait"
  common.check_client(fname, client)
  check_id(fname, workflow_id)
  signal = common.check_opts(fname, signal, SIGNAL_KEYS, "signal")
  opts = common.check_opts(fname, opts, SIGNAL_OPTIONS)
  wait.check(fname, opts)
  local targets = as_list(opts.state, SIGNAL_TARGETS)
  local failed = as_list(opts.failed_states, FAILED)
  local started = wait.now(opts)

  local before, err = api.get_workflow(client, workflow_id)
  if before == nil then return nil, err end
  if type(before) ~= "table" then
    return nil, campaign.error { kind = "json", message = "the workflow answer is not an object" }
  end
  local name, href = pick_activity(before, signal.activity, workflow_id)
  if name == nil then return nil, href end
  local answer, terr = api.trigger_signal_activity(client, href,
    { parameters = signal.parameters, source = signal.source })
  if answer == nil then return nil, terr end
  return wait_state(client, workflow_id, before, targets, failed, opts, started,
    "workflow " .. workflow_id .. " after signal '" .. name .. "'")
end

return executions
