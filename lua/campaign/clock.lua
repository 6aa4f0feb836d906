--- campaign.clock: the default clock and wait of the Lua layers. Inside OpenResty they are
-- nginx's own (ngx.now, ngx.sleep: a wait never blocks the worker); elsewhere the C module's
-- campaign.gettime and campaign.sleep. No state lives at module level.
local campaign = require "campaign"

local rawget, type = rawget, type

---@class campaign.clock
local clock = {}

local function nginx()
  local ngx_ = rawget(_G, "ngx")
  if type(ngx_) == "table" and type(ngx_.now) == "function" then return ngx_ end
  return nil
end

--- Wall-clock Unix time in seconds (a float).
---@return number seconds
function clock.now()
  local ngx_ = nginx()
  if not ngx_ then return campaign.gettime() end
  if ngx_.update_time then ngx_.update_time() end
  return ngx_.now()
end

--- Waits `seconds` (nothing for 0 or less).
---@param seconds number
---@return nil
function clock.sleep(seconds)
  if seconds <= 0 then return end
  local ngx_ = nginx()
  if ngx_ and type(ngx_.sleep) == "function" then return ngx_.sleep(seconds) end
  return campaign.sleep(seconds)
end

return clock
