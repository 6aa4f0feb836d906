-- The emulated data model: resources, their fields, enumerations, filters; validation of
-- writes with ACS's error texts; the resourceType metadata built from the same tables.
local util = require "emu.util"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring

local _M = {}

local LANGUAGES = { "none", "de_de", "en_gb", "en_us", "es_es", "fr_fr", "it_it", "ja_jp", "nl_nl", "pt_br" }
local TIME_ZONES = { "none", "America_Los_Angeles", "America_New_York", "Asia_Tokyo", "Europe_London",
  "Europe_Paris", "UTC" }

local function f(name, type_, opts)
  opts = opts or {}
  opts.name, opts.type = name, type_
  return opts
end

local function ro_of(t) t = t or {}; t.readOnly = true; return t end

local address = {
  f("address1", "string", { length = 80 }), f("address2", "string", { length = 80 }),
  f("address3", "string", { length = 80 }), f("address4", "string", { length = 80 }),
  f("city", "string", { length = 50 }), f("countryCode", "string", { length = 2 }),
  f("stateCode", "string", { length = 10 }), f("zipCode", "string", { length = 20 }),
}

-- Each resource: schema (the ACS schema name), label, fields (in metadata order), filters.
-- Field types: string, boolean, number, date ("YYYY-MM-DD" or ""), datetime, enumeration
-- (values), item (nested object with sub-fields), link (to another resource), collection.
_M.resources = {
  profile = {
    schema = "nms:recipient", label = "Profiles", help = "Identified profiles", api = "profileAndServices",
    fields = {
      f("PKey", "string", ro_of()), f("age", "number", ro_of { resType = "int16" }),
      f("birthDate", "date", { sortable = true }),
      f("blackList", "boolean"), f("blackListAllLastModified", "datetime", ro_of()),
      f("blackListEmail", "boolean"), f("blackListEmailLastModified", "datetime", ro_of()),
      f("blackListFax", "boolean"), f("blackListFaxLastModified", "datetime", ro_of()),
      f("blackListLastModified", "datetime", ro_of()),
      f("blackListMobile", "boolean"), f("blackListMobileLastModified", "datetime", ro_of()),
      f("blackListPhone", "boolean"), f("blackListPhoneLastModified", "datetime", ro_of()),
      f("blackListPostalMail", "boolean"), f("blackListPostalMailLastModified", "datetime", ro_of()),
      f("blackListPushnotification", "boolean"), f("blackListPushnotificationLastModified", "datetime",
        ro_of()),
      f("ccpaOptOut", "boolean"),
      f("created", "datetime", ro_of { sortable = true }),
      f("cusCrmId", "string", { length = 64, ext = true, sortable = true }),
      f("cusLoyaltyPoints", "number", { ext = true, sortable = true, resType = "int64" }),
      f("domain", "string", ro_of { length = 128 }),
      f("email", "string", { length = 128, sortable = true, dataPolicy = "email" }),
      f("emailFormat", "enumeration", { values = { "unknown", "text", "html" },
        enum = "nms:recipient:emailFormat" }),
      f("firstName", "string", { length = 30, sortable = true, dataPolicy = "smartCase" }),
      f("gender", "enumeration", { values = { "unknown", "male", "female" }, enum = "nms:recipient:gender",
        sortable = true }),
      f("href", "string", ro_of()),
      f("lastModified", "datetime", ro_of { sortable = true }),
      f("lastName", "string", { length = 50, sortable = true, dataPolicy = "smartCase" }),
      f("location", "item", { fields = address }),
      f("middleName", "string", { length = 30 }),
      f("mobilePhone", "string", { length = 32 }),
      f("orgUnit", "link", { ext = true, target = "orgUnitBase" }),
      f("phone", "string", { length = 32 }),
      f("preferredLanguage", "enumeration", { values = LANGUAGES, enum = "nms:recipient:preferredLanguage" }),
      f("salutation", "string", { length = 80 }),
      f("subscriptions", "collection", ro_of { target = "subscription" }),
      f("thumbnail", "string", ro_of()),
      f("timeZone", "enumeration", { values = TIME_ZONES, enum = "nms:recipient:timeZone" }),
      f("title", "string", ro_of()),
    },
    filters = {
      byEmail = { params = { "email" }, label = "By email",
        data = "/profileAndServices/profile/byEmail?email=$value" },
      byText = { params = { "text", "filterType" }, label = "By text",
        data = "/profileAndServices/profile/byText?text=$value" },
    },
    unique = "email",
  },
  service = {
    schema = "nms:service", label = "Services", help = "Subscription services", api = "profileAndServices",
    fields = {
      f("PKey", "string", ro_of()), f("created", "datetime", ro_of { sortable = true }),
      f("end", "date"), f("href", "string", ro_of()),
      f("label", "string", { length = 128, sortable = true }),
      f("lastModified", "datetime", ro_of { sortable = true }),
      f("limitedDuration", "boolean"),
      f("messageType", "enumeration", { values = { "email", "sms" }, enum = "nms:service:messageType" }),
      f("mode", "enumeration", { values = { "newsletter", "viral" }, enum = "nms:service:mode" }),
      f("name", "string", { length = 64, sortable = true }),
      f("start", "date"),
      f("subscriptions", "collection", ro_of { target = "subscription" }),
      f("targetResource", "string", ro_of()), f("thumbnail", "string", ro_of()), f("title", "string",
        ro_of()),
      f("validityPeriod", "number"),
    },
    filters = {
      byChannel = { params = { "channel" }, label = "By channel",
        data = "/profileAndServices/service/byChannel?channel=$value" },
      byText = { params = { "text" }, label = "By text",
        data = "/profileAndServices/service/byText?text=$value" },
    },
    unique = "name", unique_label = "Service",
  },
  subscription = {
    schema = "nms:subscription", label = "Subscriptions", api = "profileAndServices",
    fields = {
      f("PKey", "string", ro_of()), f("created", "datetime", ro_of()), f("email", "string", ro_of()),
      f("expirationDate", "date"), f("href", "string", ro_of()), f("metadata", "string", ro_of()),
      f("service", "link", { target = "service" }), f("serviceName", "string", ro_of()),
      f("subscriber", "link", { target = "profile" }),
    },
    filters = {},
  },
  orgUnitBase = {
    schema = "nms:orgUnit", label = "Organizational units", api = "profileAndServicesExt", ext_only = true,
    fields = {
      f("PKey", "string", ro_of()), f("created", "datetime", ro_of()), f("desc", "string", { length = 255 }),
      f("href", "string", ro_of()), f("label", "string", { length = 128, sortable = true }),
      f("lastModified", "datetime", ro_of()), f("name", "string", { length = 64, sortable = true }),
      f("parentTitle", "string", ro_of()), f("title", "string", ro_of()),
    },
    filters = {},
  },
  cusProduct = {
    schema = "cus:product", label = "Products", api = "profileAndServicesExt", ext_only = true, custom = true,
    fields = {
      f("PKey", "string", ro_of()), f("category", "string", { length = 64, sortable = true }),
      f("created", "datetime", ro_of()), f("href", "string", ro_of()), f("lastModified", "datetime", ro_of()),
      f("name", "string", { length = 128, sortable = true }), f("price", "number", { sortable = true }),
      f("sku", "string", { length = 32, sortable = true }),
    },
    filters = {
      byCategory = { params = { "category" }, label = "By category",
        data = "/profileAndServicesExt/cusProduct/byCategory?category=$value" },
    },
  },
  cusStore = {
    schema = "cus:store", label = "Stores", api = "customResources", custom = true, unlinked = true,
    fields = {
      f("PKey", "string", ro_of()), f("city", "string", { length = 50, sortable = true }),
      f("created", "datetime", ro_of()), f("href", "string", ro_of()), f("lastModified", "datetime", ro_of()),
      f("name", "string", { length = 128, sortable = true }), f("openingDate", "date", { sortable = true }),
    },
    filters = {},
  },
  privacyTool = {
    schema = "nms:gdprRequest", label = "Privacy requests", api = "privacy",
    fields = {
      f("PKey", "string", ro_of()), f("audit", "string", ro_of()), f("created", "datetime", ro_of()),
      f("desc", "string", { length = 255 }),
      f("gdprRequestData", "collection", ro_of()), f("href", "string", ro_of()),
      f("label", "string", { length = 128 }), f("lastModified", "datetime", ro_of()),
      f("name", "string", { length = 64, sortable = true }),
      f("namespace", "link", ro_of()), f("namespaceName", "string", { length = 64, mandatory = true }),
      f("privacyRequestData", "collection", ro_of()),
      f("reconciliationValue", "string", { length = 255, mandatory = true }),
      f("regulation", "enumeration", { values = { "gdpr", "ccpa", "pdpa", "lgpd" },
        enum = "nms:gdprRequest:regulation" }),
      f("retryCount", "number", ro_of()), f("status", "string", ro_of()), f("title", "string", ro_of()),
      f("type", "enumeration", { values = { "access", "delete" }, enum = "nms:gdprRequest:type",
        mandatory = true }),
    },
    filters = {},
  },
}

