-- IMS: POST /ims/token/v3 (form: grant_type=client_credentials, client_id, client_secret,
-- scope) -> {access_token, token_type = "bearer", expires_in}. Wrong credentials answer
-- 400 {"error":"invalid_client"}, like Adobe's IMS.
local json = require "emu.json"
local state = require "emu.state"

local ngx = ngx

local _M = {}

local function b64url(s)
  return (ngx.encode_base64(s, true):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

-- A JWT-shaped opaque token; the random part comes from the time, a counter and the pid.
function _M.new_token(client_id, ttl)
  local n = ngx.shared.campaign_state:incr("token_seq", 1, 0)
  local now = ngx.now()
  local header = b64url('{"alg":"RS256","x5u":"ims_na1-key-at-1.cer","kid":"ims_na1-key-at-1","itt":"at"}')
  local payload = b64url(json.encode { id = n .. "-" .. now, type = "access_token", client_id = client_id,
    as = "ims-na1", created_at = tostring(math.floor(now * 1000)), expires_in = tostring(ttl * 1000) })
  local signature = b64url(ngx.sha1_bin(n .. ":" .. now .. ":" .. ngx.worker.pid() .. ":" .. math.random())
    .. ngx.sha1_bin(now .. ":" .. n .. ":" .. math.random()))
  return header .. "." .. payload .. "." .. signature
end

local function oauth_error(status, code, description)
  return status, { error = code, error_description = description }
end

function _M.token(ctx)
  if ctx.method ~= "POST" then return oauth_error(405, "invalid_request", "POST is required") end
  local settings = state.settings()
  local args = ngx.req.get_uri_args(100)
  local post = ngx.req.get_post_args(100)
  for k, v in pairs(post) do args[k] = v end
  if args.grant_type ~= "client_credentials" then
    return oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
  end
  if type(args.client_id) ~= "string" or args.client_id == "" then
    return oauth_error(400, "invalid_request", "missing client_id parameter")
  end
  if args.client_id ~= settings.client_id then
    return oauth_error(400, "invalid_client", "invalid client_id parameter")
  end
  if args.client_secret ~= settings.client_secret then
    return oauth_error(400, "invalid_client", "invalid client_secret parameter")
  end
  local ttl = settings.token_ttl
  local token = _M.new_token(args.client_id, ttl)
  state.add_token(token, ttl)
  return 200, { access_token = token, token_type = "bearer", expires_in = ttl }
end

return _M
