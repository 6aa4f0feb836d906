--- campaign.workflow.events: send_and_track, a transactional event sent and followed to the end.
-- ACS's statuses (acs-api.md section 7): pending, processing, paused, processed, ignored,
-- deliveryFailed, routingFailed, tooOld, targetingFailed.
--   processed                                                   the end: success
--   ignored, deliveryFailed, routingFailed, tooOld, targetingFailed  the end: failure
--   pending, processing, paused, and any status not listed here  not the end: keep polling
-- "paused" is not an end: a paused transactional message is resumed by its owner, and the
-- event is then processed; a wait for one that stays paused ends at its deadline.
-- No state at module level.
local campaign = require "campaign"
local api = require "campaign.api"
local common = require "campaign.workflow.common"
local wait = require "campaign.workflow.wait"

local type, pairs = type, pairs

---@class campaign.workflow.events
local events = {}

local SUCCESS = { processed = true }
local FAILURE = {
  ignored = true, deliveryFailed = true, routingFailed = true, tooOld = true, targetingFailed = true,
}

local OPTIONS = { tenant = "string" }
for k, v in pairs(wait.OPTIONS) do OPTIONS[k] = v end

--- send_and_track(client, event_id, event[, opts]) -> event, history | nil, err
-- POSTs the event (api.send_transactional_event), then GETs it (api.get_transactional_event)
-- through the shared wait (campaign.workflow.wait: opts.deadline, poll, max_poll, on_poll,
-- clock, sleep) until its status is processed. history = {{status =, elapsed =}, ...} from
-- the POST answer on. A failure status: nil, err with kind "event_failed", err.last_status,
-- err.status_history, err.record (the event). The deadline passed: kind "timeout" (same
-- fields, err.deadline). opts.tenant as in campaign.api.
---@param client campaign.AnyClient
---@param event_id string
---@param event table
---@param opts? campaign.workflow.EventOpts
---@return table|nil event
---@return campaign.StatusChange[]|campaign.Error history_or_err
function events.send_and_track(client, event_id, event, opts)
  local fname = "send_and_track"
  common.check_client(fname, client)
  if type(event_id) ~= "string" or event_id == "" then
    common.fail(fname, "bad argument #2 'event_id' (an event id string such as 'EVTcartAbandonment' "
      .. "expected, got " .. (event_id == "" and "empty string" or type(event_id)) .. ")")
  end
  common.check_pkey(fname, 2, "event_id", event_id)
  if type(event) ~= "table" and type(event) ~= "string" then
    common.fail(fname, "bad argument #3 'event' (table or JSON string expected, got " .. type(event) .. ")")
  end
  opts = common.check_opts(fname, opts, OPTIONS)
  wait.check(fname, opts)
  local api_opts = opts.tenant and { tenant = opts.tenant } or nil
  local started = wait.now(opts)

  local sent, err = api.send_transactional_event(client, event_id, event, api_opts)
  if sent == nil then return nil, err end
  local pkey = type(sent) == "table" and sent.PKey
  if type(pkey) ~= "string" or not api.key_segment(pkey) then
    return nil, campaign.error { kind = "json",
      message = "the transactional event answer has no usable PKey" }
  end
  return wait.poll {
    opts = opts, started = started, first = sent,
    fetch = function() return api.get_transactional_event(client, event_id, pkey, api_opts) end,
    status = function(rec) return type(rec) == "table" and rec.status or nil end,
    classify = function(status)
      if SUCCESS[status] then return "done" end
      if FAILURE[status] then return "failed" end
      return nil
    end,
    what = "transactional event " .. event_id .. "/" .. pkey,
    path = type(sent.href) == "string" and sent.href or nil,
    failed_kind = "event_failed",
    failed_message = function(status)
      return "transactional event " .. event_id .. "/" .. pkey .. " ended in status '" .. status .. "'"
    end,
  }
end

return events
