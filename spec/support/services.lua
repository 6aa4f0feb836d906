-- Shared by the specs that subscribe a profile to a service on the emulator.
local api = require "campaign.api"

local services = {}

-- A service the profile does not subscribe to yet (ACS refuses a duplicate subscription).
function services.unsubscribed(client, profile_pkey)
  local taken = {}
  for _, s in ipairs(assert(api.get_profile_subscriptions(client, profile_pkey)).content) do
    taken[s.service.PKey] = true
  end
  for _, s in ipairs(assert(api.get_all_services(client)).content) do
    if not taken[s.PKey] then return s end
  end
  error("every service already has this subscriber")
end

return services
