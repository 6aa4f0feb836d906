--- campaign.ngx.pacing: campaign.ngx's pacing and budget (docs/openresty.md "Pacing and
-- budget"): the C client's GCRA rule (campaign._pacing_take, src/pacing.c) and call counts,
-- their state in a lua_shared_dict shared by the workers (or in the client table without one),
-- waits with ngx.sleep. lua/campaign/ngx.lua calls take_budget and pace before every attempt.
local campaign = require "campaign"

local ngx = ngx
local type, pairs, tostring = type, pairs, tostring
local str_format = string.format
local floor = math.floor
local pacing_take = campaign._pacing_take

local _M = {}

local function now()
  ngx.update_time()
  return ngx.now()
end

-- The options `budget` and `shared_dict` (campaign._core checks `rate` and `burst`); raises at
-- campaign.ngx.new's caller.
function _M.check(opts)
  local budget = opts.budget
  if budget ~= nil and type(budget) ~= "number" and type(budget) ~= "table" then
    error("campaign.ngx.new: option 'budget' must be a positive integer (calls) or a table "
      .. "{calls = n, per = \"day\"}", 5)
  end
  local rate = opts.rate
  if type(budget) == "number" and not (budget >= 1 and budget == floor(budget) and budget <= 2 ^ 53) then
    error("campaign.ngx.new: option 'budget' must be a positive integer (calls) or a table "
      .. "{calls = n, per = \"day\"}", 5)
  elseif type(budget) == "table" then
    for k in pairs(budget) do
      if k ~= "calls" and k ~= "per" then
        error("campaign.ngx.new: option 'budget' has an unknown field '" .. tostring(k)
          .. "' (calls, per; the count is kept in the shared_dict, not a file)", 5)
      end
    end
    local calls = budget.calls
    if type(calls) ~= "number" or not (calls >= 1 and calls == floor(calls) and calls <= 2 ^ 53) then
      error("campaign.ngx.new: option 'budget' field 'calls' must be a positive integer", 5)
    end
    if budget.per ~= "day" then
      error("campaign.ngx.new: option 'budget' field 'per' must be \"day\" (a rolling 24 h)", 5)
    end
    if not opts.shared_dict then
      error("campaign.ngx.new: option 'budget' per day needs the option 'shared_dict' (its count "
        .. "lives there)", 5)
    end
  end
  if opts.shared_dict ~= nil then
    if rate == nil and budget == nil then
      error("campaign.ngx.new: option 'shared_dict' holds the pacing and budget state: it needs "
        .. "the option 'rate' or 'budget'", 5)
    end
    if not (ngx and ngx.shared and ngx.shared[opts.shared_dict]) then
      error("campaign.ngx.new: option 'shared_dict': no lua_shared_dict '" .. opts.shared_dict
        .. "' (add `lua_shared_dict " .. opts.shared_dict .. " 1m;` to the http block)", 5)
    end
  end
end

-- The shared state's lock: a dict `add` that expires (a worker that died holding it frees it
-- in 1 s). The section it guards never yields, so it is held for microseconds.
local function with_lock(self, fn)
  local dict, lock = self._dict, self._pace_key .. "|lock"
  while true do
    local ok, err = dict:add(lock, true, 1)
    if ok then break end
    if err ~= "exists" then
      ngx.log(ngx.ERR, "campaign.ngx: lua_shared_dict '", self._dict_name, "': ", err)
      break -- a full dict: go on unlocked rather than stop every request
    end
    ngx.sleep(0.001)
  end
  local a, b = fn()
  dict:delete(lock)
  return a, b
end

-- Waits (ngx.sleep, never blocking the worker) for this attempt's slot: the same GCRA rule as
-- the C client (campaign._pacing_take), its TAT in the shared dict when there is one.
function _M.pace(self)
  local rate, burst = self._rate, self._burst
  local wait
  if self._dict then
    local dict, key = self._dict, self._pace_key
    wait = with_lock(self, function()
      local w, tat = pacing_take(dict:get(key), now(), rate, burst)
      dict:set(key, tat, floor(tat - ngx.now()) + 60) -- kept while it matters
      return w
    end)
  else
    wait, self._tat = pacing_take(self._tat, now(), rate, burst)
  end
  if wait > 0 then ngx.sleep(wait) end
end

-- Takes one call of the budget. Returns nil when the call may go, else the refusal message.
-- The shared forms count first and check after (incr is atomic): two workers racing for the
-- last call may both be refused, never both sent.
function _M.take_budget(self)
  local budget = self._budget
  if budget == nil then return nil end
  local dict = self._dict
  if type(budget) == "number" then
    if dict then
      local v, err = dict:incr(self._pace_key .. "|budget", 1, 0)
      if not v then return "budget not checked, so not sent: lua_shared_dict: " .. tostring(err) end
      if v <= budget then return nil end
    elseif self._budget_left > 0 then
      self._budget_left = self._budget_left - 1
      return nil
    end
    return str_format("budget spent: this client may send %d calls and sent them all "
      .. "(option 'budget')", budget)
  end
  -- per day: one counter per minute (kept 24 h 2 min), summed over the last 1441 minutes: a
  -- call is forgotten between 24 h and 24 h 1 min after it was made, never sooner
  local minute = floor(ngx.time() / 60)
  local prefix = self._pace_key .. "|day|"
  local v, err = dict:incr(prefix .. minute, 1, 0, 86520)
  if not v then return "budget not checked, so not sent: lua_shared_dict: " .. tostring(err) end
  local used = 0
  for m = minute - 1440, minute do used = used + (dict:get(prefix .. m) or 0) end
  if used <= budget.calls then return nil end
  dict:incr(prefix .. minute, -1, 0)
  return str_format("budget spent: %d calls in the last 24 h (lua_shared_dict '%s')", used - 1,
    self._dict_name)
end

return _M
