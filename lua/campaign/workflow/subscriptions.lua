--- campaign.workflow.subscriptions: subscribe_and_verify, unsubscribe_and_verify.
-- Both read the profile's subscriptions before and after the change, so they are idempotent
-- (subscribing a subscriber or unsubscribing a non-subscriber sends nothing) and say which
-- case it was. Only the client's methods and campaign.api functions are used. No state at
-- module level.
local campaign = require "campaign"
local api = require "campaign.api"
local clock = require "campaign.clock"
local common = require "campaign.workflow.common"

local type, tostring = type, tostring
local table_concat = table.concat

---@class campaign.workflow.subscriptions
local subscriptions = {}

local OPTIONS = { verify_attempts = "count", verify_delay = "nonnegative", sleep = "func" }

-- profile: a PKey or a record (its subscriptions.href, else its PKey) -> the value campaign.api
-- takes, and the PKey for messages.
local function check_profile(fname, profile)
  if type(profile) == "table" then
    local link = profile.subscriptions
    local has_href = type(link) == "table" and type(link.href) == "string" and link.href ~= ""
    if not has_href and type(profile.PKey) ~= "string" then
      common.fail(fname, "bad argument #2 'profile' (the record has neither PKey nor "
        .. "subscriptions.href)", 2)
    end
    if not has_href then common.check_pkey(fname, 2, "profile", profile.PKey, 1) end
    return profile, tostring(profile.PKey or link.href)
  end
  if type(profile) ~= "string" then
    common.fail(fname, "bad argument #2 'profile' (PKey or profile record expected, got "
      .. type(profile) .. ")", 2)
  end
  common.check_pkey(fname, 2, "profile", profile, 1)
  return profile, profile
end

local function check_service(fname, service)
  if type(service) == "table" then
    common.check_pkey(fname, 3, "service", service.PKey, 1)
    return
  end
  if type(service) ~= "string" or service == "" then
    common.fail(fname, "bad argument #3 'service' (a service name, PKey or record expected, got "
      .. (service == "" and "empty string" or type(service)) .. ")", 2)
  end
  if service:sub(1, 1) == "@" then common.check_pkey(fname, 3, "service", service, 1) end
end

