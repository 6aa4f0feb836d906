-- Deterministic seed data: the same --profiles N gives the same records and PKeys on every
-- start and after every reset. The first profile is the ACS documentation's Amy Dakota.
local store = require "emu.store"
local util = require "emu.util"

local format = string.format

local _M = {}

local FIRST = { "John", "Jane", "Mary", "Robert", "Linda", "Michael", "Sarah", "David", "Laura", "James",
  "Emma", "Daniel", "Olivia", "Thomas", "Sophie", "Lucas", "Chloe", "Paul", "Nina", "Peter", "Ana", "Kenji" }
local LAST = { "Doe", "Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Martin", "Lee",
  "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
  "Hill", "Campbell", "Dupont", "Garcia", "Tanaka" }
local DOMAINS = { "mail.com", "example.com", "example.org" }
local GENDERS = { "unknown", "male", "female" }
local FORMATS = { "unknown", "html", "text" }
local CITIES = { { "San Jose", "US", "CA", "95110" }, { "Paris", "FR", "", "75001" },
  { "London", "GB", "", "EC1A 1BB" }, { "New York", "US", "NY", "10001" }, { "Tokyo", "JP", "", "100-0001" } }

-- 2019-09-25 23:20:35 UTC, the datetime of the ACS documentation samples.
local EPOCH = 1569453635

local function stamp(offset)
  return util.datetime(EPOCH + offset)
end

local function empty_location()
  return { address1 = "", address2 = "", address3 = "", address4 = "", city = "", countryCode = "",
    stateCode = "", zipCode = "" }
end
_M.empty_location = empty_location

-- Defaults ACS fills in on a created profile (what a POST answers besides the sent fields).
function _M.profile_defaults()
  return {
    birthDate = "", blackList = false, blackListAllLastModified = "", blackListEmail = false,
    blackListEmailLastModified = "", blackListFax = false, blackListFaxLastModified = "",
    blackListLastModified = "", blackListMobile = false, blackListMobileLastModified = "",
    blackListPhone = false, blackListPhoneLastModified = "", blackListPostalMail = false,
    blackListPostalMailLastModified = "", blackListPushnotification = false,
    blackListPushnotificationLastModified = "", ccpaOptOut = false, cusCrmId = "", cusLoyaltyPoints = 0,
    email = "", emailFormat = "unknown", firstName = "", gender = "unknown", lastName = "",
    location = empty_location(), middleName = "", mobilePhone = "", phone = "", preferredLanguage = "none",
    salutation = "", thumbnail = "/nl/img/thumbnails/defaultProfil.png", timeZone = "none",
  }
end

function _M.service_defaults()
  return { ["end"] = "", label = "", limitedDuration = false, messageType = "email", mode = "newsletter",
    name = "", start = "", targetResource = "profile", thumbnail = "/nl/img/thumbnails/defaultService.png",
    validityPeriod = 0 }
end

