--- The webhook handler of examples/openresty: POST {"PKey": "...", "changes": {...}} ->
-- campaign.workflow.update_and_verify through the non-blocking campaign.ngx client.
--   200 the verified profile (JSON)
--   409 the error object as JSON when the profile does not read back as sent (kind "verify")
--   502 the error object as JSON for any other failure (API, network, token)
--   400 {"error": "..."} when the request body is not such an object, or its PKey cannot be
--       one path segment (campaign.api.key_segment's check: "..%2F", "/", "\\"...); 405 for
--       other methods
-- The settings come from the environment (nginx.conf's `env`), read per request: no state is
-- kept at module level, and the token never reaches a log line or an answer.
-- luacheck: globals ngx (a handler sets ngx.status and ngx.header)
local campaign = require "campaign"
local api = require "campaign.api"
local cngx = require "campaign.ngx"
local workflow = require "campaign.workflow"

local M = {}

local function reply(status, value)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.say(campaign.encode(value))
  return ngx.exit(status)
end

-- The error object as plain JSON-able fields (it is a table with a metatable).
local function error_json(err)
  local out = {}
  for k, v in pairs(err) do out[k] = v end
  out.error = tostring(err)
  return out
end

local function new_client()
  return cngx.new {
    base_url = os.getenv("CAMPAIGN_BASE_URL"),
    org = os.getenv("CAMPAIGN_ORG"),
    api_key = os.getenv("CAMPAIGN_API_KEY"),
    token = os.getenv("CAMPAIGN_TOKEN"),
    upstream = "campaign_api", -- the keep-alive pool run declares in nginx.conf
  }
end

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return reply(405, { error = "POST a JSON object {\"PKey\": ..., \"changes\": {...}}" })
  end
  ngx.req.read_body()
  local text = ngx.req.get_body_data()
  local ok, payload = pcall(campaign.decode, text or "")
  if not ok or type(payload) ~= "table" or type(payload.PKey) ~= "string" or payload.PKey == ""
      or type(payload.changes) ~= "table" then
    return reply(400, { error = "expected a JSON object {\"PKey\": \"@...\", \"changes\": {...}}" })
  end
  -- The PKey comes from outside: checked here with the api functions' own rule, so that a bad
  -- one is a clear 400 before any client exists (the workflow would raise on it anyway).
  local segment, problem = api.key_segment(payload.PKey)
  if not segment then return reply(400, { error = "PKey " .. problem }) end
  -- a raise is a request the client refuses before sending anything (a value JSON cannot
  -- carry): the caller's mistake, so 400
  local client = new_client() -- raises (500, logged) when the environment lacks a setting
  local called, profile, err = pcall(workflow.update_and_verify, client, payload.PKey, payload.changes)
  if not called then return reply(400, { error = tostring(profile) }) end
  if profile then return reply(200, profile) end
  if campaign.is_error(err) and err.kind == "verify" then return reply(409, error_json(err)) end
  if campaign.is_error(err) then return reply(502, error_json(err)) end
  return reply(502, { error = tostring(err) })
end

return M
