--- campaign.workflow.profiles: upsert_profile, find-then-PATCH-or-create, verified.
-- The update is campaign.workflow.update_and_verify itself (its GET, PATCH, GET and compare);
-- a create is read back and compared with campaign.workflow.matches, the same comparison.
-- Only the client's methods and campaign.api functions are used. No state at module level.
local campaign = require "campaign"
local api = require "campaign.api"
local common = require "campaign.workflow.common"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local table_sort, table_concat = table.sort, table.concat

---@class campaign.workflow.profiles
local profiles = {}

local FNAME = "upsert_profile"

local OPTIONS = {
  ext = "boolean", create = "boolean", compare = "func", verify_attempts = "count",
  verify_delay = "nonnegative", sleep = "func", metadata = "table", skip_unchanged = "boolean",
}

-- campaign.workflow requires this module at its end: required here at call time, not load time.
local function base() return require "campaign.workflow" end

-- match -> listing params for api.get_all_profiles, and the email it names (for a create).
local function match_params(match, ext)
  local params = { custom_filter = ext or nil }
  if type(match) == "string" then
    if match == "" then common.fail(FNAME, "bad argument #2 'match' (empty email)", 2) end
    params.filters, params.email = { "byEmail" }, match
    return params, match
  end
  if type(match) ~= "table" then
    common.fail(FNAME, "bad argument #2 'match' (an email string or a table {email = ...} or "
      .. "{filter = name, <filter parameters>} expected, got " .. type(match) .. ")", 2)
  end
  local filter = match.filter
  if filter == nil then
    local email = match.email
    if type(email) ~= "string" or email == "" then
      common.fail(FNAME, "bad argument #2 'match' (a table needs 'email' or 'filter')", 2)
    end
    for k in pairs(match) do
      if k ~= "email" then
        common.fail(FNAME, "bad argument #2 'match' (key '" .. tostring(k) .. "' needs a "
          .. "'filter'; without one only 'email' is allowed)", 2)
      end
    end
    params.filters, params.email = { "byEmail" }, email
    return params, email
  end
  if type(filter) == "string" then filter = { filter } end
  if type(filter) ~= "table" or filter[1] == nil then
    common.fail(FNAME, "bad argument #2 'match' (match.filter must be a filter name or a list "
      .. "of names, e.g. 'byText')", 2)
  end
  params.filters = filter
  for k, v in pairs(match) do
    if k ~= "filter" then
      if type(k) ~= "string" then common.fail(FNAME, "bad argument #2 'match' (parameter names "
        .. "must be strings)", 2) end
      params[k] = v
    end
  end
  -- byEmail's parameter is the email of the profile to create.
  local email = nil
  if #filter == 1 and filter[1] == "byEmail" and type(match.email) == "string" then email = match.email end
  return params, email
end

local function describe(match)
  if type(match) == "string" then return "email '" .. match .. "'" end
  if match.filter == nil then return "email '" .. tostring(match.email) .. "'" end
  local f = type(match.filter) == "table" and table_concat(match.filter, "/") or tostring(match.filter)
  return "filter " .. f
end

local function same(compare, field, expected, got)
  if compare then return compare(field, expected, got) and true or false end
  return base().matches(expected, got)
end

