--- campaign.api: one function per ACS REST operation, client first.
--
-- Every function builds the method, path, query and body of one operation and hands them to
-- the client (the libcurl client of `campaign.new` or the OpenResty client of
-- `campaign.ngx.new`: only their methods are used). It returns what the client returns:
-- `body, res` on success, `nil, err` on failure. Wrong argument types raise.
-- Methods and encodings follow the ACS documentation, not the official Node SDK's bugs: `_order`
-- is encoded once (the client does it), the transactional-event status is a GET, and hrefs from
-- ACS, absolute (same origin) or relative, are passed to the client verbatim, query included.
local type, pairs, ipairs, tostring, error, pcall, tonumber = type, pairs, ipairs, tostring, error,
  pcall, tonumber
local string_format, math_floor = string.format, math.floor
local campaign = require "campaign"
local hrefs = require "campaign.hrefs"
local campaign_decode, campaign_error = campaign.decode, campaign.error

---@class campaign.api
---@field key_segment fun(key: any): (segment: string|nil, problem: string|nil) hrefs.key_segment
---@field operations table<string, string> operationId -> the function's name here
local api = {}

-- Argument checks: misuse raises, naming the function and the argument.
local function bad_argument(fname, n, name, expected, got)
  error(string_format("campaign.api.%s: bad argument #%d '%s' (%s expected, got %s)",
    fname, n, name, expected, got), 3)
end

local function check_client(fname, client)
  local t = type(client)
  if (t ~= "table" and t ~= "userdata") or client.get == nil then
    bad_argument(fname, 1, "client", "client", t)
  end
end

local function check_string(fname, n, name, v)
  if type(v) ~= "string" or v == "" then
    bad_argument(fname, n, name, "non-empty string", v == "" and "empty string" or type(v))
  end
end

local function check_table(fname, n, name, v, optional)
  if v == nil and optional then return end
  if type(v) ~= "table" then
    bad_argument(fname, n, name, optional and "table or nil" or "table", type(v))
  end
end

local function check_body(fname, n, name, v)
  local t = type(v)
  if t ~= "table" and t ~= "string" then bad_argument(fname, n, name, "table or JSON string", t) end
end

-- A caller-supplied key (PKey, resource name, workflow id...) -> ONE path segment, percent-encoded
-- (hrefs.key_segment): a '?', '#' or '%' in it is data, never the URL's structure. A key that
-- cannot be one segment ('/', '\\', '.', '..', control characters) raises: it would silently
-- address another resource.
local key_segment = hrefs.key_segment

local function segment(fname, n, name, v)
  check_string(fname, n, name, v)
  local seg, problem = key_segment(v)
  if not seg then
    error(string_format("campaign.api.%s: argument #%d '%s' %s", fname, n, name, problem), 3)
  end
  return seg
end

