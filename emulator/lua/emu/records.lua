-- ACS resources backed by stored records: profiles, services, subscriptions, org units,
-- custom resources, history and resourceType metadata. Every handler takes the request
-- context and returns status, body (a table, a string, or nil for no body).
local json = require "emu.json"
local util = require "emu.util"
local schema = require "emu.schema"
local store = require "emu.store"
local seed = require "emu.seed"
local state = require "emu.state"
local listing = require "emu.listing"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = {}

local resources = schema.resources
local EXT = "profileAndServicesExt"
local STD = "profileAndServices"

-- A body that is a bare string or a JSON string starting with "@" (e.g. `@gibberish` or
-- `"@gibberish"`): the string, else nil. Adobe's SDK e2e test calls updateCustomResource with
-- its arguments swapped (PKey {}, body "@gibberish"), so the key arrives as the body; ACS
-- parses it as a PKey and refuses it ('@gibberish' is not a valid constant).
function _M.key_like_body(ctx)
  local text = ctx.body
  if type(text) ~= "string" then return nil end
  text = text:match("^%s*(.-)%s*$")
  if text:sub(1, 1) == "@" then return text end
  if text:sub(1, 2) == '"@' then
    local value = json.decode(text)
    if type(value) == "string" then return value end
  end
  return nil
end

