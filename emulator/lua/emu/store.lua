-- Records live in the lua_shared_dict `campaign_data`, one JSON text per record
-- ("rec:<kind>:<PKey>"), plus an insertion-ordered index per kind ("idx:<kind>") and a
-- sequence per kind ("seq:<kind>") that makes new PKeys deterministic.
-- nginx runs one worker and no call here yields, so read-modify-write sequences are atomic.
local json = require "emu.json"
local util = require "emu.util"

local ngx = ngx
local ipairs = ipairs

local _M = {}

local function dict() return ngx.shared.campaign_data end

local function fail_if(ok, err)
  if not ok then error("campaign_data shared dict: " .. tostring(err)) end
end

local function index(kind)
  local text = dict():get("idx:" .. kind)
  if not text then return {} end
  return json.decode(text)
end

local function save_index(kind, keys)
  fail_if(dict():set("idx:" .. kind, json.encode(json.array(keys))))
end

function _M.get(kind, pkey)
  local text = dict():get("rec:" .. kind .. ":" .. pkey)
  if not text then return nil end
  return json.decode(text)
end

function _M.exists(kind, pkey)
  return dict():get("rec:" .. kind .. ":" .. pkey) ~= nil
end

-- Inserts or replaces a record (rec.PKey must be set).
function _M.put(kind, rec)
  local key = "rec:" .. kind .. ":" .. rec.PKey
  local is_new = dict():get(key) == nil
  fail_if(dict():set(key, json.encode(rec)))
  if is_new then
    local keys = index(kind)
    keys[#keys + 1] = rec.PKey
    save_index(kind, keys)
  end
  return rec
end

function _M.delete(kind, pkey)
  dict():delete("rec:" .. kind .. ":" .. pkey)
  local keys = index(kind)
  for i, k in ipairs(keys) do
    if k == pkey then
      table.remove(keys, i)
      break
    end
  end
  save_index(kind, keys)
end

-- Every record of a kind, in creation order.
function _M.all(kind)
  local out = {}
  for _, pkey in ipairs(index(kind)) do
    local rec = _M.get(kind, pkey)
    if rec then out[#out + 1] = rec end
  end
  return out
end

function _M.count(kind)
  return #index(kind)
end

function _M.next_pkey(kind)
  local n = dict():incr("seq:" .. kind, 1, 0)
  return util.pkey(kind, n), n
end

-- Unique keys (profile email, service name): "uniq:<kind>:<value>" -> PKey.
function _M.unique_owner(kind, value)
  return dict():get("uniq:" .. kind .. ":" .. tostring(value))
end

function _M.set_unique(kind, value, pkey)
  fail_if(dict():set("uniq:" .. kind .. ":" .. tostring(value), pkey))
end

function _M.clear_unique(kind, value, pkey)
  local key = "uniq:" .. kind .. ":" .. tostring(value)
  if dict():get(key) == pkey then dict():delete(key) end
end

function _M.flush()
  dict():flush_all()
  dict():flush_expired()
end

return _M