-- service (checked) -> its PKey, a label for messages | nil, err (not_found, ambiguous).
-- A name is looked up in the whole services listing (every page; ACS keeps few services):
-- exact, case-sensitive `name`, so it does not depend on a filter's prefix rules.
local function resolve_service(client, service)
  if type(service) == "table" then return service.PKey, tostring(service.name or service.PKey) end
  if service:sub(1, 1) == "@" then return service, service end
  local first, err = api.get_all_services(client, { line_count = 100 })
  if first == nil then return nil, err end
  local found = {}
  local ok, werr = common.walk(client, first, function(item)
    if type(item) == "table" and item.name == service then found[#found + 1] = item.PKey end
  end)
  if not ok then return nil, werr end
  if #found == 0 then
    return nil, campaign.error { kind = "not_found", service = service,
      message = "no service is named '" .. service .. "'" }
  end
  if #found > 1 then
    return nil, campaign.error { kind = "ambiguous", pkeys = found, service = service,
      message = #found .. " services are named '" .. service .. "' (" .. table_concat(found, ", ") .. ")" }
  end
  return found[1], "'" .. service .. "'"
end

-- The profile's subscription to service_pkey, read now -> record or false | nil, err.
local function find_subscription(client, profile, service_pkey)
  local first, err = api.get_profile_subscriptions(client, profile)
  if first == nil then return nil, err end
  local hit = false
  local ok, werr = common.walk(client, first, function(item)
    local svc = type(item) == "table" and item.service
    if type(svc) == "table" and svc.PKey == service_pkey then
      hit = item
      return true
    end
  end)
  if not ok then return nil, werr end
  return hit
end

-- Reads until the subscription is present (want = true) or absent (want = false), opts'
-- verify_attempts times -> the subscription (or true), reads | nil, err (kind "verify").
local function verify(client, profile, service_pkey, want, opts, what)
  local attempts = opts.verify_attempts or 1
  local delay = opts.verify_delay or 0.5
  local sleep = opts.sleep or clock.sleep
  local sub
  for attempt = 1, attempts do
    if attempt > 1 then sleep(delay) end
    local err
    sub, err = find_subscription(client, profile, service_pkey)
    if sub == nil then return nil, err end
    if (sub ~= false) == want then return sub or true, attempt end
  end
  return nil, campaign.error {
    kind = "verify", attempts = attempts,
    mismatches = { service = { expected = want and service_pkey or nil, got = sub and service_pkey or nil } },
    message = what .. (want and ": the subscription is not in the profile's subscriptions read back"
      or ": the subscription is still in the profile's subscriptions read back"),
  }
end

--- subscribe_and_verify(client, profile, service[, opts])
--   -> subscription, "subscribed"|"already_subscribed" | nil, err
-- profile: PKey or record; service: name (looked up in the services listing), PKey ("@...")
-- or record. Reads the profile's subscriptions; when the service is not among them, POSTs
-- the subscription (api.subscribe) and reads them again (opts.verify_attempts times,
-- opts.verify_delay apart): the subscription read back is returned. Not there: kind
-- "verify". An unknown service name: kind "not_found"; two services of that name:
-- "ambiguous" (err.pkeys). ACS's errors (404 for an unknown PKey...) come back as they are.
---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param service string|table a PKey, a service record or a service name
---@param opts? campaign.workflow.SubscriptionOpts
---@return table|nil subscription
---@return "subscribed"|"already_subscribed"|campaign.Error how_or_err
function subscriptions.subscribe_and_verify(client, profile, service, opts)
  local fname = "subscribe_and_verify"
  common.check_client(fname, client)
  local label
  profile, label = check_profile(fname, profile)
  check_service(fname, service)
  opts = common.check_opts(fname, opts, OPTIONS)

  local service_pkey, service_label = resolve_service(client, service)
  if service_pkey == nil then return nil, service_label end
  local existing, err = find_subscription(client, profile, service_pkey)
  if existing == nil then return nil, err end
  if existing then return existing, "already_subscribed" end
  local answer, serr = api.subscribe(client, profile, service_pkey)
  if answer == nil then return nil, serr end
  local sub, verr = verify(client, profile, service_pkey, true, opts,
    "subscribing profile " .. label .. " to service " .. service_label)
  if sub == nil then return nil, verr end
  return sub, "subscribed"
end

--- unsubscribe_and_verify(client, profile, service[, opts])
--   -> true, "unsubscribed", subscription | true, "not_subscribed" | nil, err
-- The same arguments. Reads the profile's subscriptions; when the service is among them,
-- DELETEs that subscription (api.unsubscribe, its href) and reads them again until it is
-- gone (kind "verify" if it stays). The third value is the subscription removed, as read
-- before the DELETE.
---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param service string|table a PKey, a service record or a service name
---@param opts? campaign.workflow.SubscriptionOpts
---@return true|nil ok
---@return "unsubscribed"|"not_subscribed"|campaign.Error how_or_err
---@return table|nil subscription the subscription as it was
function subscriptions.unsubscribe_and_verify(client, profile, service, opts)
  local fname = "unsubscribe_and_verify"
  common.check_client(fname, client)
  local label
  profile, label = check_profile(fname, profile)
  check_service(fname, service)
  opts = common.check_opts(fname, opts, OPTIONS)

  local service_pkey, service_label = resolve_service(client, service)
  if service_pkey == nil then return nil, service_label end
  local existing, err = find_subscription(client, profile, service_pkey)
  if existing == nil then return nil, err end
  if not existing then return true, "not_subscribed" end
  local answer, derr = api.unsubscribe(client, existing)
  if answer == nil then return nil, derr end
  local ok, verr = verify(client, profile, service_pkey, false, opts,
    "unsubscribing profile " .. label .. " from service " .. service_label)
  if ok == nil then return nil, verr end
  return true, "unsubscribed", existing
end

return subscriptions