-- Reads the created profile back until every field sent holds (verify_attempts reads,
-- verify_delay apart) -> record | nil, err (kind "verify" with mismatches).
local function verify_created(client, pkey, body, opts)
  local attempts = opts.verify_attempts or 1
  local delay = opts.verify_delay or 0.5
  local sleep = opts.sleep or require("campaign.clock").sleep
  local path = (opts.ext and "profileAndServicesExt" or "profileAndServices") .. "/profile/" .. pkey
  local mismatches
  for attempt = 1, attempts do
    if attempt > 1 then sleep(delay) end
    local record, err
    if opts.ext then record, err = api.get_profile_with_org_unit(client, pkey)
    else record, err = api.get_profile(client, pkey) end
    if record == nil then return nil, err end
    mismatches = nil
    for field, expected in pairs(body) do
      local got = type(record) == "table" and record[field] or nil
      if not same(opts.compare, field, expected, got) then
        mismatches = mismatches or {}
        mismatches[field] = { expected = expected, got = got }
      end
    end
    if not mismatches then return record, attempt end
  end
  local fields = {}
  for field in pairs(mismatches) do fields[#fields + 1] = tostring(field) end
  table_sort(fields)
  return nil, campaign.error {
    kind = "verify", method = "GET", path = path, attempts = attempts, mismatches = mismatches,
    pkey = pkey,
    message = "the created profile read back differs from the fields sent: "
      .. table_concat(fields, ", ") .. " (the profile was created)",
  }
end

--- upsert_profile(client, match, fields[, opts]) -> record, "updated"|"created", info | nil, err
-- match: an email ("amy@x.com", or {email = "amy@x.com"}: the byEmail filter), or
-- {filter = "byText" | {"byText", ...}, <the filter's parameters>} (opts.ext for the
-- profileAndServicesExt API, where custom filters live).
-- One profile found: workflow.update_and_verify(client, its PKey, fields, opts) (its record,
-- "updated", its info). None: POST fields (plus the email of an email match unless fields
-- has one), read back and compared (record, "created", {status = the POST's (201), reads = n,
-- created = the POST answer}); opts.create = false makes that nil, err kind "not_found". Several:
-- nil, err kind "ambiguous" with err.pkeys (those of the first page; err.more when the
-- listing has more pages); nothing is written.
-- opts: ext, create, compare, verify_attempts, verify_delay, sleep, metadata, skip_unchanged
-- (the last five as update_and_verify; compare and verify_* also verify the create).
---@param client campaign.AnyClient
---@param match campaign.workflow.Match
---@param fields table
---@param opts? campaign.workflow.UpsertOpts
---@return table|nil record
---@return "updated"|"created"|campaign.Error how_or_err
---@return table|nil info
function profiles.upsert_profile(client, match, fields, opts)
  common.check_client(FNAME, client)
  local params, email = match_params(match, type(opts) == "table" and opts.ext or nil)
  if type(fields) ~= "table" then
    common.fail(FNAME, "bad argument #3 'fields' (table expected, got " .. type(fields) .. ")", 1)
  end
  opts = common.check_opts(FNAME, opts, OPTIONS)

  local found, err = api.get_all_profiles(client, params)
  if found == nil then return nil, err end
  local content = type(found) == "table" and type(found.content) == "table" and found.content or {}
  if #content > 1 then
    local pkeys = {}
    for i, p in ipairs(content) do pkeys[i] = type(p) == "table" and p.PKey or nil end
    local more = type(found.next) == "table" and found.next.href ~= nil
    return nil, campaign.error {
      kind = "ambiguous", pkeys = pkeys, more = more or nil,
      message = #content .. (more and "+" or "") .. " profiles match " .. describe(match)
        .. " (" .. table_concat(pkeys, ", ", 1, math.min(#pkeys, 3)) .. (#pkeys > 3 and ", ..." or "")
        .. "): nothing was changed",
    }
  end

  if #content == 1 then
    local pkey = content[1].PKey
    if type(pkey) ~= "string" then
      return nil, campaign.error { kind = "json", message = "the profile found has no PKey" }
    end
    local uv_opts = {
      resource = opts.ext and "profileAndServicesExt/profile" or nil, compare = opts.compare,
      verify_attempts = opts.verify_attempts, verify_delay = opts.verify_delay, sleep = opts.sleep,
      metadata = opts.metadata, skip_unchanged = opts.skip_unchanged,
    }
    local record, info = base().update_and_verify(client, pkey, fields, uv_opts)
    if record == nil then return nil, info end
    return record, "updated", info
  end

  if opts.create == false then
    return nil, campaign.error { kind = "not_found",
      message = "no profile matches " .. describe(match) .. " (opts.create = false: none was created)" }
  end
  local body = {}
  for k, v in pairs(fields) do body[k] = v end
  if email and body.email == nil then body.email = email end
  local created, cres = api.create_profile(client, body, { ext = opts.ext })
  if created == nil then return nil, cres end
  local pkey = type(created) == "table" and created.PKey
  if type(pkey) ~= "string" or not api.key_segment(pkey) then
    return nil, campaign.error { kind = "json", message = "the create answer has no usable PKey" }
  end
  local record, reads = verify_created(client, pkey, body, opts)
  if record == nil then return nil, reads end
  return record, "created", { status = type(cres) == "table" and cres.status or nil, reads = reads,
    created = created }
end

return profiles
