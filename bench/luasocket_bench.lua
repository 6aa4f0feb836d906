-- The way Lua scripts commonly call a REST API: LuaSocket's socket.http (or LuaSec's ssl.https)
-- and lua-cjson to decode. socket.http sends `Connection: close`, so every request opens a new
-- connection (and a new TLS handshake over HTTPS): that is the peer being measured.
--   lua5.4 bench/luasocket_bench.lua --url URL [--cafile F] [--seconds S] [--max-requests N]
local common = require "common"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local opts = common.parse_args(arg, { seconds = 3, token = "bench-token", api_key = "bench-api-key" })
local https = opts.url:match("^https:") and require "ssl.https"

local headers = {
  ["Authorization"] = "Bearer " .. opts.token, ["X-Api-Key"] = opts.api_key,
  ["Cache-Control"] = "no-cache", ["Accept"] = "application/json",
  ["Content-Type"] = "application/json;charset=utf-8", -- every request, as the client sends it
}

local function get()
  local chunks = {}
  local request = { url = opts.url, headers = headers, sink = ltn12.sink.table(chunks) }
  local ok, status
  if https then
    request.verify = "peer"
    request.cafile = opts.cafile
    request.protocol = "any"
    request.options = { "all", "no_sslv2", "no_sslv3" }
    ok, status = https.request(request)
  else
    ok, status = http.request(request)
  end
  if not ok or status ~= 200 then return nil end
  return cjson.decode(table.concat(chunks))
end

local requests, failures, seconds = common.run_for(opts, function()
  return 1, get() and 0 or 1
end)
print(common.result_line(requests, failures, seconds))
os.exit(failures == 0)