local function seed_profile(i, org_unit)
  local rec = _M.profile_defaults()
  if i == 1 then
    rec.firstName, rec.lastName, rec.email, rec.birthDate = "Amy", "Dakota", "amy.dakota@mail.com",
      "1980-10-24"
    rec.gender = "female"
  else
    rec.firstName = FIRST[(i * 7) % #FIRST + 1]
    rec.lastName = LAST[(i * 11) % #LAST + 1]
    rec.email = format("%s.%s%d@%s", rec.firstName:lower(), rec.lastName:lower(), i,
      DOMAINS[i % #DOMAINS + 1])
    rec.birthDate = format("%04d-%02d-%02d", 1950 + (i * 13) % 50, (i * 5) % 12 + 1, (i * 7) % 28 + 1)
    rec.gender = GENDERS[i % #GENDERS + 1]
    rec.emailFormat = FORMATS[i % #FORMATS + 1]
  end
  rec.phone = format("+1408555%04d", (i * 7919) % 10000)
  if i % 3 == 0 then rec.mobilePhone = format("+1650555%04d", (i * 104729) % 10000) end
  local city = CITIES[i % #CITIES + 1]
  rec.location.city, rec.location.countryCode, rec.location.stateCode, rec.location.zipCode =
    city[1], city[2], city[3], city[4]
  if i % 17 == 0 then
    rec.blackListEmail = true
    rec.blackListEmailLastModified = stamp(i * 97 + 3600)
  end
  rec.cusLoyaltyPoints = (i * 37) % 1000
  rec.cusCrmId = format("CRM%06d", i)
  rec.orgUnit = org_unit
  rec.created = stamp(i * 97)
  rec.lastModified = rec.created
  rec.PKey = store.next_pkey("profile")
  return rec
end

local SERVICES = {
  { name = "SVC1", label = "Newsletter", messageType = "email", mode = "newsletter" },
  { name = "SVC2", label = "Sport news", messageType = "email", mode = "newsletter" },
  { name = "SVC3", label = "SMS alerts", messageType = "sms", mode = "newsletter" },
}
local ORG_UNITS = {
  { name = "all", label = "All", desc = "Root organizational unit" },
  { name = "emea", label = "EMEA", desc = "Europe, Middle East and Africa", parent = 1 },
  { name = "amer", label = "AMER", desc = "Americas", parent = 1 },
}
local PRODUCTS = {
  { sku = "P-100", name = "Leather motorbike jacket", category = "apparel", price = 125 },
  { sku = "P-101", name = "Helmet", category = "gear", price = 89.99 },
  { sku = "P-102", name = "Gloves", category = "apparel", price = 24.5 },
  { sku = "P-103", name = "Boots", category = "apparel", price = 149 },
  { sku = "P-104", name = "Saddle bag", category = "gear", price = 310 },
}
local STORES = {
  { name = "Downtown", city = "San Jose", openingDate = "2015-04-01" },
  { name = "Rive Gauche", city = "Paris", openingDate = "2017-09-15" },
  { name = "Soho", city = "London", openingDate = "2018-03-20" },
}

-- Workflows: WKF1 is running with a signal activity (parameters typed like ACS's),
-- WKF2 is stopped; its signal2 runs it to its end (triggered, it becomes "stopped" again).
local WORKFLOWS = {
  { id = "WKF1", label = "Abandoned cart follow-up", state = "started",
    activities = { signal1 = { label = "External signal", parameters = {
      audience = "string", test = "boolean", attribute = "datetime", amount = "number",
      -- the parameters of the docs' sample trigger (ACS:triggering-a-signal-activity), but
      -- contentURL, which the docs show being refused
      email = "string", template = "string", segmentCode = "string" } } } },
  { id = "WKF2", label = "Monthly newsletter", state = "stopped",
    activities = { signal2 = { label = "External signal", parameters = { audience = "string" },
      ends = true } } },
}

function _M.load(settings)
  store.flush()
  local unit_keys = {}
  for i, unit in ipairs(ORG_UNITS) do
    local rec = { PKey = store.next_pkey("orgUnitBase"), name = unit.name, label = unit.label,
      desc = unit.desc,
      created = stamp(i), lastModified = stamp(i), parentPKey = unit.parent and unit_keys[unit.parent] or "" }
    unit_keys[i] = rec.PKey
    store.put("orgUnitBase", rec)
  end
  local root_unit = { PKey = unit_keys[1] }
  for i = 1, settings.profiles do
    local rec = seed_profile(i, root_unit)
    store.put("profile", rec)
    store.set_unique("profile", rec.email, rec.PKey)
    store.link("email", rec.email, rec.PKey)
  end
  local services = {}
  for i, svc in ipairs(SERVICES) do
    local rec = _M.service_defaults()
    for k, v in pairs(svc) do rec[k] = v end
    rec.PKey = store.next_pkey("service")
    rec.created = stamp(i * 60)
    rec.lastModified = rec.created
    rec.start = "2019-10-06"
    store.put("service", rec)
    store.set_unique("service", rec.name, rec.PKey)
    services[i] = rec
  end
  -- Subscriptions: odd profiles to SVC1, every fifth to SVC3.
  for i = 1, settings.profiles do
    local subs = {}
    if i % 2 == 1 then subs[#subs + 1] = services[1] end
    if i % 5 == 0 then subs[#subs + 1] = services[3] end
    if #subs > 0 then
      local profile_key = util.pkey("profile", i)
      for _, svc in ipairs(subs) do
        store.add_subscription({ PKey = store.next_pkey("subscription"), created = stamp(i * 97 + 60),
          expirationDate = "", service = svc.PKey, subscriber = profile_key })
      end
    end
  end
  for i, p in ipairs(PRODUCTS) do
    local rec = util.shallow_copy(p)
    rec.PKey, rec.created = store.next_pkey("cusProduct"), stamp(i * 30)
    rec.lastModified = rec.created
    store.put("cusProduct", rec)
  end
  for i, s in ipairs(STORES) do
    local rec = util.shallow_copy(s)
    rec.PKey, rec.created = store.next_pkey("cusStore"), stamp(i * 45)
    rec.lastModified = rec.created
    store.put("cusStore", rec)
  end
  for i, w in ipairs(WORKFLOWS) do
    local activities = {}
    for name, a in pairs(w.activities) do
      activities[name] = { PKey = util.pkey("activity", w.id .. "/" .. name), label = a.label, name = name,
        parameters = a.parameters, type = "signal", ends = a.ends }
    end
    store.put("workflow", { PKey = store.next_pkey("workflow"), internalName = w.id, label = w.label,
      state = w.state, activities = activities, created = stamp(i * 20), lastModified = stamp(i * 20) })
  end
end

return _M
