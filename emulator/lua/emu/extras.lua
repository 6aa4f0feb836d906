-- ACS operations that are not plain record collections: workflows (commands, signal
-- triggers), transactional events (mc<org>/<eventId>) and privacy requests.
local json = require "emu.json"
local util = require "emu.util"
local schema = require "emu.schema"
local store = require "emu.store"
local listing = require "emu.listing"
local records = require "emu.records"
local state = require "emu.state"
local progress = require "emu.progress"

local ngx = ngx

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = {}

local function bad(detail, expr, ...)
  return util.engine_error(500, detail, "XTK-170006 Unable to parse expression '" .. expr .. "'.", ...)
end

-- ---------------------------------------------------------------- workflows

local function lookup_workflow(id)
  if id:sub(1, 1) == "@" then return store.get("workflow", id) end
  for _, wf in ipairs(store.all("workflow")) do
    if wf.internalName == id then return wf end
  end
  return nil
end

-- The workflow as it is now: a command's state change whose delay is over is applied first.
local function find_workflow(id)
  local wf = lookup_workflow(id)
  if wf and progress.settle_workflow(wf, util.datetime) then store.put("workflow", wf) end
  return wf
end

local function render_workflow(ctx, wf)
  local base = ctx.root .. "workflow/execution/" .. wf.PKey
  local activities = {}
  for name, a in pairs(wf.activities) do
    activities[name] = { PKey = a.PKey, label = a.label, name = name, type = a.type,
      trigger = { href = base .. "/activities/activity/" .. a.PKey .. "/trigger/" } }
  end
  return { PKey = wf.PKey, activities = { activity = activities }, created = wf.created, href = base,
    internalName = wf.internalName, label = wf.label, lastModified = wf.lastModified,
    nextProcessingDate = "", state = wf.state }
end

-- A workflow in "error" (the workflow_outcome knob) can be started again or stopped.
local TRANSITIONS = {
  start = { from = { stopped = true, paused = true, error = true }, to = "started" },
  pause = { from = { started = true }, to = "paused" },
  resume = { from = { paused = true }, to = "started" },
  stop = { from = { started = true, paused = true, error = true }, to = "stopped" },
}

