--- campaign.ngx.token_cache: one IMS token for every nginx worker (lua/campaign/ngx.lua
-- re-exports it as campaign.ngx.shared_token_cache): campaign.auth.ims's cache interface over
-- a lua_shared_dict, with a lock so that one refresh happens at a time across workers.
local ngx = ngx
local type, pairs, tostring, tonumber, error = type, pairs, tostring, tonumber, error
local str_format, str_match = string.format, string.match

local _M = {}

local function now()
  ngx.update_time()
  return ngx.now()
end


--- campaign.ngx.shared_token_cache(dict_name[, opts]) -> cache for campaign.auth.ims{cache = ...}
-- The token lives in the lua_shared_dict, so every worker uses the same one; lock/unlock
-- (a shared dict `add` that expires, waited on with ngx.sleep) make one refresh happen at a
-- time across workers: when 20 requests find the token expired together, one asks IMS and the
-- others read its result. opts: lock_timeout (seconds a refresh may hold the lock and a waiter
-- may wait, default 30), poll (seconds between looks at a held lock, default 0.01).
---@param dict_name string a lua_shared_dict
---@param opts? campaign.ngx.TokenCacheOpts
---@return campaign.TokenCache
function _M.shared_token_cache(dict_name, opts)
  local fname = "campaign.ngx.shared_token_cache"
  if type(dict_name) ~= "string" then
    error(fname .. ": bad argument #1 (lua_shared_dict name expected)", 2)
  end
  local dict = ngx and ngx.shared and ngx.shared[dict_name]
  if not dict then
    error(fname .. ": no lua_shared_dict '" .. dict_name .. "' (add `lua_shared_dict "
      .. dict_name .. " 1m;` to the http block)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(fname .. ": bad argument #2 (table or nil expected)", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "lock_timeout" and k ~= "poll" then
      error(fname .. ": unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local lock_timeout = opts.lock_timeout or 30
  local poll = opts.poll or 0.01
  if type(lock_timeout) ~= "number" or lock_timeout <= 0 or type(poll) ~= "number" or poll <= 0 then
    error(fname .. ": options 'lock_timeout' and 'poll' must be positive numbers", 2)
  end

  return {
    -- -> token, valid_until (the provider's clock: ngx.now())
    get = function(key)
      local entry = dict:get(key)
      if type(entry) ~= "string" then return nil end
      local valid_until, token = str_match(entry, "^(%S+) (.*)$")
      return token, tonumber(valid_until)
    end,
    set = function(key, token, valid_until, expires_in)
      -- the entry outlives valid_until a little (expires_in is the token's real lifetime), so a
      -- refresh that fails can still be told from "never had a token"
      local ttl = tonumber(expires_in) or (valid_until - now())
      local ok, err = dict:set(key, str_format("%.3f %s", valid_until, token), ttl > 0 and ttl or 1)
      if not ok then
        ngx.log(ngx.ERR, "campaign.ngx: cannot keep the token in lua_shared_dict '", dict_name, "': ", err)
      end
    end,
    lock = function(key)
      local lock_key = key .. "|lock"
      local deadline = now() + lock_timeout
      while true do
        local ok, err = dict:add(lock_key, true, lock_timeout)
        if ok then return true end
        if err ~= "exists" then return nil, "lua_shared_dict '" .. dict_name .. "': " .. tostring(err) end
        if now() >= deadline then
          return nil, "timed out after " .. lock_timeout .. " s waiting for another request's token refresh"
        end
        ngx.sleep(poll)
      end
    end,
    unlock = function(key)
      dict:delete(key .. "|lock")
    end,
  }
end

return _M