--- api.key_segment(key) -> segment | nil, problem: the check and encoding every function here
-- applies to a key, for callers that validate input before calling (a webhook's PKey).
api.key_segment = key_segment

-- Query values go to the client as strings so that every client encodes them the same way:
-- integral numbers without a fraction (25, not 25.0), booleans as true/false.
local function query_value(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v == math_floor(v) and v > -2^53 and v < 2^53 then return string_format("%d", v) end
    return tostring(v)
  end
  if t == "boolean" then return v and "true" or "false" end
  if t == "table" then
    local list = {}
    for i, item in ipairs(v) do list[i] = query_value(item) end
    return list
  end
  error("campaign.api: query value of type " .. t .. " is not supported", 4)
end

-- The listing options, each a group of names for one option: the name used here first, then the
-- official Node SDK's name (its __createFilterParams: filters, hasCustomFilter, lineCount, order,
-- descendingSort) and that name in snake_case. Without the aliases an SDK name would silently
-- become a query parameter (`?hasCustomFilter=true` instead of the Ext API).
local listing_names = {
  { "filters" },
  { "custom_filter", "has_custom_filter", "hasCustomFilter" },
  { "line_count", "lineCount" },
  { "order" },
  { "descending", "descending_sort", "descendingSort" },
  { "force_pagination", "forcePagination" },
}

local listing_keys = {}
for _, names in ipairs(listing_names) do
  for _, name in ipairs(names) do listing_keys[name] = true end
end

local function shown(v)
  local t = type(v)
  if t == "string" then return "'" .. v .. "'" end
  if t == "number" or t == "boolean" then return tostring(v) end
  return t
end

-- params -> {option = value}, {option = the name the caller used} for the listing options.
-- Two names of one option with different values raise, naming both.
local function listing_options(params)
  local opts, used = {}, {}
  for _, names in ipairs(listing_names) do
    local option = names[1]
    for _, name in ipairs(names) do
      local v = params[name]
      if v ~= nil then
        local first = used[option]
        if first == nil then
          opts[option], used[option] = v, name
        elseif v ~= opts[option] then
          error(string_format("campaign.api: '%s' and '%s' name the same listing option with "
            .. "different values (%s, %s): give one of them", first, name, shown(opts[option]),
            shown(v)), 4)
        end
      end
    end
    used[option] = used[option] or option
  end
  return opts, used
end

--- Builds the path and query of a listing from the SDK-style parameters.
-- `base` is e.g. "profileAndServices/profile"; params = {filters = {"byEmail"}, custom_filter =
-- bool (switches `profileAndServices` to `profileAndServicesExt`), line_count = n, order = "f",
-- descending = bool, force_pagination = bool, <other> = value (a query parameter)}.
-- The SDK's names are aliases: hasCustomFilter/has_custom_filter = custom_filter,
-- lineCount = line_count, descendingSort/descending_sort = descending.
-- Returns path, query (a table, possibly empty).
---@param base string e.g. "profileAndServices/profile"
---@param params? campaign.api.ListingParams
---@return string path
---@return table query
function api.listing(base, params)
  if type(base) ~= "string" or base == "" then
    error("campaign.api.listing: bad argument #1 'base' (non-empty string expected)", 2)
  end
  if params ~= nil and type(params) ~= "table" then
    error("campaign.api.listing: bad argument #2 'params' (table or nil expected, got "
      .. type(params) .. ")", 2)
  end
  params = params or {}
  local opts, used = listing_options(params)
  local path = base
  if opts.custom_filter then
    path = path:gsub("^profileAndServices/", "profileAndServicesExt/", 1)
  end
  local filters = opts.filters
  if filters ~= nil then
    if type(filters) == "string" then filters = { filters } end
    if type(filters) ~= "table" then
      error("campaign.api: 'filters' must be a list of filter names", 3)
    end
    for _, f in ipairs(filters) do
      local seg, problem = key_segment(f)
      if not seg then
        error("campaign.api: each filter must be a non-empty name without '/'"
          .. (type(f) == "string" and " (" .. shown(f) .. " " .. problem .. ")" or ""), 3)
      end
      path = path .. "/" .. seg
    end
  end
  local query = {}
  for k, v in pairs(params) do
    if not listing_keys[k] then
      if type(k) ~= "string" then error("campaign.api: query parameter names must be strings", 3) end
      query[k] = query_value(v)
    end
  end
  if opts.line_count ~= nil then
    if type(opts.line_count) ~= "number" or opts.line_count < 1 then
      error("campaign.api: '" .. used.line_count .. "' must be a positive number", 3)
    end
    query._lineCount = query_value(opts.line_count)
  end
  if opts.order ~= nil then
    if type(opts.order) ~= "string" or opts.order == "" then
      error("campaign.api: 'order' must be a field name", 3)
    end
    -- One space: the client percent-encodes it once (%20), never %2520 as the Node SDK does.
    query._order = opts.descending and (opts.order .. " desc") or opts.order
  end
  if opts.force_pagination then query._forcePagination = "true" end
  return path, query
end

-- Each listing function calls api.listing itself, not through a helper it tail-calls: Lua 5.1
-- keeps no frame for a tail call, so an error level counted through one lost the caller's line.

-- ACS answers a single GET with the bare record; the documentation's seed example shows it
-- wrapped as {content = {record}}. Unwrap that shape so callers always get the record. Every
-- getter of one record by its key goes through it: get_profile, get_service,
-- get_history_of_profile, get_custom_resource, get_profile_with_org_unit, get_workflow,
-- get_transactional_event. Not the listings, nor the metadata getters (a resource type's
-- description, whose `content` is its map of fields), nor the href followers
-- (get_data_from_relative_url answers whatever the href names, a listing page included).
local function unwrap_single(body, ...)
  if type(body) == "table" and body.PKey == nil and type(body.content) == "table"
    and body.content[1] ~= nil and body.content[2] == nil and type(body.content[1]) == "table" then
    return body.content[1], ...
  end
  return body, ...
end

-- Hrefs given by ACS (next.href, count.href, a subscription's or trigger's href, a relative
-- transactional href) go to the client verbatim, their own query included: `_lineStart=@…` is an
-- opaque cursor (acs-api.md §4), so it is never decoded and re-encoded here. Both clients keep a
-- query given inside the path as it is (only bytes that may not appear raw are escaped) and
-- append opts.query after it. Extra parameters therefore travel as opts.query; one that the
-- href's own query already names is refused, as sending both would leave the choice to ACS.
local function href_options(fname, url, extra)
  if extra == nil then return nil end
  local query = {}
  for k, v in pairs(extra) do
    if type(k) ~= "string" then
      error("campaign.api." .. fname .. ": query parameter names must be strings", 3)
    end
    query[k] = query_value(v)
  end
  for k in pairs(query) do
    if hrefs.query_value(url, k) ~= nil then
      error(string_format("campaign.api.%s: query parameter '%s' is already in the href's own "
        .. "query (the href is sent verbatim): give it once", fname, k), 3)
    end
  end
  return { query = query }
end

-- Profiles -------------------------------------------------------------------------------------

--- GET profileAndServices/profile[/filters...] (Ext with custom_filter).
---@param client campaign.AnyClient
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_profiles(client, params)
  check_client("get_all_profiles", client)
  check_table("get_all_profiles", 2, "params", params, true)
  local path, query = api.listing("profileAndServices/profile", params)
  return client:get(path, { query = query })
end

--- GET profileAndServices/profile/<pkey>: the bare profile (unwrapped if ACS wraps it).
---@param client campaign.AnyClient
---@param pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_profile(client, pkey)
  check_client("get_profile", client)
  pkey = segment("get_profile", 2, "pkey", pkey)
  return unwrap_single(client:get("profileAndServices/profile/" .. pkey))
end

--- POST profileAndServices/profile (opts.ext = true: profileAndServicesExt/profile, needed for
-- custom fields and orgUnit on create). Answers 201 with the whole record.
---@param client campaign.AnyClient
---@param profile table
---@param opts? {ext?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.create_profile(client, profile, opts)
  check_client("create_profile", client)
  check_body("create_profile", 2, "profile", profile)
  check_table("create_profile", 3, "opts", opts, true)
  local api_name = (opts and opts.ext) and "profileAndServicesExt" or "profileAndServices"
  return client:post(api_name .. "/profile", profile)
end

--- PATCH profileAndServices/profile/<pkey> with only the fields to change -> {PKey, href}.
---@param client campaign.AnyClient
---@param pkey string
---@param fields campaign.Body
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.update_profile(client, pkey, fields)
  check_client("update_profile", client)
  pkey = segment("update_profile", 2, "pkey", pkey)
  check_body("update_profile", 3, "fields", fields)
  return client:patch("profileAndServices/profile/" .. pkey, fields)
end

--- DELETE profileAndServices/profile/<pkey>.
---@param client campaign.AnyClient
---@param pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.delete_profile(client, pkey)
  check_client("delete_profile", client)
  pkey = segment("delete_profile", 2, "pkey", pkey)
  return client:delete("profileAndServices/profile/" .. pkey)
end

--- GET profileAndServices/history/<pkey>: the profile's marketing history (unwrapped if ACS
-- wraps it).
---@param client campaign.AnyClient
---@param pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_history_of_profile(client, pkey)
  check_client("get_history_of_profile", client)
  pkey = segment("get_history_of_profile", 2, "pkey", pkey)
  return unwrap_single(client:get("profileAndServices/history/" .. pkey))
end

-- Services -------------------------------------------------------------------------------------

--- GET profileAndServices/service[/filters...].
---@param client campaign.AnyClient
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_services(client, params)
  check_client("get_all_services", client)
  check_table("get_all_services", 2, "params", params, true)
  local path, query = api.listing("profileAndServices/service", params)
  return client:get(path, { query = query })
end

--- GET profileAndServices/service/<pkey>: the service (unwrapped if ACS wraps it).
---@param client campaign.AnyClient
---@param pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_service(client, pkey)
  check_client("get_service", client)
  pkey = segment("get_service", 2, "pkey", pkey)
  return unwrap_single(client:get("profileAndServices/service/" .. pkey))
end

--- POST profileAndServices/service (opts.ext = true: profileAndServicesExt/service).
---@param client campaign.AnyClient
---@param service table
---@param opts? {ext?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.create_service(client, service, opts)
  check_client("create_service", client)
  check_body("create_service", 2, "service", service)
  check_table("create_service", 3, "opts", opts, true)
  local api_name = (opts and opts.ext) and "profileAndServicesExt" or "profileAndServices"
  return client:post(api_name .. "/service", service)
end

-- Metadata -------------------------------------------------------------------------------------

--- GET profileAndServices/resourceType/<resource> (profile, service, history, ...).
-- opts.basic = true: customResources/resourceType/<resource>, the metadata of a custom resource
-- not linked to profiles (acs-api.md §5).
---@param client campaign.AnyClient
---@param resource string
---@param opts? {basic?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_metadata_for_resource(client, resource, opts)
  check_client("get_metadata_for_resource", client)
  resource = segment("get_metadata_for_resource", 2, "resource", resource)
  check_table("get_metadata_for_resource", 3, "opts", opts, true)
  local api_name = (opts and opts.basic) and "customResources" or "profileAndServices"
  return client:get(api_name .. "/resourceType/" .. resource)
end

--- GET profileAndServicesExt/resourceType/<resource>: metadata including custom fields.
-- (The SDK's operation of this name GETs profileAndServicesExt/<resource>, which returns data,
-- not metadata: that is api.get_all_profile_and_services_ext.)
---@param client campaign.AnyClient
---@param resource string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_metadata_for_resource_ext(client, resource)
  check_client("get_metadata_for_resource_ext", client)
  resource = segment("get_metadata_for_resource_ext", 2, "resource", resource)
  return client:get("profileAndServicesExt/resourceType/" .. resource)
end

--- GET profileAndServicesExt/<resource>[/filters...]: the records of a resource through the Ext
-- API (custom fields included), e.g. "profile" or a linked custom resource.
---@param client campaign.AnyClient
---@param resource string
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_profile_and_services_ext(client, resource, params)
  check_client("get_all_profile_and_services_ext", client)
  resource = segment("get_all_profile_and_services_ext", 2, "resource", resource)
  check_table("get_all_profile_and_services_ext", 3, "params", params, true)
  local path, query = api.listing("profileAndServicesExt/" .. resource, params)
  return client:get(path, { query = query })
end

--- GET profileAndServicesExt: the custom resources linked to the profile table.
---@param client campaign.AnyClient
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_custom_resources(client)
  check_client("get_custom_resources", client)
  return client:get("profileAndServicesExt")
end

-- Custom resources -----------------------------------------------------------------------------

--- GET customResources/<resource>[/filters...]: a custom resource not linked to profiles.
---@param client campaign.AnyClient
---@param resource string
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_basic_custom_resources(client, resource, params)
  check_client("get_all_basic_custom_resources", client)
  resource = segment("get_all_basic_custom_resources", 2, "resource", resource)
  check_table("get_all_basic_custom_resources", 3, "params", params, true)
  local path, query = api.listing("customResources/" .. resource, params)
  return client:get(path, { query = query })
end

--- GET profileAndServicesExt/<resource>[/filters...].
---@param client campaign.AnyClient
---@param resource string
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_custom_resources(client, resource, params)
  check_client("get_all_custom_resources", client)
  resource = segment("get_all_custom_resources", 2, "resource", resource)
  check_table("get_all_custom_resources", 3, "params", params, true)
  local path, query = api.listing("profileAndServicesExt/" .. resource, params)
  return client:get(path, { query = query })
end

-- opts.basic = true addresses a custom resource not linked to profiles (customResources API).
local function custom_base(opts)
  return (opts and opts.basic) and "customResources/" or "profileAndServicesExt/"
end

--- GET profileAndServicesExt/<resource>/<pkey>: the record (unwrapped if ACS wraps it).
---@param client campaign.AnyClient
---@param resource string
---@param pkey string
---@param opts? {basic?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_custom_resource(client, resource, pkey, opts)
  check_client("get_custom_resource", client)
  resource = segment("get_custom_resource", 2, "resource", resource)
  pkey = segment("get_custom_resource", 3, "pkey", pkey)
  check_table("get_custom_resource", 4, "opts", opts, true)
  return unwrap_single(client:get(custom_base(opts) .. resource .. "/" .. pkey))
end

--- POST profileAndServicesExt/<resource>.
---@param client campaign.AnyClient
---@param resource string
---@param record table
---@param opts? {basic?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.create_custom_resource(client, resource, record, opts)
  check_client("create_custom_resource", client)
  resource = segment("create_custom_resource", 2, "resource", resource)
  check_body("create_custom_resource", 3, "record", record)
  check_table("create_custom_resource", 4, "opts", opts, true)
  return client:post(custom_base(opts) .. resource, record)
end

--- PATCH profileAndServicesExt/<resource>/<pkey>.
---@param client campaign.AnyClient
---@param resource string
---@param pkey string
---@param fields campaign.Body
---@param opts? {basic?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.update_custom_resource(client, resource, pkey, fields, opts)
  check_client("update_custom_resource", client)
  resource = segment("update_custom_resource", 2, "resource", resource)
  pkey = segment("update_custom_resource", 3, "pkey", pkey)
  check_body("update_custom_resource", 4, "fields", fields)
  check_table("update_custom_resource", 5, "opts", opts, true)
  return client:patch(custom_base(opts) .. resource .. "/" .. pkey, fields)
end

--- DELETE profileAndServicesExt/<resource>/<pkey>.
---@param client campaign.AnyClient
---@param resource string
---@param pkey string
---@param opts? {basic?: boolean}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.delete_custom_resource(client, resource, pkey, opts)
  check_client("delete_custom_resource", client)
  resource = segment("delete_custom_resource", 2, "resource", resource)
  pkey = segment("delete_custom_resource", 3, "pkey", pkey)
  check_table("delete_custom_resource", 4, "opts", opts, true)
  return client:delete(custom_base(opts) .. resource .. "/" .. pkey)
end

-- Organizational units -------------------------------------------------------------------------

--- GET profileAndServicesExt/orgUnitBase[/filters...].
---@param client campaign.AnyClient
---@param params? campaign.api.ListingParams
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_all_org_units(client, params)
  check_client("get_all_org_units", client)
  check_table("get_all_org_units", 2, "params", params, true)
  local path, query = api.listing("profileAndServicesExt/orgUnitBase", params)
  return client:get(path, { query = query })
end

--- GET profileAndServicesExt/profile/<pkey>: the profile with its orgUnit link.
---@param client campaign.AnyClient
---@param pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_profile_with_org_unit(client, pkey)
  check_client("get_profile_with_org_unit", client)
  pkey = segment("get_profile_with_org_unit", 2, "pkey", pkey)
  return unwrap_single(client:get("profileAndServicesExt/profile/" .. pkey))
end

--- PATCH profileAndServicesExt/profile/<pkey> {orgUnit = {PKey = org_unit_pkey}}.
---@param client campaign.AnyClient
---@param pkey string
---@param org_unit_pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.update_profile_org_unit(client, pkey, org_unit_pkey)
  check_client("update_profile_org_unit", client)
  pkey = segment("update_profile_org_unit", 2, "pkey", pkey)
  check_string("update_profile_org_unit", 3, "org_unit_pkey", org_unit_pkey)
  return client:patch("profileAndServicesExt/profile/" .. pkey, { orgUnit = { PKey = org_unit_pkey } })
end

--- PATCH profileAndServicesExt/orgUnitBase/<org_unit_pkey> with the fields to change.
---@param client campaign.AnyClient
---@param org_unit_pkey string
---@param fields campaign.Body
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.update_org_unit(client, org_unit_pkey, fields)
  check_client("update_org_unit", client)
  org_unit_pkey = segment("update_org_unit", 2, "org_unit_pkey", org_unit_pkey)
  check_body("update_org_unit", 3, "fields", fields)
  return client:patch("profileAndServicesExt/orgUnitBase/" .. org_unit_pkey, fields)
end

-- Workflows ------------------------------------------------------------------------------------

--- GET workflow/execution/<workflow_id>: the workflow (unwrapped if ACS wraps it).
---@param client campaign.AnyClient
---@param workflow_id string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_workflow(client, workflow_id)
  check_client("get_workflow", client)
  workflow_id = segment("get_workflow", 2, "workflow_id", workflow_id)
  return unwrap_single(client:get("workflow/execution/" .. workflow_id))
end

local workflow_commands = { start = true, pause = true, resume = true, stop = true }

--- POST workflow/execution/<workflow_id>/commands {method = "start"|"pause"|"resume"|"stop"}.
---@param client campaign.AnyClient
---@param workflow_id string
---@param command "start"|"pause"|"resume"|"stop"|string case-insensitive
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.control_workflow(client, workflow_id, command)
  check_client("control_workflow", client)
  workflow_id = segment("control_workflow", 2, "workflow_id", workflow_id)
  check_string("control_workflow", 3, "command", command)
  local method = command:lower()
  if not workflow_commands[method] then
    error("campaign.api.control_workflow: command must be start, pause, resume or stop, got '"
      .. command .. "'", 2)
  end
  return client:post("workflow/execution/" .. workflow_id .. "/commands", { method = method })
end

--- POST <trigger_url> {source = "API", parameters = {...}}: trigger a signal activity. The URL
-- is the activity's trigger href from get_workflow (absolute or relative). `source` is
-- mandatory for ACS; it defaults to "API" (the caller's table is not modified).
-- During the 10-minute cooldown after a trigger, ACS answers plain text instead of JSON (the
-- Node SDK threw "invalid json response body", its #85). The answer is therefore read raw: JSON
-- is decoded, any other text becomes an error of kind "http" whose message is that text, so the
-- caller sees why the signal was refused rather than a JSON parse error.
local function signal_answer(url, body, res)
  if body == nil or type(body) ~= "string" then return body, res end
  if body:find("^%s*$") then return {}, res end
  -- campaign.decode answers nil, err for invalid JSON (a raising decoder is covered too)
  local ok, decoded = pcall(campaign_decode, body)
  if ok and decoded ~= nil then return decoded, res end
  local text = body:sub(1, 4096)
  return nil, campaign_error {
    kind = "http", method = "POST", url = url, status = res and res.status, body = text,
    headers = res and res.headers, attempts = res and res.attempts,
    message = "the signal was not triggered: " .. (text:gsub("%s+$", "")),
  }
end

---@param client campaign.AnyClient
---@param trigger_url string the activity's trigger href
---@param params? {source?: string, parameters?: table}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.trigger_signal_activity(client, trigger_url, params)
  check_client("trigger_signal_activity", client)
  check_string("trigger_signal_activity", 2, "trigger_url", trigger_url)
  check_table("trigger_signal_activity", 3, "params", params, true)
  local body = { source = "API" }
  for k, v in pairs(params or {}) do body[k] = v end
  -- the href as given, its query included (see href_options)
  return signal_answer(trigger_url, client:post(trigger_url, body, { raw = true }))
end

-- Transactional messages -----------------------------------------------------------------------

-- The transactional API is `mc<tenant>`: the client's org unless opts.tenant names another one.
-- A stage tenant keeps the bare org there (acme-mkt-stage1 -> mcacme, acs-api.md §1).
local function bare_org(org)
  return (org:gsub("%-mkt%-stage%d*$", ""))
end

local function transactional_tenant(fname, client, opts)
  if opts and opts.tenant ~= nil then
    local seg, problem = key_segment(opts.tenant)
    if not seg then
      error("campaign.api." .. fname .. ": opts.tenant must be a non-empty string"
        .. ((type(opts.tenant) == "string" and opts.tenant ~= "") and " (it " .. problem .. ")" or ""), 3)
    end
    return seg
  end
  local ok, org = pcall(function() return client.org end)
  if ok and type(org) == "function" then ok, org = pcall(org, client) end
  if ok and type(org) == "string" and org ~= "" then
    -- the client checked its org; encoded all the same, as every other segment here
    local seg = key_segment(bare_org(org))
    if seg then return seg end
  end
  -- client:url(path) gives <base_url>/<org>/campaign/<path>: the org is the segment before
  -- "/campaign/".
  ok, org = pcall(function() return client:url("x") end)
  if ok and type(org) == "string" then
    org = org:match("^[%a][%w+.-]*://[^/]+/.-([^/]+)/campaign/x$")
    if org then return bare_org(org) end -- taken from a URL: already encoded
  end
  error("campaign.api." .. fname .. ": pass opts.tenant (this client does not expose its org)", 3)
end

--- POST mc<tenant>/<event_id> with the event ({email=, ctx={...}, scheduled=, expiration=}).
---@param client campaign.AnyClient
---@param event_id string e.g. "EVTcartAbandonment"
---@param event table {email =, ctx = {...}}
---@param opts? {tenant?: string}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.send_transactional_event(client, event_id, event, opts)
  check_client("send_transactional_event", client)
  event_id = segment("send_transactional_event", 2, "event_id", event_id)
  check_body("send_transactional_event", 3, "event", event)
  check_table("send_transactional_event", 4, "opts", opts, true)
  local tenant = transactional_tenant("send_transactional_event", client, opts)
  return client:post("mc" .. tenant .. "/" .. event_id, event)
end

--- GET mc<tenant>/<event_id>/<event_pkey>: the event with its current status, unwrapped if ACS
-- wraps it. (The SDK sends this as POST; the ACS documentation says GET.)
---@param client campaign.AnyClient
---@param event_id string
---@param event_pkey string
---@param opts? {tenant?: string}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_transactional_event(client, event_id, event_pkey, opts)
  check_client("get_transactional_event", client)
  event_id = segment("get_transactional_event", 2, "event_id", event_id)
  event_pkey = segment("get_transactional_event", 3, "event_pkey", event_pkey)
  check_table("get_transactional_event", 4, "opts", opts, true)
  local tenant = transactional_tenant("get_transactional_event", client, opts)
  return unwrap_single(client:get("mc" .. tenant .. "/" .. event_id .. "/" .. event_pkey))
end

-- Privacy (GDPR/CCPA) --------------------------------------------------------------------------

--- POST privacy/privacyTool {name, namespaceName, reconciliationValue, regulation, label, type}.
---@param client campaign.AnyClient
---@param request table {name, namespaceName, reconciliationValue, regulation, type?}
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.create_gdpr_request(client, request)
  check_client("create_gdpr_request", client)
  check_body("create_gdpr_request", 2, "request", request)
  return client:post("privacy/privacyTool", request)
end

--- GET privacy/privacyTool: the privacy requests (listing parameters accepted).
---@param client campaign.AnyClient
---@param params? campaign.Query
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_gdpr_request(client, params)
  check_client("get_gdpr_request", client)
  check_table("get_gdpr_request", 2, "params", params, true)
  local path, query = api.listing("privacy/privacyTool", params)
  return client:get(path, { query = query })
end

--- POST <privacy_request_data_url> {name = request_internal_name}: the access file (a JSON
-- string holding XML). The URL is the request's gdprRequestData/privacyRequestData href.
---@param client campaign.AnyClient
---@param privacy_request_data_url string the request's privacyRequestData href
---@param request_internal_name string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_gdpr_data_file(client, privacy_request_data_url, request_internal_name)
  check_client("get_gdpr_data_file", client)
  check_string("get_gdpr_data_file", 2, "privacy_request_data_url", privacy_request_data_url)
  check_string("get_gdpr_data_file", 3, "request_internal_name", request_internal_name)
  local body = { name = request_internal_name }
  return client:post(privacy_request_data_url, body)
end

-- Subscriptions and counts (documented by ACS, absent from the SDK) -----------------------------

-- A href given by ACS (absolute, or relative to the campaign root) -> method call on the client,
-- the href verbatim (see href_options).
local function call_href(client, method, url, body)
  if body == nil then return client[method](client, url) end
  return client[method](client, url, body)
end

-- The subscriptions collection of a profile or service: `owner` is its PKey, or its record
-- (whose `subscriptions.href` is followed as the documentation asks).
local function subscriptions_href(fname, kind, owner)
  if type(owner) == "table" then
    local link = owner.subscriptions
    if type(link) == "table" and type(link.href) == "string" and link.href ~= "" then
      return link.href
    end
    owner = owner.PKey
  end
  owner = segment(fname, 2, kind, owner)
  return "profileAndServices/" .. kind .. "/" .. owner .. "/subscriptions/"
end

--- GET <profile>/subscriptions/: the services a profile subscribes to. `profile`: PKey or record.
---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param params? campaign.Query
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_profile_subscriptions(client, profile, params)
  check_client("get_profile_subscriptions", client)
  check_table("get_profile_subscriptions", 3, "params", params, true)
  local href = subscriptions_href("get_profile_subscriptions", "profile", profile)
  return client:get(href, href_options("get_profile_subscriptions", href, params))
end

--- GET <service>/subscriptions/: the subscribers of a service. `service`: PKey or record.
---@param client campaign.AnyClient
---@param service string|table a PKey or a service record
---@param params? campaign.Query
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_service_subscriptions(client, service, params)
  check_client("get_service_subscriptions", client)
  check_table("get_service_subscriptions", 3, "params", params, true)
  local href = subscriptions_href("get_service_subscriptions", "service", service)
  return client:get(href, href_options("get_service_subscriptions", href, params))
end

--- POST <profile.subscriptions.href> {service = {PKey = service_pkey}}: subscribe a profile to a
-- service. Answers the subscription record: PKey, service{PKey, href, ...}, subscriber{...}, and no
-- top-level `href` in ACS's documented answer; unsubscribe takes that record as it is.
---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param service_pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.subscribe(client, profile, service_pkey)
  check_client("subscribe", client)
  check_string("subscribe", 3, "service_pkey", service_pkey)
  local href = subscriptions_href("subscribe", "profile", profile)
  return call_href(client, "post", href, { service = { PKey = service_pkey } })
end

--- POST <service.subscriptions.href> {subscriber = {PKey = profile_pkey}}: add a subscriber.
---@param client campaign.AnyClient
---@param service string|table a PKey or a service record
---@param profile_pkey string
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.add_subscriber(client, service, profile_pkey)
  check_client("add_subscriber", client)
  check_string("add_subscriber", 3, "profile_pkey", profile_pkey)
  local href = subscriptions_href("add_subscriber", "service", service)
  return call_href(client, "post", href, { subscriber = { PKey = profile_pkey } })
end

-- A record's key as one path segment (encoded; hrefs.key_segment), else nil. A record's PKey
-- with '?' or '#' is not ACS's: refused rather than encoded.
local function segment_or_nil(v)
  if type(v) == "string" and not v:find("[?#]") then return (key_segment(v)) end
end

-- The href of a subscription record that has none (ACS's answer to subscribe and add_subscriber
-- documents no top-level `href`): <service>/subscriptions/<PKey>, the service being the record's
-- `service.href`, else profileAndServices/service/<service.PKey> (acs-api.md §5: "DELETE
-- …/service/<PKEY>/subscriptions/<PKEY>"). nil when the record has not enough for that.
local function subscription_href(record)
  local pkey, service = segment_or_nil(record.PKey), record.service
  if not pkey or type(service) ~= "table" then return nil end
  local base = service.href
  if type(base) == "string" and base ~= "" and not base:find("[?#]") then
    base = base:gsub("/+$", "")
  else
    local service_pkey = segment_or_nil(service.PKey)
    if not service_pkey then return nil end
    base = "profileAndServices/service/" .. service_pkey
  end
  return base .. "/subscriptions/" .. pkey
end

--- DELETE <subscription href>: unsubscribe. `subscription` is the subscription's href
-- (…/profile/<PKEY>/subscriptions/<PKEY> or …/service/<PKEY>/subscriptions/<PKEY>) or its record:
-- the record's `href` when it has one, else …/service/<service PKey>/subscriptions/<PKey> built
-- from its `PKey` and `service` (`service.href`, else `service.PKey`), as subscribe and
-- add_subscriber answer it. ACS answers 204 without a body: the client gives `{}`.
---@param client campaign.AnyClient
---@param subscription string|table the subscription's href or record
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.unsubscribe(client, subscription)
  check_client("unsubscribe", client)
  local href = subscription
  if type(subscription) == "table" then
    href = subscription.href
    if href == nil then
      href = subscription_href(subscription)
      if href == nil then
        error("campaign.api.unsubscribe: bad argument #2 'subscription' (the record has no href, "
          .. "and no PKey with a service{href or PKey} to build it from)", 2)
      end
    end
  end
  if type(href) ~= "string" or not href:find("/subscriptions/[^/?]+/?$") then
    bad_argument("unsubscribe", 2, "subscription", "subscription href or record",
      type(href) == "string" and "'" .. href .. "'" or type(href))
  end
  return call_href(client, "delete", href)
end

--- get_count(client, listing_or_href) -> n, res | nil, err
-- The number of records of a listing. Takes a listing answer (uses its inline `count.value` when
-- ACS gives one, else GETs `count.href`) or a count href (`.../profile//_count?...`, absolute or
-- relative), whose answer is {count = n}.
---@param client campaign.AnyClient
---@param source table|string a listing answer or a count href
---@return integer|nil n
---@return campaign.Response|campaign.Error|nil res_or_err (nil for an inline count)
function api.get_count(client, source)
  check_client("get_count", client)
  local href = source
  if type(source) == "table" then
    local count = source.count
    if type(count) == "table" and type(count.value) == "number" then return count.value end
    href = type(count) == "table" and count.href or nil
    if type(href) ~= "string" or href == "" then
      return nil, campaign_error { kind = "json", method = "GET",
        message = "the source has no count.href" }
    end
  else
    check_string("get_count", 2, "listing_or_href", source)
  end
  local body, res = call_href(client, "get", href)
  if body == nil then return nil, res end
  local n = type(body) == "table" and tonumber(body.count)
  if not n then
    return nil, campaign_error { kind = "json", method = "GET", url = href,
      status = res and res.status, message = "the count answer has no number 'count'" }
  end
  return n, res
end

-- Escape hatches -------------------------------------------------------------------------------

--- POST <url> with body: url is an absolute href of the same origin or a path relative to the
-- campaign root.
---@param client campaign.AnyClient
---@param url string an href, verbatim
---@param body campaign.Body
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.post_data_to_url(client, url, body)
  check_client("post_data_to_url", client)
  check_string("post_data_to_url", 2, "url", url)
  if body ~= nil then check_body("post_data_to_url", 3, "body", body) end
  return client:post(url, body or {})
end

--- GET <url>: a path relative to the campaign root ("mcAcme/EVT/@x", "/profileAndServices/..."
-- with or without a query) or an absolute href of the same origin (a next.href). The url goes to
-- the client verbatim, its own query untouched (a `_lineStart` cursor is opaque); `query` adds
-- parameters after it (opts.query), and naming a parameter the url's query has already raises.
---@param client campaign.AnyClient
---@param url string an href, verbatim (its own query kept)
---@param query? campaign.Query appended after it
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function api.get_data_from_relative_url(client, url, query)
  check_client("get_data_from_relative_url", client)
  check_string("get_data_from_relative_url", 2, "url", url)
  check_table("get_data_from_relative_url", 3, "query", query, true)
  return client:get(url, href_options("get_data_from_relative_url", url, query))
end

--- operationId of Adobe's OpenAPI description (and of the Node SDK) -> function name here.
api.operations = {
  getAllProfiles = "get_all_profiles",
  createProfile = "create_profile",
  updateProfile = "update_profile",
  getProfile = "get_profile",
  deleteProfile = "delete_profile",
  getAllServices = "get_all_services",
  createService = "create_service",
  getService = "get_service",
  getHistoryOfProfile = "get_history_of_profile",
  getMetadataForResource = "get_metadata_for_resource",
  getMetadataForResourceExt = "get_metadata_for_resource_ext",
  getAllProfileAndServicesExt = "get_all_profile_and_services_ext",
  getCustomResources = "get_custom_resources",
  getAllBasicCustomResources = "get_all_basic_custom_resources",
  getAllCustomResources = "get_all_custom_resources",
  getCustomResource = "get_custom_resource",
  createCustomResource = "create_custom_resource",
  updateCustomResource = "update_custom_resource",
  deleteCustomResource = "delete_custom_resource",
  getAllOrgUnits = "get_all_org_units",
  getProfileWithOrgUnit = "get_profile_with_org_unit",
  updateProfileOrgUnit = "update_profile_org_unit",
  updateOrgUnit = "update_org_unit",
  getWorkflow = "get_workflow",
  controlWorkflow = "control_workflow",
  triggerSignalActivity = "trigger_signal_activity",
  sendTransactionalEvent = "send_transactional_event",
  getTransactionalEvent = "get_transactional_event",
  createGDPRRequest = "create_gdpr_request",
  getGDPRRequest = "get_gdpr_request",
  getGDPRDataFile = "get_gdpr_data_file",
  postDataToUrl = "post_data_to_url",
  getDataFromRelativeUrl = "get_data_from_relative_url",
}

return api