local function command(ctx, wf)
  local body, status, err = records.body_object(ctx)
  if not body then return status, err end
  local name = body.method
  local transition = type(name) == "string" and TRANSITIONS[name:lower()]
  if not transition then
    return bad("'" .. tostring(name) .. "' is not a valid workflow command (start, pause, resume, stop).",
      tostring(name))
  end
  if not transition.from[wf.state] then
    return util.engine_error(500, "Cannot " .. name:lower() .. " the workflow '" .. wf.internalName
      .. "': its state is '" .. wf.state .. "'.", "XTK-170006 Unable to execute the command.")
  end
  -- Checked against the state shown; the change itself comes after workflow_delay (ACS: "the
  -- request is saved and will be processed as soon as possible").
  progress.schedule_workflow(wf, transition.to, util.datetime)
  store.put("workflow", wf)
  return 200, {}
end

local function param_ok(kind, v)
  if kind == "string" then return type(v) == "string" end
  if kind == "number" then return type(v) == "number" or (type(v) == "string" and tonumber(v) ~= nil) end
  if kind == "boolean" then return type(v) == "boolean" or v == "true" or v == "false" end
  if kind == "datetime" then
    return type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%d[T ]%d%d:%d%d") ~= nil
  end
  return false
end

-- The lines ACS chains after a refused signal parameter, verbatim from
-- ACS:triggering-a-signal-activity.
local HANDLE_TRIGGER = {
  "XTK-170006 Unable to parse expression 'HandleTrigger(@name, $(source), $({parameters}))'.",
  "RST-360000 Error while assessing 'HandleTrigger(@name, $(source), $({parameters}))' expression "
    .. "('xtk:workflow:execution/activities/signal/trigger' resource)",
}

local function trigger(ctx, wf, activity)
  if #(ctx.body or "") > 64 * 1024 then
    return util.engine_error(500, "The signal payload exceeds 64 KB.",
      "RST-360000 Unable to trigger the signal.")
  end
  local body, status, err = records.body_object(ctx)
  if not body then return status, err end
  if type(body.source) ~= "string" or body.source == "" then
    return bad("The 'source' property is mandatory to trigger a signal activity.", "source")
  end
  if wf.state ~= "started" then
    return util.engine_error(500, "The workflow '" .. wf.internalName .. "' is not started: a signal activity"
      .. " can only be triggered in a running workflow.", "RST-360000 Unable to trigger the signal.")
  end
  -- ACS refuses a second trigger of the same signal within 10 minutes and says so in plain
  -- text, not JSON (the Node SDK's #85). The status is not documented: 200, as the SDK's
  -- failure was in parsing the body, not an HTTP error.
  local cooldown = state.config("signal_cooldown")
  local last = wf.lastTriggered and wf.lastTriggered[activity.name]
  if cooldown > 0 and last and ngx.now() - last < cooldown then
    return 200, "The signal activity '" .. activity.name .. "' of the workflow '" .. wf.internalName
      .. "' was already triggered less than " .. cooldown .. " seconds ago.",
      { ["Content-Type"] = "text/plain;charset=utf-8" }
  end
  local params = body.parameters
  if params ~= nil and type(params) ~= "table" then
    return bad("The 'parameters' property must be an object.", "parameters")
  end
  local names = {}
  for k in pairs(params or {}) do names[#names + 1] = tostring(k) end
  table.sort(names)
  for _, name in ipairs(names) do
    local kind = activity.parameters[name]
    if not kind then
      return util.engine_error(500, "'" .. name .. "' parameter isn't defined in signal activity.",
        HANDLE_TRIGGER[1], HANDLE_TRIGGER[2])
    end
    if not param_ok(kind, params[name]) then
      return util.engine_error(500,
        "The value of the '" .. name .. "' parameter must be of type '" .. kind .. "'.",
        HANDLE_TRIGGER[1], HANDLE_TRIGGER[2])
    end
  end
  wf.lastTriggered = wf.lastTriggered or {}
  wf.lastTriggered[activity.name] = ngx.now()
  -- A signal that starts the workflow's last branch (seed: WKF2's signal2) runs it to its end.
  if activity.ends then progress.schedule_workflow(wf, "stopped", util.datetime) end
  store.put("workflow", wf)
  return 200, {}
end

function _M.workflow(ctx, seg)
  if seg[2] ~= "execution" or not seg[3] then return util.not_found() end
  local wf = find_workflow(seg[3])
  -- The id (WKF1) or the PKey: an id that matches nothing is a missing workflow (404).
  if not wf then return util.unknown_pkey("workflow", seg[3], true) end
  if seg[4] == nil then
    if ctx.method ~= "GET" then return records.method_not_allowed(ctx) end
    return 200, render_workflow(ctx, wf)
  end
  if seg[4] == "commands" and seg[5] == nil then
    if ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
    return command(ctx, wf)
  end
  if seg[4] == "activities" and seg[5] == "activity" and seg[6] then
    local activity
    for name, a in pairs(wf.activities) do
      if a.PKey == seg[6] or name == seg[6] then activity = a end
    end
    if not activity then return util.unknown_pkey("activity", seg[6], true) end
    if seg[7] == nil then
      if ctx.method ~= "GET" then return records.method_not_allowed(ctx) end
      return 200, render_workflow(ctx, wf).activities.activity[activity.name]
    end
    if seg[7] == "trigger" and seg[8] == nil then
      if ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
      return trigger(ctx, wf, activity)
    end
  end
  return util.not_found()
end

-- ---------------------------------------------------------------- transactional events

-- ACS echoes the event's fields as empty strings (keeping the structure).
local function blank(v)
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = blank(x) end
    if #v > 0 then setmetatable(out, json.array_mt) end
    return out
  end
  return ""
end

function _M.transactional(ctx, seg)
  local event_id = seg[2]
  if not event_id or not event_id:match("^EVT[%w_]+$") then
    return util.not_found("The transactional event '" .. tostring(event_id) .. "' does not exist.")
  end
  local prefix = seg[1] .. "/" .. event_id .. "/"
  if seg[3] == nil then
    if ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
    local body, status, err = records.body_object(ctx)
    if not body then return status, err end
    local rec = blank(body)
    rec.ctx = rec.ctx or {}
    -- ACS blanks the ctx values and the email (acs-api.md section 7) but echoes the
    -- scheduled and expiration dates as sent (ACS:managing-transactional-messages sample).
    for _, k in ipairs { "scheduled", "expiration" } do
      if body[k] ~= nil then rec[k] = body[k] end
    end
    rec.email = rec.email or ""
    rec.PKey = store.next_pkey("event")
    rec.eventId = event_id
    rec.href = prefix .. rec.PKey
    rec.serverUrl = ctx.origin
    rec.status = "pending"
    rec.type = ""
    store.put("event", progress.start(rec))
    local out = progress.public(rec)
    out.eventId = nil
    return 201, out
  end
  if seg[4] ~= nil then return util.not_found() end
  -- The docs read the status with GET; Adobe's SDK sends POST: both are answered.
  if ctx.method ~= "GET" and ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
  local rec = store.get("event", seg[3])
  if not rec or rec.eventId ~= event_id then return util.unknown_pkey("event", seg[3]) end
  if progress.advance_event(rec) then store.put("event", rec) end
  local out = progress.public(rec)
  out.eventId = nil
  return 200, out
end

-- ---------------------------------------------------------------- privacy requests

-- A request as it is now (new -> processing -> complete over time, emu.progress).
local function current_privacy(rec)
  if progress.advance_privacy(rec) then store.put("privacyTool", rec) end
  return rec
end

local function render_privacy(ctx, rec)
  local out = progress.public(current_privacy(rec))
  local href = ctx.root .. "privacy/privacyTool/" .. rec.PKey
  out.href = href
  out.gdprRequestData = { href = href .. "/gdprRequestData/" }
  out.privacyRequestData = { href = href .. "/privacyRequestData/" }
  return out
end

local function privacy_data(rec)
  local lines = { '<?xml version="1.0" encoding="UTF-8"?>',
    '<privacyRequestData name="' .. rec.name .. '" namespace="' .. rec.namespaceName .. '" regulation="'
      .. rec.regulation .. '">' }
  for _, p in ipairs(store.all("profile")) do
    if p.email == rec.reconciliationValue then
      lines[#lines + 1] = '  <recipient PKey="' .. p.PKey .. '" email="' .. p.email .. '" firstName="'
        .. p.firstName .. '" lastName="' .. p.lastName .. '"/>'
    end
  end
  lines[#lines + 1] = "</privacyRequestData>"
  return table.concat(lines, "\n")
end

function _M.privacy(ctx, seg)
  if seg[2] ~= "privacyTool" then return util.not_found() end
  local res = schema.resources.privacyTool
  if seg[3] == nil then
    if ctx.method == "GET" then
      local path = ctx.root .. "privacy/privacyTool/"
      return listing.page(ctx, { res = res, items = store.all("privacyTool"), path = path,
        count_path = path .. "/_count", render = function(rec) return render_privacy(ctx, rec) end })
    end
    if ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
    local body, status, err = records.body_object(ctx)
    if not body then return status, err end
    -- The OpenAPI's GDPRRequest and the ACS docs' parameter list name the namespace
    -- `namespace` (a string); the docs' sample sends `namespaceName`: both are accepted.
    if type(body.namespace) == "string" then
      if body.namespaceName ~= nil and body.namespaceName ~= body.namespace then
        return bad("The 'namespace' and 'namespaceName' properties name different namespaces ('"
          .. body.namespace .. "', '" .. tostring(body.namespaceName) .. "').", "namespace")
      end
      body.namespaceName, body.namespace = body.namespace, nil
    end
    -- The docs write the regulation "GDPR" and "CCPA" as well as "gdpr": stored lower-case.
    if type(body.regulation) == "string" then body.regulation = body.regulation:lower() end
    status, err = schema.validate(res, body, false, "create")
    if status then return status, err end
    local pkey, n = store.next_pkey("privacyTool")
    local now = util.datetime()
    local rec = { PKey = pkey, audit = "", created = now, lastModified = now, desc = body.desc or "",
      label = body.label or "", name = body.name or ("PT" .. (1000 + n)), namespaceName = body.namespaceName,
      namespace = { PKey = util.pkey("namespace", body.namespaceName), title = body.namespaceName },
      reconciliationValue = body.reconciliationValue, regulation = body.regulation or "gdpr", retryCount = 0,
      status = "new", type = body.type }
    rec.title = rec.label ~= "" and (rec.label .. " (" .. rec.name .. ")") or rec.name
    store.put("privacyTool", progress.start(rec))
    return 201, render_privacy(ctx, rec)
  end
  local rec = store.get("privacyTool", seg[3])
  if not rec then return util.unknown_pkey("privacyTool", seg[3]) end
  if seg[4] == nil then
    if ctx.method ~= "GET" then return records.method_not_allowed(ctx) end
    return 200, render_privacy(ctx, rec)
  end
  if (seg[4] == "privacyRequestData" or seg[4] == "gdprRequestData") and seg[5] == nil then
    if ctx.method ~= "POST" then return records.method_not_allowed(ctx) end
    return 200, json.encode(privacy_data(rec))
  end
  return util.not_found()
end

return _M
