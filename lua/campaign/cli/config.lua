--- Configuration of the `campaign` CLI: command-line flags, else (with --emulator) the running
-- emulator's values, else CAMPAIGN_* environment variables. Pure: the environment and the
-- emulator's values are passed in.
local config = {}

config.DEFAULT_BASE_URL = "https://mc.adobe.io"

-- name: key in the settings table and in the emulator's `key=value` lines; flag: the option
-- name (underscores); env: the environment variable; label: how the error names it.
config.SETTINGS = {
  {name = "org", flag = "org", env = "CAMPAIGN_ORG", label = "tenant id"},
  {name = "api_key", flag = "api_key", env = "CAMPAIGN_API_KEY", label = "API key"},
  {name = "access_token", flag = "access_token", env = "CAMPAIGN_ACCESS_TOKEN", label = "access token"},
  {name = "client_id", flag = "client_id", env = "CAMPAIGN_CLIENT_ID", label = "client id"},
  {name = "client_secret", flag = "client_secret", env = "CAMPAIGN_CLIENT_SECRET", label = "client secret"},
  {name = "scopes", flag = "scopes", env = "CAMPAIGN_SCOPES", label = "scopes"},
  {name = "ims_url", flag = "ims_url", env = "CAMPAIGN_IMS_URL", label = "IMS URL"},
  {name = "base_url", flag = "base_url", env = "CAMPAIGN_BASE_URL", label = "base URL"},
  {name = "cafile", flag = "cafile", env = "CAMPAIGN_CAFILE", label = "CA file"},
  -- pacing (docs/cli.md "Pacing and budget"): checked as numbers by the CLI's get_client
  {name = "rate", flag = "rate", env = "CAMPAIGN_RATE", label = "rate"},
  {name = "budget", flag = "budget", env = "CAMPAIGN_BUDGET", label = "budget"},
}

-- The settings whose values never appear in any output.
config.SECRETS = {"access_token", "api_key", "client_secret"}

local function hint(setting)
  return "--" .. setting.flag:gsub("_", "-") .. " or " .. setting.env
end

--- Parses `key=value` lines (the emulator's start/status output) into a table.
function config.parse_kv(text)
  local values = {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    local key, value = line:match("^%s*([%w_]+)=(.*)$")
    if key then values[key] = value end
  end
  return values
end

--- Resolves the settings. `options`: parsed command-line options; `getenv(name)`; `emulator`:
-- the emulator's key=value table when --emulator is given, else nil.
-- Returns settings {org, api_key, base_url, cafile, ims_url, scopes, rate, budget (strings),
-- allow_http (boolean),
-- token = {kind = "static",
-- value =, source =} or {kind = "ims", client_id =, client_secret =}, sources = {name = where}}
-- or nil, message naming every missing setting.
function config.resolve(options, getenv, emulator)
  local settings, sources = {}, {}
  for _, setting in ipairs(config.SETTINGS) do
    local value, source = options[setting.flag], "--" .. setting.flag:gsub("_", "-")
    if (value == nil or value == "") and emulator then
      value, source = emulator[setting.name], "emulator"
    end
    if value == nil or value == "" then
      value, source = getenv(setting.env), setting.env
    end
    if value ~= nil and value ~= "" then
      settings[setting.name], sources[setting.name] = value, source
    end
  end
  settings.sources = sources
  settings.base_url = settings.base_url or config.DEFAULT_BASE_URL
  -- --allow-http or CAMPAIGN_ALLOW_HTTP=1: plain http:// base and IMS URLs to a host that is not
  -- loopback (campaign.new and campaign.auth.ims refuse them otherwise: docs/client.md)
  local allow = getenv("CAMPAIGN_ALLOW_HTTP")
  settings.allow_http = options.allow_http == true or allow == "1" or allow == "true" or allow == "yes"

  local missing = {}
  local function need(name)
    if not settings[name] then
      for _, setting in ipairs(config.SETTINGS) do
        if setting.name == name then missing[#missing + 1] = setting.label .. " (" .. hint(setting) .. ")" end
      end
    end
  end
  need("org")
  need("api_key")

  -- Which credentials: an access token given as a flag wins; then client credentials given as
  -- flags; then the emulator's client credentials (so tokens are really fetched and refreshed);
  -- then CAMPAIGN_ACCESS_TOKEN; then CAMPAIGN_CLIENT_ID + CAMPAIGN_CLIENT_SECRET.
  local function from(name, kind) return sources[name] and (
    kind == "flag" and sources[name]:sub(1, 2) == "--" or sources[name] == kind) end
  local has_client = settings.client_id and settings.client_secret
  local token
  if from("access_token", "flag") then
    token = {kind = "static", source = sources.access_token}
  elseif has_client and (from("client_id", "flag") or from("client_secret", "flag")) then
    token = {kind = "ims"}
  elseif has_client and from("client_id", "emulator") then
    token = {kind = "ims"}
  elseif settings.access_token then
    token = {kind = "static", source = sources.access_token}
  elseif has_client then
    token = {kind = "ims"}
  end
  if token and token.kind == "static" then
    token.value = settings.access_token
  elseif token then
    token.client_id, token.client_secret = settings.client_id, settings.client_secret
  elseif settings.client_id then
    missing[#missing + 1] =
      "client secret (--client-secret or CAMPAIGN_CLIENT_SECRET) to go with the client id"
  elseif settings.client_secret then
    missing[#missing + 1] = "client id (--client-id or CAMPAIGN_CLIENT_ID) to go with the client secret"
  else
    missing[#missing + 1] = "credentials (--access-token or CAMPAIGN_ACCESS_TOKEN, or CAMPAIGN_CLIENT_ID " ..
      "and CAMPAIGN_CLIENT_SECRET)"
  end
  if #missing > 0 then
    return nil, "missing setting" .. (#missing > 1 and "s" or "") .. ": " .. table.concat(missing, "; ")
  end
  settings.token = token
  return settings
end

--- Every secret value in the settings (for the output redactor).
function config.secrets(settings)
  local list = {}
  for _, name in ipairs(config.SECRETS) do
    if settings[name] then list[#list + 1] = settings[name] end
  end
  return list
end

return config
