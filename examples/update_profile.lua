-- The ACS documentation's "updating a profile" workflow, step by step: read Amy Dakota's
-- profile, PATCH her phone number, read the profile again and check the change took.
--
--   make demo                            # against the bundled emulator
--   lua5.4 examples/update_profile.lua   # against whatever CAMPAIGN_* points at (a real tenant)
--
-- Settings (environment): CAMPAIGN_ORG, CAMPAIGN_API_KEY, CAMPAIGN_ACCESS_TOKEN or
-- CAMPAIGN_CLIENT_ID + CAMPAIGN_CLIENT_SECRET (+ CAMPAIGN_SCOPES, CAMPAIGN_IMS_URL),
-- CAMPAIGN_BASE_URL (default https://mc.adobe.io), CAMPAIGN_CAFILE; CAMPAIGN_PKEY (else the
-- profile is found by email: CAMPAIGN_EMAIL, default amy.dakota@mail.com); CAMPAIGN_PHONE
-- (default 3301020304, the documentation's value).
-- Exit status: 0 verified, 1 an API or network error, 2 a missing setting, 3 not verified.

-- Run from a checkout: find lua/ and build/5.4/ next to this file.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. package.path
package.cpath = here .. "/../build/5.4/?.so;" .. package.cpath

local campaign = require "campaign"

local function setting(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then return default end
  return value
end

local function fail(err, status)
  io.stderr:write(tostring(err), "\n")
  os.exit(status or 1)
end

local function show(value)
  print(campaign.encode(value, {pretty = true}))
end

-- ACS answers a single GET with the bare record; its documentation shows it wrapped as
-- {content = {record}}: accept both.
local function unwrap(body)
  if type(body) == "table" and type(body.content) == "table" and body.content[1] and not body.PKey then
    return body.content[1]
  end
  return body
end

local org, api_key = setting("CAMPAIGN_ORG"), setting("CAMPAIGN_API_KEY")
local token = setting("CAMPAIGN_ACCESS_TOKEN")
local client_id, client_secret = setting("CAMPAIGN_CLIENT_ID"), setting("CAMPAIGN_CLIENT_SECRET")
if not org or not api_key or not (token or (client_id and client_secret)) then
  fail("update_profile: set CAMPAIGN_ORG, CAMPAIGN_API_KEY and CAMPAIGN_ACCESS_TOKEN (or " ..
    "CAMPAIGN_CLIENT_ID and CAMPAIGN_CLIENT_SECRET); `make demo` does it with the emulator", 2)
end
if not token then
  -- OAuth server-to-server: the provider fetches a token from IMS and refreshes it.
  token = campaign.auth.ims{
    client_id = client_id,
    client_secret = client_secret,
    scopes = setting("CAMPAIGN_SCOPES"),
    ims_url = setting("CAMPAIGN_IMS_URL"),
    http = {cafile = setting("CAMPAIGN_CAFILE")},
  }
end

local client = campaign.new{
  org = org,
  api_key = api_key,
  token = token,
  base_url = setting("CAMPAIGN_BASE_URL", "https://mc.adobe.io"),
  cafile = setting("CAMPAIGN_CAFILE"),
}

local phone = setting("CAMPAIGN_PHONE", "3301020304")
local pkey = setting("CAMPAIGN_PKEY")
if not pkey then
  local email = setting("CAMPAIGN_EMAIL", "amy.dakota@mail.com")
  local found, err = client:get("profileAndServices/profile/byEmail", {query = {email = email}})
  if not found then fail(err) end
  local first = found.content and found.content[1]
  if not first then fail("update_profile: no profile with email " .. email, 1) end
  pkey = first.PKey
  print("found " .. email .. ": PKey " .. pkey)
end
local path = "profileAndServices/profile/" .. pkey

-- Step 1: read the profile.
print("\n1. GET " .. path)
local before, err = client:get(path)
if not before then fail(err) end
show(unwrap(before))

-- Step 2: PATCH only the changed field; ACS answers {PKey, href}.
local changes = {phone = phone}
print("\n2. PATCH " .. path .. " " .. campaign.encode(changes))
local answer
answer, err = client:patch(path, changes)
if not answer then fail(err) end
show(answer)

-- Step 3: read it again and check.
print("\n3. GET " .. path)
local after
after, err = client:get(path)
if not after then fail(err) end
after = unwrap(after)
show(after)
if after.phone ~= phone then
  fail("not verified: phone = " .. tostring(after.phone) .. ", expected " .. phone, 3)
end
print("verified: phone = " .. after.phone)

-- The same three steps in one call of the Lua layer: GET, PATCH the changes, GET and compare.
-- info.changed tells whether the first GET differed (here it did not: the phone is already set).
local profile, info = campaign.workflow.update_and_verify(client, pkey, changes)
if not profile then fail(info, info.kind == "verify" and 3 or 1) end
print("\nupdate_and_verify(phone = " .. phone .. "): verified, changed = " .. tostring(info.changed))
client:close()