-- Decodes the request body as a JSON object: table, or nil, status, body (400; a key-like
-- string body: ACS's invalid-PKey 500).
function _M.body_object(ctx)
  local text = ctx.body
  local key = _M.key_like_body(ctx)
  if key then return nil, util.invalid_pkey(key) end
  if text == nil or text == "" then
    return nil, 400, { code = 400, message = "The request body is empty: a JSON object is expected." }
  end
  local value, err = json.decode(text)
  if value == nil then
    return nil, 400, { code = 400, message = "The request body is not valid JSON: " .. tostring(err) }
  end
  if type(value) ~= "table" or (#value > 0) then
    return nil, 400, { code = 400, message = "The request body must be a JSON object." }
  end
  return value
end

local function bad(detail, expr)
  return util.engine_error(500, detail, "XTK-170006 Unable to parse expression '" .. expr .. "'.")
end

-- ---------------------------------------------------------------- rendering

local function record_href(ctx, api, kind, pkey)
  return ctx.root .. api .. "/" .. kind .. "/" .. pkey
end

local function org_unit_link(ctx, pkey)
  local unit = pkey and store.get("orgUnitBase", pkey)
  if not unit then return nil end
  return { PKey = unit.PKey, href = record_href(ctx, EXT, "orgUnitBase", unit.PKey),
    title = unit.label .. " (" .. unit.name .. ")" }
end

local renderers = {}

function renderers.profile(ctx, rec, api)
  local out = util.shallow_copy(rec)
  out.age = util.age(rec.birthDate) or 0
  out.domain = (rec.email or ""):match("@(.*)$") or ""
  local name = ((rec.firstName or "") .. " " .. (rec.lastName or "")):gsub("^%s+", ""):gsub("%s+$", "")
  if rec.email ~= "" and name ~= "" then
    out.title = name .. " (" .. rec.email .. ")"
  else
    out.title = name ~= "" and name or rec.email
  end
  out.subscriptions = { href = record_href(ctx, api, "profile", rec.PKey) .. "/subscriptions/" }
  if api == EXT then
    out.orgUnit = rec.orgUnit and org_unit_link(ctx, rec.orgUnit.PKey) or nil
  else
    out.orgUnit, out.cusCrmId, out.cusLoyaltyPoints = nil, nil, nil
  end
  return out
end

function renderers.service(ctx, rec, api)
  local out = util.shallow_copy(rec)
  out.title = rec.label ~= "" and (rec.label .. " (" .. rec.name .. ")") or rec.name
  out.subscriptions = { href = record_href(ctx, api, "service", rec.PKey) .. "/subscriptions/" }
  return out
end

function renderers.orgUnitBase(_, rec)
  local out = util.shallow_copy(rec)
  out.parentPKey = nil
  out.title = rec.label .. " (" .. rec.name .. ")"
  local parent = rec.parentPKey ~= "" and store.get("orgUnitBase", rec.parentPKey)
  out.parentTitle = parent and (parent.label .. " (" .. parent.name .. ")") or ""
  return out
end

-- via: "profile" or "service": the collection the subscription was reached through.
function renderers.subscription(ctx, rec, api, via, via_key)
  local svc = store.get("service", rec.service) or { PKey = rec.service, label = "", name = "" }
  local profile = store.get("profile", rec.subscriber) or { PKey = rec.subscriber, email = "" }
  via = via or "service"
  via_key = via_key or (via == "service" and svc.PKey or profile.PKey)
  return {
    PKey = rec.PKey, created = rec.created, email = profile.email or "",
    expirationDate = rec.expirationDate or "",
    href = record_href(ctx, api, via, via_key) .. "/subscriptions/" .. rec.PKey,
    metadata = via == "profile" and "subscriptionRcp" or "subscriptionSvc",
    service = { PKey = svc.PKey, href = record_href(ctx, api, "service", svc.PKey), label = svc.label,
      name = svc.name, title = svc.label .. " (" .. svc.name .. ")" },
    serviceName = svc.name,
    subscriber = { PKey = profile.PKey, href = record_href(ctx, api, "profile", profile.PKey),
      title = profile.email or "" },
  }
end

local function render(ctx, kind, rec, api, in_list)
  local fn = renderers[kind]
  local out = fn and fn(ctx, rec, api) or util.shallow_copy(rec)
  if in_list then out.href = record_href(ctx, api, kind, rec.PKey) end
  return out
end
_M.render = render

-- ---------------------------------------------------------------- filters

local function prefix(s, p) return type(s) == "string" and s:sub(1, #p) == p end

local function require_param(args, name, filter)
  local v = args[name]
  if type(v) == "table" then v = v[1] end
  if v == nil or v == true then
    return nil, bad("The '" .. name .. "' parameter of the '" .. filter .. "' filter is mandatory.", filter)
  end
  return v
end

local filter_impl = {
  profile = {
    byEmail = function(args)
      local email, status, body = require_param(args, "email", "byEmail")
      if not email then return nil, status, body end
      return function(rec) return rec.email == email end
    end,
    byText = function(args)
      local text, status, body = require_param(args, "text", "byText")
      if not text then return nil, status, body end
      local only = args.filterType
      if only ~= nil and not resources.profile.by_name[only] then
        return nil, bad("'" .. tostring(only) .. "' is not a valid filterType for the 'byText' filter.",
          "byText")
      end
      return function(rec)
        if only then return prefix(rec[only], text) end
        return prefix(rec.email, text) or prefix(rec.lastName, text)
      end
    end,
  },
  service = {
    byChannel = function(args)
      local channel, status, body = require_param(args, "channel", "byChannel")
      if not channel then return nil, status, body end
      return function(rec) return rec.messageType == channel end
    end,
    byText = function(args)
      local text, status, body = require_param(args, "text", "byText")
      if not text then return nil, status, body end
      return function(rec) return prefix(rec.label, text) or prefix(rec.name, text) end
    end,
  },
  cusProduct = {
    byCategory = function(args)
      local category, status, body = require_param(args, "category", "byCategory")
      if not category then return nil, status, body end
      return function(rec) return rec.category == category end
    end,
  },
}

-- ---------------------------------------------------------------- collections

local function visible(kind, api)
  local res = resources[kind]
  if not res then return false end
  if api == "customResources" then return res.unlinked == true end
  if res.unlinked then return false end
  if res.ext_only then return api == EXT end
  return kind == "profile" or kind == "service"
end
_M.visible = visible

local function list(ctx, kind, filters, count_only)
  local res = resources[kind]
  count_only = count_only or ctx.count_only
  if count_only then ctx.counted = true end
  local preds = {}
  for _, name in ipairs(filters) do
    local make = filter_impl[kind] and filter_impl[kind][name]
    if not make then
      return util.not_found("The '" .. name .. "' filter does not exist for the '" .. kind .. "' resource.")
    end
    local pred, status, body = make(ctx.args)
    if not pred then return status, body end
    preds[#preds + 1] = pred
  end
  local table_size = store.count(kind)
  local items, load
  if #preds == 0 then
    -- Unfiltered: page over the PKeys and decode only the records shown.
    if count_only then return 200, { count = table_size } end
    items = store.keys(kind)
    load = function(pkey) return store.get(kind, pkey) end
  else
    local candidates
    if kind == "profile" and filters[1] == "byEmail" and type(ctx.args.email) == "string" then
      -- Lookups by email are the common case: use the email index, not a scan.
      candidates = {}
      for _, pkey in ipairs(store.linked("email", ctx.args.email)) do
        candidates[#candidates + 1] = store.get(kind, pkey)
      end
    else
      candidates = store.all(kind)
    end
    items = {}
    for _, rec in ipairs(candidates) do
      local keep = true
      for _, pred in ipairs(preds) do
        if not pred(rec) then keep = false; break end
      end
      if keep then items[#items + 1] = rec end
    end
    if count_only then return 200, { count = #items } end
  end
  local base = ctx.root .. ctx.api .. "/" .. kind .. "/"
  local path, count_path = base, base .. "/_count"
  if #filters > 0 then
    path = base .. table.concat(filters, "/")
    count_path = path .. "/_count"
  end
  return listing.page(ctx, {
    res = res, items = items, load = load, path = path, count_path = count_path, table_size = table_size,
    render = function(rec) return render(ctx, kind, rec, ctx.api, true) end,
  })
end

-- GET <api>/<kind>/<field>: attribute projection, {"content":[values...]}.
local function project(ctx, kind, field)
  local items = store.keys(kind)
  return listing.page(ctx, {
    res = resources[kind], items = items, table_size = #items,
    load = function(pkey) return store.get(kind, pkey) end,
    path = ctx.root .. ctx.api .. "/" .. kind .. "/" .. field,
    count_path = ctx.root .. ctx.api .. "/" .. kind .. "/" .. field .. "/_count",
    render = function(rec)
      local v = render(ctx, kind, rec, ctx.api)[field]
      if v == nil then return util.null end
      return v
    end,
  })
end

local function duplicate(label, key, constraint)
  return util.engine_error(500,
    "A '" .. label .. "' with the same key '" .. tostring(key) .. "' already exists.",
    "PGS-220000 PostgreSQL error: ERROR:  duplicate key value violates unique constraint \""
      .. constraint .. "\"")
end

local function check_org_unit(body)
  if type(body.orgUnit) == "table" and not store.exists("orgUnitBase", body.orgUnit.PKey) then
    return util.unknown_pkey("orgUnitBase", body.orgUnit.PKey)
  end
end

local function create(ctx, kind)
  local res = resources[kind]
  local body, status, err = _M.body_object(ctx)
  if not body then return status, err end
  status, err = schema.validate(res, body, ctx.ext, "create")
  if status then return status, err end
  if state.config("data_policies") then
    body, status, err = schema.apply_data_policies(res, body)
    if not body then return status, err end
  end
  status, err = check_org_unit(body)
  if status then return status, err end
  local unique_value = res.unique and body[res.unique]
  local taken = unique_value and unique_value ~= "" and store.unique_owner(kind, unique_value)
  if kind == "profile" and unique_value then
    -- The email index also knows emails set by PATCH.
    taken = unique_value ~= "" and #store.linked("email", unique_value) > 0
  end
  if taken then
    local constraint = res.schema:gsub(":", "") .. "_" .. res.unique
    return duplicate(res.unique_label or "Profile", unique_value, constraint)
  end
  local rec = {}
  if kind == "profile" then rec = seed.profile_defaults() end
  if kind == "service" then rec = seed.service_defaults() end
  if kind == "profile" then rec.cusCrmId, rec.cusLoyaltyPoints = "", 0 end
  for k, v in pairs(body) do
    if v == util.null then v = nil end
    if type(v) == "table" and type(rec[k]) == "table" and k ~= "orgUnit" then
      for sk, sv in pairs(v) do rec[k][sk] = sv end
    else
      rec[k] = v
    end
  end
  rec.orgUnit = body.orgUnit and { PKey = body.orgUnit.PKey } or nil
  rec.PKey = store.next_pkey(kind)
  rec.created = util.datetime()
  rec.lastModified = rec.created
  if kind == "orgUnitBase" then rec.parentPKey = rec.parentPKey or "" end
  store.put(kind, rec)
  if res.unique and rec[res.unique] and rec[res.unique] ~= "" then
    store.set_unique(kind, rec[res.unique], rec.PKey)
  end
  if kind == "profile" then store.link("email", rec.email or "", rec.PKey) end
  return 201, render(ctx, kind, rec, ctx.api, true)
end

-- Kinds whose single-GET answer depends only on the record itself (plus the origin, the
-- API and, for age, the day): their JSON text is cached under the record's version. The Ext
-- profile shows its org unit's title, so it is always rendered afresh.
local CACHEABLE = { profile = true, service = true, cusProduct = true, cusStore = true }

local function get_one(ctx, kind, pkey)
  local wrap = state.config("wrap_single_get")
  local cache_key
  if CACHEABLE[kind] and not (kind == "profile" and ctx.ext) then
    local version = store.version(kind, pkey)
    if not version then return util.unknown_pkey(kind, pkey) end
    cache_key = table.concat({ "get", kind, pkey, version, ctx.root, ctx.api, tostring(wrap),
      os.date("!%Y%m%d", ngx.time()) }, "|")
    local text = store.cached(cache_key)
    if text then return 200, text end
  end
  local rec = store.get(kind, pkey)
  if not rec then return util.unknown_pkey(kind, pkey) end
  local out = render(ctx, kind, rec, ctx.api)
  if wrap then out = { content = json.array { out } } end
  local text = json.encode(out)
  if cache_key then store.cache(cache_key, text) end
  return 200, text
end

-- body: the decoded request body when the caller already has it.
local function patch(ctx, kind, pkey, body)
  local res = resources[kind]
  local rec = store.get(kind, pkey)
  if not rec then return util.unknown_pkey(kind, pkey) end
  local status, err
  if not body then
    body, status, err = _M.body_object(ctx)
    if not body then return status, err end
  end
  status, err = schema.validate(res, body, ctx.ext, "patch")
  if status then return status, err end
  if state.config("data_policies") then
    body, status, err = schema.apply_data_policies(res, body)
    if not body then return status, err end
  end
  status, err = check_org_unit(body)
  if status then return status, err end
  local old_unique = res.unique and rec[res.unique]
  local old_email = rec.email
  local changed = false
  for k, v in pairs(body) do
    changed = true
    if v == util.null then
      rec[k] = nil
    elseif type(v) == "table" and type(rec[k]) == "table" and k ~= "orgUnit" then
      for sk, sv in pairs(v) do rec[k][sk] = sv ~= util.null and sv or "" end
    elseif k == "orgUnit" then
      rec[k] = { PKey = v.PKey }
    else
      rec[k] = v
    end
  end
  if changed then rec.lastModified = util.datetime() end
  store.put(kind, rec)
  if kind == "profile" and rec.email ~= old_email then
    store.unlink("email", old_email or "", pkey)
    store.link("email", rec.email or "", pkey)
  end
  if res.unique and rec[res.unique] ~= old_unique then
    store.clear_unique(kind, old_unique, pkey)
    if rec[res.unique] and rec[res.unique] ~= "" and not store.unique_owner(kind, rec[res.unique]) then
      store.set_unique(kind, rec[res.unique], pkey)
    end
  end
  return 200, { PKey = pkey, href = record_href(ctx, ctx.api, kind, pkey) }
end

local function delete(_, kind, pkey)
  local res = resources[kind]
  local rec = store.get(kind, pkey)
  if not rec then return util.unknown_pkey(kind, pkey) end
  store.delete(kind, pkey)
  if res.unique and rec[res.unique] then store.clear_unique(kind, rec[res.unique], pkey) end
  if kind == "profile" then store.unlink("email", rec.email or "", pkey) end
  if kind == "profile" or kind == "service" then
    local field = kind == "profile" and "subscriber" or "service"
    for _, sub in ipairs(store.subscriptions_of(field, pkey)) do store.remove_subscription(sub) end
  end
  return 200, nil
end

-- ---------------------------------------------------------------- subscriptions

local function subscriptions(ctx, kind, owner, sub_key)
  if not store.exists(kind, owner) then return util.unknown_pkey(kind, owner) end
  local own_field = kind == "profile" and "subscriber" or "service"
  local other_field = kind == "profile" and "service" or "subscriber"
  local other_kind = kind == "profile" and "service" or "profile"
  local method = ctx.method
  if sub_key then
    local sub = store.get("subscription", sub_key)
    if not sub or sub[own_field] ~= owner then return util.unknown_pkey("subscription", sub_key) end
    if method == "GET" then return 200, renderers.subscription(ctx, sub, ctx.api, kind, owner) end
    if method == "DELETE" then
      store.remove_subscription(sub)
      return 204, nil
    end
    return _M.method_not_allowed(ctx)
  end
  if method == "GET" then
    local items = store.subscriptions_of(own_field, owner)
    local path = record_href(ctx, ctx.api, kind, owner) .. "/subscriptions/"
    return listing.page(ctx, { res = resources.subscription, items = items, path = path,
      count_path = path .. "/_count",
      render = function(sub) return renderers.subscription(ctx, sub, ctx.api, kind, owner) end })
  elseif method == "POST" then
    local body, status, err = _M.body_object(ctx)
    if not body then return status, err end
    for k in pairs(body) do
      if k ~= other_field and k ~= "expirationDate" then
        return bad("'" .. tostring(k) .. "' property is not valid for the 'subscription' resource.",
          tostring(k))
      end
    end
    local link = body[other_field]
    if type(link) ~= "table" or type(link.PKey) ~= "string" then
      return bad("The '" .. other_field .. "' property is mandatory: {\"" .. other_field
        .. "\":{\"PKey\":\"@...\"}}.", other_field)
    end
    if not store.exists(other_kind, link.PKey) then return util.unknown_pkey(other_kind, link.PKey) end
    for _, sub in ipairs(store.subscriptions_of(own_field, owner)) do
      if sub[other_field] == link.PKey then
        return duplicate("Subscription", link.PKey, "nmssubscription_id")
      end
    end
    local sub = { PKey = store.next_pkey("subscription"), created = util.datetime(),
      expirationDate = type(body.expirationDate) == "string" and body.expirationDate or "" }
    sub[own_field], sub[other_field] = owner, link.PKey
    store.add_subscription(sub)
    return 201, renderers.subscription(ctx, sub, ctx.api, kind, owner)
  end
  return _M.method_not_allowed(ctx)
end

function _M.method_not_allowed(ctx)
  return 405, { code = 405, message = "The " .. ctx.method .. " method is not allowed on this resource." }
end

-- ---------------------------------------------------------------- history

local function history_events(ctx, pkey)
  local events = {}
  local n = 0
  for ch in pkey:sub(2, 4):gmatch(".") do n = n + ch:byte() end
  for i = 1, 3 + n % 3 do
    local event_key = util.pkey("broadLog", pkey .. "/" .. i)
    events[i] = {
      PKey = event_key, category = i % 3 == 0 and "sms" or "email",
      date = util.datetime(1569453635 + 86400 * (i * 7 + n % 30)),
      href = ctx.root .. STD .. "/history/" .. pkey .. "/events/" .. event_key,
      label = i % 3 == 0 and "SMS alert" or ("Newsletter #" .. i),
      mirrorPage = { href = ctx.origin .. "/nl/jsp/m.jsp?c=" .. event_key:sub(2, 20) },
      type = "outbound",
    }
  end
  return events
end

local function history_record(ctx, rec)
  local out = render(ctx, "profile", rec, STD)
  out.events = { href = ctx.root .. STD .. "/history/" .. rec.PKey .. "/events/", metadata = "subHisto" }
  out.href = ctx.root .. STD .. "/history/" .. rec.PKey
  return out
end

local function history(ctx, seg)
  if ctx.method ~= "GET" then return _M.method_not_allowed(ctx) end
  local key = seg[3]
  if key == "metadata" and seg[4] == nil then
    return 200, schema.metadata(schema.history, ctx.root, ctx.api, ctx.ext)
  end
  if key == nil or key == "" or key:sub(1, 2) == "by" then
    local filters = {}
    if key and key ~= "" then filters[1] = key end
    local preds = {}
    for _, name in ipairs(filters) do
      local make = filter_impl.profile[name]
      if not make then
        return util.not_found("The '" .. name .. "' filter does not exist for the 'history' resource.")
      end
      local pred, status, body = make(ctx.args)
      if not pred then return status, body end
      preds[#preds + 1] = pred
    end
    local items = {}
    for _, rec in ipairs(store.all("profile")) do
      local keep = true
      for _, pred in ipairs(preds) do if not pred(rec) then keep = false end end
      if keep then items[#items + 1] = rec end
    end
    local path = ctx.root .. STD .. "/history/" .. table.concat(filters, "/")
    return listing.page(ctx, { res = resources.profile, items = items, path = path,
      count_path = path .. "/_count",
      render = function(rec) return history_record(ctx, rec) end })
  end
  local rec = store.get("profile", key)
  if not rec then return util.unknown_pkey("history", key) end
  if seg[4] == nil then
    local out = history_record(ctx, rec)
    out.href = nil
    return 200, out
  end
  if seg[4] ~= "events" then return util.not_found() end
  local events = history_events(ctx, key)
  if seg[5] then
    for _, ev in ipairs(events) do
      if ev.PKey == seg[5] then return 200, ev end
    end
    return util.unknown_pkey("event", seg[5])
  end
  local path = ctx.root .. STD .. "/history/" .. key .. "/events/"
  return listing.page(ctx, { items = events, path = path, count_path = path .. "/_count",
    render = function(ev) return ev end })
end

-- ---------------------------------------------------------------- metadata

local function find_resource(api, name)
  if api ~= "customResources" and (name == "history" or name == util.pkey("resourceType", "history")) then
    return schema.history
  end
  for kind, res in pairs(resources) do
    if (kind == name or util.pkey("resourceType", kind) == name) and visible(kind, api) then return res end
  end
  return nil
end

local function metadata(ctx, seg)
  if ctx.method ~= "GET" then return _M.method_not_allowed(ctx) end
  local res = seg[3] and find_resource(ctx.api, seg[3])
  if not res then return util.not_found("The '" .. tostring(seg[3]) .. "' resource does not exist.") end
  if seg[4] == "filters" then return 200, schema.filters_metadata(res, ctx.api) end
  if seg[4] ~= nil then return util.not_found() end
  return 200, schema.metadata(res, ctx.root, ctx.api, ctx.ext)
end

-- GET <api>/ : the resources the API exposes (for profileAndServicesExt: the custom
-- resources linked to the profile, as the getCustomResources operation reads them).
local function api_root(ctx)
  if ctx.method ~= "GET" then return _M.method_not_allowed(ctx) end
  local out = { apiName = "resourceType" }
  for kind, res in pairs(resources) do
    if visible(kind, ctx.api) then
      out[kind] = { data = "/" .. ctx.api .. "/" .. kind .. "/",
        href = ctx.root .. ctx.api .. "/" .. kind .. "/metadata",
        label = res.label, name = kind, schema = res.schema, type = "collection" }
    end
  end
  return 200, out
end

-- ---------------------------------------------------------------- business key

-- On the Ext API a profile extended with a business key (cusCrmId here) is also reached
-- as profileAndServicesExt/profile/<key>, and a PATCH on the collection with the key in the
-- body updates it (KB ka-15086). The key itself cannot be changed that way.
local BUSINESS_KEY = "cusCrmId"

local function by_business_key(value)
  if type(value) ~= "string" or value == "" then return nil end
  for _, rec in ipairs(store.all("profile")) do
    if rec[BUSINESS_KEY] == value then return rec.PKey end
  end
  return nil
end

local function key_read_only()
  return bad("Cannot update the '" .. BUSINESS_KEY .. "' property used as the key.", BUSINESS_KEY)
end

local function patch_by_business_key(ctx, key)
  local body, status, err = _M.body_object(ctx)
  if not body then return status, err end
  if key == nil then
    key = body[BUSINESS_KEY]
    body[BUSINESS_KEY] = nil
  elseif body[BUSINESS_KEY] ~= nil then
    return key_read_only()
  end
  local pkey = by_business_key(key)
  if not pkey then return util.unknown_pkey("profile", key, true) end
  return patch(ctx, "profile", pkey, body)
end

-- ---------------------------------------------------------------- dispatch

-- seg: path segments after /<org>/campaign/ (seg[1] is the API name).
function _M.handle(ctx, seg)
  local method = ctx.method
  local kind = seg[2]
  if kind == nil or kind == "" then return api_root(ctx) end
  if kind == "resourceType" then return metadata(ctx, seg) end
  if kind == "history" and ctx.api ~= "customResources" then return history(ctx, seg) end
  local third = seg[3]
  if method == "POST" or method == "PATCH" or method == "PUT" then
    local key = _M.key_like_body(ctx)
    if key then return util.invalid_pkey(key) end
  end
  if not visible(kind, ctx.api) then
    -- The key's shape is judged before the resource (the SDK e2e PATCHes a random custom
    -- resource name with @gibberish and expects "not a valid constant"): a key that cannot be
    -- a PKey is ACS's 500. A GET of a name without "@" may be a projection or a filter: 404.
    if third and third ~= "" and seg[4] == nil and not util.well_formed_pkey(third)
      and third:sub(1, 2) ~= "by" and third ~= "_count" and third ~= "metadata" then
      local at = third:sub(1, 1) == "@"
      if (at and (method == "GET" or method == "PATCH" or method == "DELETE"))
        or (not at and (method == "PATCH" or method == "DELETE")) then
        return util.invalid_pkey(third)
      end
    end
    return util.not_found("The '" .. kind .. "' resource does not exist in the '" .. ctx.api .. "' API.")
  end
  local res = resources[kind]
  if third == nil or third == "" then
    if method == "GET" then return list(ctx, kind, {}) end
    if method == "POST" then return create(ctx, kind) end
    if method == "PATCH" and kind == "profile" and ctx.ext then return patch_by_business_key(ctx) end
    return _M.method_not_allowed(ctx)
  end
  if third == "_count" then
    if method ~= "GET" then return _M.method_not_allowed(ctx) end
    return list(ctx, kind, {}, true)
  end
  if third == "metadata" and seg[4] == nil then
    if method ~= "GET" then return _M.method_not_allowed(ctx) end
    return 200, schema.metadata(res, ctx.root, ctx.api, ctx.ext)
  end
  if third:sub(1, 2) == "by" then
    local filters, i = {}, 3
    while seg[i] and seg[i]:sub(1, 2) == "by" do
      filters[#filters + 1] = seg[i]
      i = i + 1
    end
    local count_only = seg[i] == "_count"
    if (seg[i] ~= nil and not count_only) or seg[i + 1] ~= nil then return util.not_found() end
    if method == "GET" then return list(ctx, kind, filters, count_only) end
    if method == "POST" and not count_only then return create(ctx, kind) end
    return _M.method_not_allowed(ctx)
  end
  if third:sub(1, 1) ~= "@" and res.by_name[third] and seg[4] == nil and method == "GET" then
    return project(ctx, kind, third)
  end
  if seg[4] == "subscriptions" and (kind == "profile" or kind == "service") then
    if seg[6] ~= nil then return util.not_found() end
    return subscriptions(ctx, kind, third, seg[5] ~= "" and seg[5] or nil)
  end
  if seg[4] ~= nil then return util.not_found() end
  if kind == "profile" and ctx.ext and third:sub(1, 1) ~= "@" then
    if method == "PATCH" then return patch_by_business_key(ctx, third) end
    local pkey = by_business_key(third)
    -- a business key that matches nothing is a missing profile (404), not a bad PKey
    if not pkey and (method == "GET" or method == "DELETE") then
      return util.unknown_pkey("profile", third, true)
    end
    third = pkey or third
  end
  if method == "GET" then return get_one(ctx, kind, third) end
  if method == "PATCH" then return patch(ctx, kind, third) end
  if method == "DELETE" then return delete(ctx, kind, third) end
  return _M.method_not_allowed(ctx)
end

return _M
