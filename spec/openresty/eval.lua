-- Test-only handler (spec/openresty/nginx.conf): runs the Lua chunk a spec POSTs as JSON
-- {code = "...", params = {...}} inside a content handler, where campaign.ngx works, and answers
-- {result = <value>} or, when the chunk raises, status 500 {error = "..."}.
-- The chunk sees `params`, `campaign`, `cngx` (campaign.ngx), `cjson` and `client(extra)`:
-- a campaign.ngx client for params.emu (the emulator) merged with `extra`.
-- luacheck: globals ngx (a handler sets ngx.status and ngx.header)
local cjson = require("cjson.safe").new() -- private: its settings stay here
local campaign = require "campaign"
local cngx = require "campaign.ngx"

local M = {}

-- A copy that cjson can encode: error objects get their one-line text as `text`.
local function plain(v, depth)
  depth = depth or 0
  if type(v) ~= "table" or depth > 20 then
    if type(v) == "function" or type(v) == "userdata" and v ~= cjson.null then return tostring(v) end
    return v
  end
  local out = {}
  for k, x in pairs(v) do out[k] = plain(x, depth + 1) end
  if campaign.is_error(v) then out.text = tostring(v) end
  return out
end

function M.run()
  ngx.req.read_body()
  local req = cjson.decode(ngx.req.get_body_data() or "")
  ngx.header.content_type = "application/json"
  if type(req) ~= "table" or type(req.code) ~= "string" then
    ngx.status = 400
    ngx.say(cjson.encode { error = "POST {code = ..., params = ...}" })
    return
  end
  local params = req.params or {}
  local function client(extra)
    local emu = params.emu or {}
    local opts = { org = emu.org, api_key = emu.api_key, token = emu.access_token,
      base_url = emu.base_url, retry_base = 0.05, retry_max = 1 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return cngx.new(opts)
  end
  local env = setmetatable({
    params = params, campaign = campaign, cngx = cngx, cjson = cjson, client = client,
  }, { __index = _G })
  local fn, err = loadstring(req.code, "=spec")
  if not fn then
    ngx.status = 500
    ngx.say(cjson.encode { error = err })
    return
  end
  setfenv(fn, env)
  local ok, result = pcall(fn)
  if not ok then
    ngx.status = 500
    ngx.say(cjson.encode { error = tostring(result) })
    return
  end
  cjson.encode_sparse_array(true)
  local text, eerr = cjson.encode { result = plain(result) }
  if not text then
    ngx.status = 500
    text = cjson.encode { error = "cannot encode the result: " .. tostring(eerr) }
  end
  ngx.say(text)
end

--- GET /spec/campaign/big?bytes=N[&length=1]: {"data": "<N bytes of a-z>"}, written 8 KB at a
-- time (chunked unless length=1 sets Content-Length): a body far larger than the internal
-- location's proxy buffers.
function M.big()
  local n = tonumber(ngx.var.arg_bytes) or 0
  local piece = string.rep("abcdefghijklmnopqrstuvwxyz", 316):sub(1, 8192)
  ngx.header.content_type = "application/json"
  -- &header=N: an X-Padding header of N bytes (a long head), &id=1: an X-Request-Id of its own
  if ngx.var.arg_header then ngx.header["X-Padding"] = string.rep("p", tonumber(ngx.var.arg_header)) end
  if ngx.var.arg_id then ngx.header["X-Request-Id"] = ngx.var.request_id end
  if ngx.var.arg_length then ngx.header.content_length = n + 11 end
  ngx.print('{"data":"')
  local sent = 0
  while sent < n do
    local len = math.min(#piece, n - sent)
    ngx.print(len == #piece and piece or piece:sub(1, len))
    sent = sent + len
  end
  ngx.print('"}')
end

return M