for name, res in pairs(_M.resources) do
  res.name = name
  res.by_name = {}
  for _, field in ipairs(res.fields) do
    res.by_name[field.name] = field
    if field.fields then
      field.by_name = {}
      for _, sub in ipairs(field.fields) do field.by_name[sub.name] = sub end
    end
  end
end

-- profileAndServices/history (acs-api.md section 1: the API covers "profile, service, plus
-- history, resourceType"; the history of a profile is profileAndServices/history/<PKey>): the
-- profile's fields, read-only, plus the `events` collection (its link carries metadata
-- "subHisto"). Not in `resources`: it has no records of its own, it reads the profiles.
do
  local profile = _M.resources.profile
  local fields = {}
  for _, field in ipairs(profile.fields) do
    local copy = {}
    for k, v in pairs(field) do copy[k] = v end
    copy.readOnly = true
    fields[#fields + 1] = copy
  end
  local events = f("events", "collection", ro_of { target = "subHisto", label = "Events" })
  local at = #fields + 1
  for i, field in ipairs(fields) do
    if field.name > "events" then at = i; break end
  end
  table.insert(fields, at, events)
  local history = {
    schema = "nms:recipient", label = "History", help = "Marketing history of the profiles",
    api = "profileAndServices", name = "history", fields = fields, by_name = {},
    filters = {
      byEmail = { params = { "email" }, label = "By email",
        data = "/profileAndServices/history/byEmail?email=$value" },
      byText = { params = { "text", "filterType" }, label = "By text",
        data = "/profileAndServices/history/byText?text=$value" },
    },
  }
  for _, field in ipairs(fields) do history.by_name[field.name] = field end
  _M.history = history
end

function _M.field(res, name, ext)
  local field = res.by_name[name]
  if field and field.ext and not ext then return nil end
  return field
end

local function bad(detail, name)
  return util.engine_error(500, detail, "XTK-170006 Unable to parse expression '" .. name .. "'.")
end

local function check_value(res, field, value, path)
  local t = field.type
  if t == "string" then
    if type(value) ~= "string" then
      return bad("The value of the '" .. path .. "' property must be a string.", path)
    end
    -- A value longer than the data model's length (metadata "length") is stored as sent:
    -- acs-api.md documents the lengths but no rejection, and Adobe's SDK e2e test PATCHes a
    -- 34-character firstName (length 30) and expects 200. See docs/emulator.md.
  elseif t == "boolean" then
    if type(value) ~= "boolean" then
      return bad("The value of the '" .. path .. "' property must be a boolean.", path)
    end
  elseif t == "number" then
    if type(value) ~= "number" then
      return bad("The value of the '" .. path .. "' property must be a number.", path)
    end
  elseif t == "date" then
    if type(value) ~= "string" or not (value == "" or value:match("^%d%d%d%d%-%d%d%-%d%d$")) then
      return bad("The value '" .. tostring(value) .. "' of the '" .. path
        .. "' property is not a valid date.", path)
    end
  elseif t == "datetime" then
    if type(value) ~= "string" then
      return bad("The value of the '" .. path .. "' property is not a valid date and time.", path)
    end
  elseif t == "enumeration" then
    local found = false
    for _, v in ipairs(field.values) do
      if v == value then found = true; break end
    end
    if not found then
      return bad("The value '" .. tostring(value) .. "' is not valid for the '" .. field.enum
        .. "' enumeration of the '@" .. field.name .. "' field", path)
    end
  elseif t == "item" then
    if type(value) ~= "table" then
      return bad("The value of the '" .. path .. "' property must be an object.", path)
    end
    local keys = {}
    for k in pairs(value) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local sub = field.by_name[k]
      if not sub then
        return bad("'" .. k .. "' property is not valid for the '" .. path .. "' element of the '"
          .. res.name .. "' resource.", path .. "/" .. k)
      end
      local status, body = check_value(res, sub, value[k], path .. "/" .. k)
      if status then return status, body end
    end
  elseif t == "link" then
    if type(value) ~= "table" or type(value.PKey) ~= "string" then
      return bad("The '" .. path .. "' link must be an object with a 'PKey'.", path)
    end
  end
  return nil
end

-- ACS data policies, applied to written values when the admin config `data_policies` is on:
-- "email" validates and lower-cases, "smartCase" capitalises each word ("jOHN doe" -> "John
-- Doe"). Returns the body (changed in place), or nil, status, body for an invalid value.
local function smart_case(s)
  return (s:lower():gsub("(%f[%w]%l)", string.upper))
end

function _M.apply_data_policies(res, body)
  for name, value in pairs(body) do
    local field = res.by_name[name]
    local policy = field and field.dataPolicy
    if type(value) == "string" and value ~= "" then
      if policy == "email" then
        if not value:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
          return nil, bad("The value '" .. value .. "' of the '" .. name
            .. "' field is not a valid email address.", name)
        end
        body[name] = value:lower()
      elseif policy == "smartCase" then
        body[name] = smart_case(value)
      end
    end
  end
  return body
end

-- Checks a POST or PATCH body against the resource. Returns nil when valid, else the
-- status and body of ACS's error (500 with an RST-360011 message, as ACS answers).
function _M.validate(res, body, ext, mode)
  local keys = {}
  for k in pairs(body) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, name in ipairs(keys) do
    local field = _M.field(res, name, ext)
    if not field then
      return bad("'" .. name .. "' property is not valid for the '" .. res.name .. "' resource.", name)
    end
    if field.readOnly then
      return bad("Cannot update the '" .. name .. "' property that is read-only.", name)
    end
    if body[name] ~= util.null then
      local status, err = check_value(res, field, body[name], name)
      if status then return status, err end
    end
  end
  if mode == "create" then
    for _, field in ipairs(res.fields) do
      if field.mandatory and (body[field.name] == nil or body[field.name] == "") then
        return bad("The '" .. field.name .. "' property is mandatory.", field.name)
      end
    end
  end
  return nil
end

local TYPE_INFO = {
  string = { "string", "string" }, boolean = { "boolean", "boolean" }, number = { "number", "double" },
  date = { "date", "date" }, datetime = { "datetime", "datetime" }, enumeration = { "enumeration", "string" },
  item = { "item", "item" }, link = { "link", "link" }, collection = { "collection", "collection" },
}

local function field_meta(res, field, ext)
  local info = TYPE_INFO[field.type]
  local m = {
    PKey = util.pkey("field", res.name .. "/" .. field.name),
    apiName = field.name,
    category = field.ext and "90_custom" or "01_general",
    label = field.label or (field.name:gsub("^%l", string.upper)),
    mandatory = field.mandatory and true or false,
    queryable = field.type ~= "collection",
    readOnly = field.readOnly and true or false,
    resType = field.resType or info[2],
    sortable = field.sortable and true or false,
    type = info[1],
  }
  if field.length then m.length = tostring(field.length) end
  if field.dataPolicy then m.dataPolicy = field.dataPolicy end
  if field.values then
    m.values = {}
    for i, v in ipairs(field.values) do m.values[v] = { label = v, value = i - 1 } end
  end
  if field.target then m.resTarget = field.target end
  if field.fields then
    m.content = {}
    for _, sub in ipairs(field.fields) do m.content[sub.name] = field_meta(res, sub, ext) end
  end
  return m
end

-- GET <api>/resourceType/<resource>: fields with type and readOnly, plus a filters link.
function _M.metadata(res, root, api, ext)
  local content = {}
  for _, field in ipairs(res.fields) do
    if not field.ext or ext then content[field.name] = field_meta(res, field, ext) end
  end
  return {
    PKey = util.pkey("resourceType", res.name),
    content = content,
    data = "/" .. api .. "/" .. res.name .. "/",
    filters = { href = root .. api .. "/resourceType/" .. res.name .. "/filters/" },
    help = res.help or res.label,
    href = root .. api .. "/" .. res.name .. "/metadata",
    label = res.label,
    name = res.name,
    readOnly = false,
    schema = res.schema,
    type = "item",
  }
end

function _M.filters_metadata(res, api)
  local out = {}
  for name, filter in pairs(res.filters) do
    out[name] = {
      PKey = util.pkey("filter", res.name .. "/" .. name),
      category = "0",
      condition = "",
      data = filter.data:gsub("^/profileAndServices/", "/" .. api .. "/"),
      formType = "none",
      fragmentName = "",
      label = filter.label,
      metadata = res.name .. "/filters/" .. name,
      resName = res.name,
      webPage = "",
      webPageName = "",
    }
  end
  return out
end

return _M
