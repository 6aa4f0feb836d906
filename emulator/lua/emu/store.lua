-- Records live in the lua_shared_dict `campaign_data`, one JSON text per record
-- ("rec:<kind>:<PKey>"). Creation order is kept without rewriting any list: the n-th record
-- stored is "ord:<kind>:<n>" -> PKey ("num:<kind>:<PKey>" -> n the other way, "pos:<kind>"
-- the last n), "count:<kind>" the number of live records, and "seq:<kind>" numbers the
-- PKeys handed out (which makes them deterministic). Inserts and deletes are O(1); listing
-- walks 1..pos.
-- nginx runs one worker and no call here yields, so read-modify-write sequences are atomic.
local json = require "emu.json"
local util = require "emu.util"

local ngx = ngx
local ipairs, tostring = ipairs, tostring

local _M = {}

local function dict() return ngx.shared.campaign_data end

local function fail_if(ok, err)
  if not ok then error("campaign_data shared dict: " .. tostring(err)) end
end

function _M.get(kind, pkey)
  local text = dict():get("rec:" .. kind .. ":" .. pkey)
  if not text then return nil end
  return json.decode(text)
end

function _M.exists(kind, pkey)
  return dict():get("rec:" .. kind .. ":" .. pkey) ~= nil
end

-- A new PKey for a kind, and its sequence number.
function _M.next_pkey(kind)
  local n = dict():incr("seq:" .. kind, 1, 0)
  return util.pkey(kind, n), n
end

-- Ordered sets of strings: members in insertion order, O(1) add and remove.
-- "ord:<set>:<n>" -> member, "num:<set>:<member>" -> n, "pos:<set>" last n, "count:<set>".
local function set_add(d, set, member)
  local n = d:incr("pos:" .. set, 1, 0)
  fail_if(d:safe_set("ord:" .. set .. ":" .. n, member))
  fail_if(d:safe_set("num:" .. set .. ":" .. member, n))
  d:incr("count:" .. set, 1, 0)
end

local function set_remove(d, set, member)
  local n = d:get("num:" .. set .. ":" .. member)
  if not n then return end
  d:delete("ord:" .. set .. ":" .. n)
  d:delete("num:" .. set .. ":" .. member)
  d:incr("count:" .. set, -1, 0)
end

local function set_members(d, set)
  local out = {}
  local last = d:get("pos:" .. set) or 0
  for n = 1, last do
    local member = d:get("ord:" .. set .. ":" .. n)
    if member then out[#out + 1] = member end
  end
  return out
end

-- Inserts or replaces a record (rec.PKey must be set; new PKeys come from next_pkey).
function _M.put(kind, rec)
  local d = dict()
  local key = "rec:" .. kind .. ":" .. rec.PKey
  local is_new = d:get(key) == nil
  fail_if(d:safe_set(key, json.encode(rec)))
  if is_new then set_add(d, kind, rec.PKey) end
  d:incr("ver:" .. kind .. ":" .. rec.PKey, 1, 0)
  return rec
end

-- A number that changes whenever the record is written (nil when it does not exist):
-- rendered answers are cached under it.
function _M.version(kind, pkey)
  return dict():get("ver:" .. kind .. ":" .. pkey)
end

function _M.delete(kind, pkey)
  local d = dict()
  if d:get("rec:" .. kind .. ":" .. pkey) == nil then return end
  d:delete("rec:" .. kind .. ":" .. pkey)
  d:delete("ver:" .. kind .. ":" .. pkey)
  set_remove(d, kind, pkey)
end

-- The PKeys of a kind, in creation order (cheap: no record is decoded).
function _M.keys(kind)
  return set_members(dict(), kind)
end

-- Every record of a kind, in creation order.
function _M.all(kind)
  local out = {}
  for _, pkey in ipairs(_M.keys(kind)) do
    local rec = _M.get(kind, pkey)
    if rec then out[#out + 1] = rec end
  end
  return out
end

function _M.count(kind)
  return dict():get("count:" .. kind) or 0
end

-- Links from an owner to records (e.g. a profile's subscriptions), in creation order.
local function link_set(name, owner) return "link/" .. name .. "/" .. owner end

function _M.link(name, owner, pkey) set_add(dict(), link_set(name, owner), pkey) end
function _M.unlink(name, owner, pkey) set_remove(dict(), link_set(name, owner), pkey) end
function _M.linked(name, owner) return set_members(dict(), link_set(name, owner)) end

-- Subscriptions, linked from their subscriber (profile) and their service.
function _M.add_subscription(rec)
  _M.put("subscription", rec)
  _M.link("subscriber", rec.subscriber, rec.PKey)
  _M.link("service", rec.service, rec.PKey)
end

function _M.remove_subscription(rec)
  _M.delete("subscription", rec.PKey)
  _M.unlink("subscriber", rec.subscriber, rec.PKey)
  _M.unlink("service", rec.service, rec.PKey)
end

-- field: "subscriber" or "service"; owner: that record's PKey.
function _M.subscriptions_of(field, owner)
  local out = {}
  for _, pkey in ipairs(_M.linked(field, owner)) do
    local rec = _M.get("subscription", pkey)
    if rec then out[#out + 1] = rec end
  end
  return out
end

-- Unique keys (profile email, service name): "uniq:<kind>:<value>" -> PKey.
function _M.unique_owner(kind, value)
  return dict():get("uniq:" .. kind .. ":" .. tostring(value))
end

function _M.set_unique(kind, value, pkey)
  fail_if(dict():safe_set("uniq:" .. kind .. ":" .. tostring(value), pkey))
end

function _M.clear_unique(kind, value, pkey)
  local key = "uniq:" .. kind .. ":" .. tostring(value)
  if dict():get(key) == pkey then dict():delete(key) end
end

function _M.flush()
  dict():flush_all()
  dict():flush_expired()
  ngx.shared.campaign_cache:flush_all()
  ngx.shared.campaign_cache:flush_expired()
end

-- Rendered answers (JSON texts) in the LRU dict campaign_cache; losing one costs nothing.
function _M.cached(key)
  return ngx.shared.campaign_cache:get(key)
end

function _M.cache(key, text)
  ngx.shared.campaign_cache:set(key, text, 300)
end

return _M
