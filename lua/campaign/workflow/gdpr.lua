--- campaign.workflow.gdpr: gdpr_request_and_fetch, a privacy access request from creation to
-- its data file. The request's statuses (acs-api.md section 7): new, retry pending,
-- processing, delete pending, delete in progress, complete, error* (errorDataNotFound...).
--   complete            the end: the data file is fetched
--   error...            the end: failure
--   anything else       keep polling
-- No state at module level.
local campaign = require "campaign"
local api = require "campaign.api"
local common = require "campaign.workflow.common"
local wait = require "campaign.workflow.wait"

local type, pairs, tostring = type, pairs, tostring

---@class campaign.workflow.gdpr
local gdpr = {}

local OPTIONS = {}
for k, v in pairs(wait.OPTIONS) do OPTIONS[k] = v end

local function href_of(link)
  if type(link) == "table" and type(link.href) == "string" and link.href ~= "" then return link.href end
  return nil
end

--- gdpr_request_and_fetch(client, request[, opts]) -> data, request, history | nil, err
-- request: the privacy request to create ({name, namespaceName, reconciliationValue,
-- regulation, label}); `type` defaults to "access" (another type has no data file: raises).
-- POSTs it (api.create_gdpr_request), GETs the request's href through the shared wait
-- (campaign.workflow.wait: opts.deadline, poll, max_poll, on_poll, clock, sleep) until its
-- status is "complete", then POSTs its privacyRequestData href (gdprRequestData for older
-- answers) with its name (api.get_gdpr_data_file). data: the file as ACS returns it (a JSON
-- string holding XML, decoded to a Lua string). request: the request as last read.
-- An error* status: nil, err kind "privacy_failed" (err.last_status, err.status_history,
-- err.record); the deadline passed: kind "timeout".
---@param client campaign.AnyClient
---@param request table {name, namespaceName, reconciliationValue, regulation, type? = "access"}
---@param opts? campaign.workflow.WaitOpts
---@return string|nil data the file (XML text)
---@return table|campaign.Error request_or_err the request as last read
---@return campaign.StatusChange[]|nil history
function gdpr.gdpr_request_and_fetch(client, request, opts)
  local fname = "gdpr_request_and_fetch"
  common.check_client(fname, client)
  if type(request) ~= "table" then
    common.fail(fname, "bad argument #2 'request' (table expected, got " .. type(request) .. ")")
  end
  if request.type ~= nil and request.type ~= "access" then
    common.fail(fname, "bad argument #2 'request' (type must be 'access' or absent: a '"
      .. tostring(request.type) .. "' request has no data file to fetch)")
  end
  opts = common.check_opts(fname, opts, OPTIONS)
  wait.check(fname, opts)
  local body = {}
  for k, v in pairs(request) do body[k] = v end
  body.type = "access"
  local started = wait.now(opts)

  local created, err = api.create_gdpr_request(client, body)
  if created == nil then return nil, err end
  if type(created) ~= "table" or type(created.PKey) ~= "string" then
    return nil, campaign.error { kind = "json", message = "the privacy request answer has no PKey" }
  end
  local href = href_of(created)
  if not href then
    local seg = api.key_segment(created.PKey)
    if not seg then
      return nil, campaign.error { kind = "json", message = "the privacy request answer has no usable PKey" }
    end
    href = "privacy/privacyTool/" .. seg
  end
  local what = "privacy request " .. (type(created.name) == "string" and created.name or created.PKey)
  local record, history = wait.poll {
    opts = opts, started = started, first = created,
    fetch = function() return api.get_data_from_relative_url(client, href) end,
    status = function(rec) return type(rec) == "table" and rec.status or nil end,
    classify = function(status)
      if status == "complete" then return "done" end
      if type(status) == "string" and status:sub(1, 5) == "error" then return "failed" end
      return nil
    end,
    what = what, path = href, failed_kind = "privacy_failed",
  }
  if record == nil then return nil, history end

  local data_href = href_of(record.privacyRequestData) or href_of(record.gdprRequestData)
    or href_of(created.privacyRequestData) or href_of(created.gdprRequestData)
  if not data_href then
    return nil, campaign.error { kind = "json", record = record, status_history = history,
      message = what .. " is complete but has no privacyRequestData href" }
  end
  local name = type(record.name) == "string" and record.name ~= "" and record.name or created.name
  if type(name) ~= "string" or name == "" then
    return nil, campaign.error { kind = "json", record = record, status_history = history,
      message = what .. " has no name to fetch its data file with" }
  end
  local data, derr = api.get_gdpr_data_file(client, data_href, name)
  if data == nil then
    if type(derr) == "table" then derr.status_history = history end
    return nil, derr
  end
  return data, record, history
end

return gdpr
