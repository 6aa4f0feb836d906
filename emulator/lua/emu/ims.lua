-- IMS: POST /ims/token/v3 (form: grant_type=client_credentials, client_id, client_secret,
-- scope) -> {access_token, token_type = "bearer", expires_in}. Wrong credentials answer
-- 400 {"error":"invalid_client"}, like Adobe's IMS. Also the legacy POST /ims/exchange/jwt
-- and GET /ims/profile/v1.
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

local function form_args()
  local args = ngx.req.get_uri_args(100)
  local post = ngx.req.get_post_args(100)
  for k, v in pairs(post) do args[k] = v end
  return args
end

-- client_id and client_secret, as both flows check them: nil, or the error's status, body.
local function check_client(args, settings)
  if type(args.client_id) ~= "string" or args.client_id == "" then
    return oauth_error(400, "invalid_request", "missing client_id parameter")
  end
  if args.client_id ~= settings.client_id then
    return oauth_error(400, "invalid_client", "invalid client_id parameter")
  end
  if args.client_secret ~= settings.client_secret then
    return oauth_error(400, "invalid_client", "invalid client_secret parameter")
  end
  return nil
end

function _M.token(ctx)
  if ctx.method ~= "POST" then return oauth_error(405, "invalid_request", "POST is required") end
  local settings = state.settings()
  local args = form_args()
  if args.grant_type ~= "client_credentials" then
    return oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
  end
  local status, body = check_client(args, settings)
  if status then return status, body end
  local ttl = settings.token_ttl
  local token = _M.new_token(args.client_id, ttl)
  state.add_token(token, ttl)
  return 200, { access_token = token, token_type = "bearer", expires_in = ttl }
end

-- The legacy JWT (Service Account) exchange, deprecated by Adobe (acs-api.md section 2):
-- POST /ims/exchange/jwt, form client_id, client_secret, jwt_token -> {token_type, access_token,
-- expires_in} with expires_in in MILLISECONDS (86399000 for the default lifetime), as that flow
-- answered. The emulator cannot verify the RS256 signature (it has no public key): jwt_token
-- must have a JWT's three parts, a JSON payload, and an `exp` (when given) in the future.
local function unb64url(s)
  return ngx.decode_base64((s:gsub("[-_]", { ["-"] = "+", ["_"] = "/" })) .. ("="):rep((4 - #s % 4) % 4))
end

function _M.exchange_jwt(ctx)
  if ctx.method ~= "POST" then return oauth_error(405, "invalid_request", "POST is required") end
  local settings = state.settings()
  local args = form_args()
  local status, body = check_client(args, settings)
  if status then return status, body end
  local jwt = args.jwt_token
  if type(jwt) ~= "string" or jwt == "" then
    return oauth_error(400, "invalid_request", "missing jwt_token parameter")
  end
  local payload = jwt:match("^[%w_%-]+%.([%w_%-]+)%.[%w_%-]+$")
  local claims = payload and unb64url(payload)
  claims = claims and json.decode(claims)
  if type(claims) ~= "table" then
    return oauth_error(400, "invalid_token", "the jwt_token parameter is not a JWT")
  end
  if type(claims.exp) == "number" and claims.exp < ngx.time() then
    return oauth_error(400, "invalid_token", "JWT token is expired")
  end
  local ttl = settings.token_ttl
  local token = _M.new_token(args.client_id, ttl)
  state.add_token(token, ttl)
  return 200, { access_token = token, token_type = "bearer", expires_in = ttl * 1000 }
end

-- GET /ims/profile/v1 with the Bearer token (ACS:troubleshooting): the IMS profile, whose
-- projectedProductContext has the Campaign product context; its prodCtx.organization_id is
-- the tenant of the API URLs (the emulator's --org).
function _M.profile(ctx)
  if ctx.method ~= "GET" then return oauth_error(405, "invalid_request", "GET is required") end
  local auth = ngx.var.http_authorization
  local token = auth and auth:match("^[Bb]earer%s+(%S+)%s*$")
  if not state.token_valid(token) then
    return oauth_error(401, "invalid_token", "the access token is missing, invalid or expired")
  end
  local org = state.setting("org")
  return 200, {
    countryCode = "US",
    mrktPermEmail = json.null,
    projectedProductContext = json.array { {
      prodCtx = {
        createDts = 1421181343000, deal_id = " ", ident = "EMULATORCAMPAIGNPRODUCTCTX1",
        label = "Adobe Marketing Cloud", modDts = 1448307260000, organization_id = org,
        owningEntity = "EMULATOR0000000000000000@AdobeOrg", serviceCode = "dma_tartan",
        serviceLevel = "standard", statusCode = "ACTIVE",
      },
    } },
  }
end

return _M
