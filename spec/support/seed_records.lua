-- Records of the emulator's seed data that several Lua-layer specs look up through campaign.api.
local api = require "campaign.api"

local seed_records = {}

-- The seed profile Amy Dakota (amy.dakota@mail.com), found through the byEmail filter.
function seed_records.amy(client)
  local found = assert(api.get_all_profiles(client,
    { filters = { "byEmail" }, email = "amy.dakota@mail.com" }))
  return found.content[1]
end

-- A service the profile does not subscribe to yet (ACS refuses a duplicate subscription).
function seed_records.unsubscribed_service(client, profile_pkey)
  local taken = {}
  for _, s in ipairs(assert(api.get_profile_subscriptions(client, profile_pkey)).content) do
    taken[s.service.PKey] = true
  end
  for _, s in ipairs(assert(api.get_all_services(client)).content) do
    if not taken[s.PKey] then return s end
  end
  error("every service already has this subscriber")
end

return seed_records
