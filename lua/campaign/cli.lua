--- The `campaign` command-line tool: `cli.main(argv, env) -> exit code`.
-- bin/campaign is a thin wrapper around this module; docs/cli.md is the user's manual.
-- Exit codes: 0 ok, 1 API or network error, 2 usage error (also a missing setting),
-- 3 verification mismatch, 4 bulk run with failures.
local args = require "campaign.cli.args"
local config = require "campaign.cli.config"
local input = require "campaign.cli.input"
local output = require "campaign.cli.output"

local cli = {}

local EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_VERIFY, EXIT_BULK = 0, 1, 2, 3, 4
cli.EXIT = {ok = EXIT_OK, api = EXIT_API, usage = EXIT_USAGE, verify = EXIT_VERIFY, bulk = EXIT_BULK}

-- Every option of every command with its kind; `commands[...].options` says where each is valid.
local KNOWN = {
  help = "flag", verbose = "flag", raw = "flag", pretty = "flag", compact = "flag",
  emulator = "flag", emulator_prefix = "value",
  org = "value", api_key = "value", access_token = "value", client_id = "value",
  client_secret = "value", scopes = "value", ims_url = "value", base_url = "value",
  cafile = "value", timeout = "value", retries = "value",
  query = "list", json = "value", verify = "flag", email = "value", filter = "list",
  param = "list", order = "value", desc = "flag", limit = "value", all = "flag",
  concurrency = "value", report = "value", format = "value", progress_interval = "value",
  no_progress = "flag", show = "flag", version = "flag",
}
local SHORT = {h = "help", v = "verbose"}

local GLOBAL_OPTIONS = {"help", "verbose", "pretty", "compact", "emulator", "emulator_prefix", "org",
  "api_key", "access_token", "client_id", "client_secret", "scopes", "ims_url", "base_url", "cafile",
  "timeout", "retries"}

local GLOBAL_HELP = [[
Connection (flags win over the environment; --emulator over the environment too):
  --org ID              tenant id                  CAMPAIGN_ORG
  --api-key KEY         API key (X-Api-Key)        CAMPAIGN_API_KEY
  --access-token T      a ready access token       CAMPAIGN_ACCESS_TOKEN
  --client-id ID        OAuth server-to-server     CAMPAIGN_CLIENT_ID
  --client-secret S       credentials              CAMPAIGN_CLIENT_SECRET
  --scopes LIST         comma-separated scopes     CAMPAIGN_SCOPES
  --ims-url URL         IMS server                 CAMPAIGN_IMS_URL (https://ims-na1.adobelogin.com)
  --base-url URL        API server                 CAMPAIGN_BASE_URL (https://mc.adobe.io)
  --cafile FILE         CA certificates (PEM)      CAMPAIGN_CAFILE
  --emulator            use the running emulator's values (--emulator-prefix DIR or
                        CAMPAIGN_EMULATOR_PREFIX picks which one)
  --timeout S, --retries N
Output:
  --pretty | --compact  JSON layout (default: pretty on a terminal, compact otherwise)
  -v, --verbose         log each request and retry on stderr (never a secret)
  -h, --help            this help        --version   lua-campaign's version
]]

local COMMANDS = {
  get = {
    usage = "campaign get PATH [--query k=v ...] [--raw]",
    summary = "GET a resource; PATH is relative to <base_url>/<org>/campaign/ (or an href)",
    options = {"query", "raw"},
    example = "campaign get profileAndServices/profile --query _lineCount=5",
  },
  patch = {
    usage = "campaign patch PATH FIELDS... [--json '{...}' | --json @FILE] [--raw]",
    summary = "PATCH a resource with FIELDS",
    options = {"json", "raw"},
    example = "campaign patch profileAndServices/profile/@PKEY phone=3301020304 age:=42",
  },
  post = {
    usage = "campaign post PATH FIELDS... [--json '{...}' | --json @FILE] [--raw]",
    summary = "POST a new resource made of FIELDS",
    options = {"json", "raw"},
    example = "campaign post profileAndServices/profile email=john.doe@mail.com",
  },
  delete = {
    usage = "campaign delete PATH [--raw]",
    summary = "DELETE a resource",
    options = {"raw"},
    example = "campaign delete profileAndServices/profile/@PKEY",
  },
  ["profile get"] = {
    usage = "campaign profile get PKEY",
    summary = "read one profile",
    options = {},
    example = "campaign profile get @PKEY",
  },
  ["profile update"] = {
    usage = "campaign profile update PKEY FIELDS... [--json ...] [--verify]",
    summary = "PATCH a profile; with --verify read it back and compare (exit 3 on a mismatch)",
    options = {"json", "verify"},
    example = "campaign profile update @PKEY phone=3301020304 --verify",
  },
  ["profile find"] = {
    usage = "campaign profile find --email ADDRESS",
    summary = "the profiles with this email (a JSON array)",
    options = {"email"},
    example = "campaign profile find --email amy.dakota@mail.com",
  },
  ["profile list"] = {
    usage = "campaign profile list [--filter NAME --param k=v ...] [--order FIELD [--desc]]\n" ..
      "                            [--limit N | --all]",
    summary = "list profiles (a JSON array; default the first 25, --all follows every page)",
    options = {"filter", "param", "order", "desc", "limit", "all"},
    example = "campaign profile list --filter byText --param text=Dak --order email --limit 10",
  },
  ["bulk-update"] = {
    usage = "campaign bulk-update FILE [--concurrency N] [--verify] [--report FILE] [--format csv|ndjson]",
    summary = "PATCH many profiles from NDJSON or CSV (FILE '-' reads stdin); exit 4 if any failed",
    options = {"concurrency", "verify", "report", "format", "progress_interval", "no_progress"},
    example = "campaign bulk-update changes.csv --concurrency 16 --verify --report report.ndjson",
  },
  token = {
    usage = "campaign token [--show]",
    summary = "get an access token and show its expiry (the token itself only with --show)",
    options = {"show"},
    example = "campaign token",
  },
  emulator = {
    usage = "campaign emulator start|stop|status [emulator options] [--show]",
    summary = "run the local ACS emulator (secrets in its output are hidden unless --show)",
    options = {},
    example = "campaign emulator start --port 0",
  },
}
local COMMAND_ORDER = {"get", "patch", "post", "delete", "profile get", "profile update", "profile find",
  "profile list", "bulk-update", "token", "emulator"}

local EXTRA_HELP = {
  query = "  --query k=v           a query parameter (repeatable; sent URL-encoded once)",
  raw = "  --raw                 print the response body exactly as received",
  json = "  --json TEXT|@FILE     a whole JSON body (@- reads stdin); FIELDS are merged over it",
  verify = "  --verify              read back and compare every changed field",
  email = "  --email ADDRESS       the address to look up (byEmail filter)",
  filter = "  --filter NAME         an ACS filter (byText, byEmail, ...; repeatable, chained)",
  param = "  --param k=v           a filter parameter (repeatable)",
  order = "  --order FIELD         sort by this field",
  desc = "  --desc                descending order",
  limit = "  --limit N             at most N profiles",
  all = "  --all                 every profile, following next.href (sends _forcePagination=true)",
  concurrency = "  --concurrency N       requests in flight (default 8)",
  report = "  --report FILE         NDJSON, one line per input item in input order, with its outcome",
  format = "  --format csv|ndjson   input format (default: by extension, else by content)",
  progress_interval = "  --progress-interval S seconds between progress lines off a terminal (default 2)",
  no_progress = "  --no-progress         no progress output",
  show = "  --show                print the secret values too",
}

local FIELDS_HELP = [[
FIELDS: key=value sends a string (a phone number stays a string); key:=json sends any JSON
value (age:=42, tags:=[], x:=null, location:={"city":"Paris"}).
]]

local function main_help()
  local lines = {"Usage: campaign COMMAND [options]", "", "Commands:"}
  for _, name in ipairs(COMMAND_ORDER) do
    lines[#lines + 1] = string.format("  %-16s %s", name, COMMANDS[name].summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'campaign COMMAND --help' shows a command's options and an example."
  lines[#lines + 1] = "Exit codes: 0 ok, 1 API or network error, 2 usage error, 3 verification mismatch,"
  lines[#lines + 1] = "4 bulk run with failures."
  lines[#lines + 1] = ""
  return table.concat(lines, "\n") .. "\n" .. FIELDS_HELP .. "\n" .. GLOBAL_HELP
end

local function command_help(name)
  local command = COMMANDS[name]
  local lines = {"Usage: " .. command.usage, "", command.summary .. ".", ""}
  if #command.options > 0 then
    lines[#lines + 1] = "Options:"
    for _, option in ipairs(command.options) do lines[#lines + 1] = EXTRA_HELP[option] end
    lines[#lines + 1] = ""
  end
  if name == "bulk-update" then
    lines[#lines + 1] = [[
FILE is NDJSON ({"PKey": "@...", "phone": "..."} per line, or a report line {"PKey": ...,
"changes": {...}}) or CSV with a header row and a PKey column (RFC 4180 quoting; an empty cell
leaves the field alone, "" sets it to the empty string; a header 'name:=' makes a JSON column).
Progress goes to stderr: a bar on a terminal, plain lines otherwise. A rerun on the report's
failed lines finishes the job:  grep '"ok":false' report.ndjson | campaign bulk-update -
]]
  elseif name == "emulator" then
    lines[#lines + 1] = "The arguments go to emulator/campaign-emulator (start: --port, --tls, --http2, " ..
      "--prefix,\n--profiles, --token-ttl; stop/status: --prefix).\n"
  elseif command.usage:find("FIELDS", 1, true) then
    lines[#lines + 1] = FIELDS_HELP
  end
  lines[#lines + 1] = "Example:\n  " .. command.example .. "\n"
  lines[#lines + 1] = GLOBAL_HELP
  return table.concat(lines, "\n")
end

-- Quotes a word for /bin/sh.
local function shell_quote(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end

-- Whether file descriptor `fd` (1 or 2) is a terminal. lua-term (a busted dependency) answers
-- without a process; otherwise `test -t` in a shell that inherits our descriptors.
local function isatty(fd)
  local ok, term = pcall(require, "term")
  if ok and type(term) == "table" and term.isatty then
    return term.isatty(fd == 1 and io.stdout or io.stderr) and true or false
  end
  return os.execute("test -t " .. fd) == true
end

-- Wall-clock seconds with sub-second precision where we can get it.
local function make_clock()
  local ok, system = pcall(require, "system")
  if ok and type(system) == "table" and system.monotime then return system.monotime end
  local uptime = io.open("/proc/uptime")
  if uptime then
    uptime:close()
    return function()
      local file = io.open("/proc/uptime")
      local value = file and tonumber(file:read("n"))
      if file then file:close() end
      return value or os.time()
    end
  end
  return os.time
end

-- A usage error travels as this table through error() up to main, which prints it and exits 2.
local Usage = {}
Usage.__index = Usage
local function usage_error(message, command)
  error(setmetatable({message = message, command = command}, Usage), 0)
end

local function emulator_script(ctx)
  local script = ctx.getenv("CAMPAIGN_EMULATOR")
  if script and script ~= "" then return script end
  if ctx.root then
    local path = ctx.root .. "/emulator/campaign-emulator"
    local file = io.open(path)
    if file then file:close(); return path end
  end
  return nil
end

local function emulator_prefix_args(ctx, options)
  local prefix = options.emulator_prefix or ctx.getenv("CAMPAIGN_EMULATOR_PREFIX")
  if prefix and prefix ~= "" then return " --prefix " .. shell_quote(prefix) end
  return ""
end

-- Reads the running emulator's key=value lines (`campaign-emulator status`).
local function emulator_values(ctx, options)
  local script = emulator_script(ctx)
  if not script then
    usage_error("--emulator: emulator/campaign-emulator not found (it ships with the source checkout; " ..
      "set CAMPAIGN_EMULATOR to its path)")
  end
  local command = shell_quote(script) .. " status" .. emulator_prefix_args(ctx, options) .. " 2>/dev/null"
  local pipe = io.popen(command)
  local text = pipe:read("a")
  local ok = pipe:close()
  local values = config.parse_kv(text)
  if not ok or not values.base_url then
    return nil, "--emulator: no emulator is running" ..
      (emulator_prefix_args(ctx, options) ~= "" and " with that prefix" or "") ..
      " (start one: campaign emulator start)"
  end
  return values
end

local function load_campaign()
  return require "campaign"
end

local function encode_json(ctx, value)
  local campaign = load_campaign()
  if ctx.pretty then return campaign.encode(value, {pretty = true}) end
  return campaign.encode(value)
end

local function print_json(ctx, value)
  local text = encode_json(ctx, value)
  ctx.out(text:sub(-1) == "\n" and text or text .. "\n")
end

local function describe_event(ev)
  local parts = {ev.type or "event"}
  if ev.method then parts[#parts + 1] = ev.method end
  if ev.url then parts[#parts + 1] = ev.url end
  if ev.status then parts[#parts + 1] = "-> " .. tostring(ev.status) end
  if ev.attempt then parts[#parts + 1] = "attempt " .. tostring(ev.attempt) end
  if ev.elapsed then parts[#parts + 1] = string.format("%.3fs", ev.elapsed) end
  if ev.wait then parts[#parts + 1] = string.format("waiting %.2fs", ev.wait) end
  if ev.message or ev.error then parts[#parts + 1] = tostring(ev.message or ev.error) end
  return table.concat(parts, " ")
end

-- Builds the client from the resolved settings (once per run).
local function get_client(ctx)
  if ctx.client then return ctx.client end
  local options = ctx.options
  local emulator
  if options.emulator then
    local err
    emulator, err = emulator_values(ctx, options)
    if not emulator then
      ctx.err("campaign: " .. err .. "\n")
      error(setmetatable({exit = EXIT_API}, Usage), 0)
    end
  end
  local settings, missing = config.resolve(options, ctx.getenv, emulator)
  if not settings then usage_error(missing) end
  ctx.settings = settings
  local secrets = config.secrets(settings)
  if emulator then
    for _, name in ipairs({"access_token", "client_secret", "api_key"}) do
      secrets[#secrets + 1] = emulator[name]
    end
  end
  for _, name in ipairs({"CAMPAIGN_ACCESS_TOKEN", "CAMPAIGN_API_KEY", "CAMPAIGN_CLIENT_SECRET"}) do
    secrets[#secrets + 1] = ctx.getenv(name)
  end
  local add_secret
  ctx.redact, add_secret = output.redactor(secrets)

  local campaign = load_campaign()
  local on_event
  if options.verbose then
    on_event = function(ev)
      ctx.err(ctx.redact("campaign: " .. describe_event(ev)) .. "\n")
    end
  end
  local token = settings.token.value
  if settings.token.kind == "ims" then
    local auth = require "campaign.auth"
    local provider = auth.ims{
      client_id = settings.token.client_id,
      client_secret = settings.token.client_secret,
      scopes = settings.scopes,
      ims_url = settings.ims_url,
      http = {cafile = settings.cafile, on_event = on_event},
    }
    -- Every token fetched joins the secrets that are never printed.
    token = function(force_refresh)
      local value, expires_in = provider(force_refresh)
      add_secret(value)
      return value, expires_in
    end
    ctx.provider = token
  end
  local client_options = {
    org = settings.org,
    api_key = settings.api_key,
    token = token,
    base_url = settings.base_url,
    cafile = settings.cafile,
  }
  if options.timeout then
    client_options.timeout = args.non_negative_number(options.timeout, "timeout")
      or usage_error("option '--timeout' needs a number of seconds")
  end
  if options.retries then
    local retries = tonumber(options.retries)
    if not retries or retries < 0 or retries ~= math.floor(retries) then
      usage_error("option '--retries' needs a non-negative integer")
    end
    client_options.retries = math.floor(retries)
  end
  client_options.on_event = on_event
  local ok, client = pcall(campaign.new, client_options)
  if not ok then usage_error(tostring(client)) end
  ctx.client = client
  return client
end

-- Prints a runtime failure (one line) and returns exit code 1.
local function api_failure(ctx, err)
  local text = tostring(err)
  if not text:match("^campaign: ") then text = "campaign: " .. text end
  text = text:gsub("[\r\n].*", "")
  ctx.err(ctx.redact(text) .. "\n")
  return EXIT_API
end

local function need_positional(ctx, count, what)
  local positional = ctx.positional
  if #positional < count then usage_error("missing " .. what, ctx.command) end
end

local function no_extra_positional(ctx, count)
  if #ctx.positional > count then
    usage_error("unexpected argument '" .. ctx.positional[count + 1] .. "'", ctx.command)
  end
end

-- The body of patch/post/profile update: --json (text, @file, @- for stdin) with FIELDS merged
-- over it. Returns a table; every problem is a usage error found before anything is sent.
local function request_body(ctx, field_words, required)
  local campaign = load_campaign()
  local fields, count = args.fields(field_words, campaign.decode)
  if not fields then usage_error(fields == nil and count or "bad FIELDS", ctx.command) end
  local json = ctx.options.json
  if json then
    local text = json
    if json:sub(1, 1) == "@" then
      local name = json:sub(2)
      local file, err
      if name == "-" then file = ctx.stdin else file, err = io.open(name, "rb") end
      if not file then usage_error("--json: " .. tostring(err), ctx.command) end
      text = file:read("a")
      if file ~= ctx.stdin then file:close() end
    end
    local body, err = campaign.decode(text)
    if body == nil then
      usage_error("--json: invalid JSON (" .. tostring(err and (err.message or err)) .. ")", ctx.command)
    end
    if type(body) ~= "table" then usage_error("--json must be a JSON object or array", ctx.command) end
    if count == 0 then return body end
    if body[1] ~= nil then
      usage_error("--json must be a JSON object to merge FIELDS into it", ctx.command)
    end
    for key, value in pairs(fields) do body[key] = value end
    return body
  end
  if required and count == 0 then usage_error("nothing to send: give FIELDS or --json", ctx.command) end
  return fields
end

local handlers = {}

local function generic_request(ctx, method)
  need_positional(ctx, 1, "PATH")
  local path = ctx.positional[1]
  local body
  if method == "PATCH" or method == "POST" then
    local words = {}
    for i = 2, #ctx.positional do words[#words + 1] = ctx.positional[i] end
    body = request_body(ctx, words, true)
  else
    no_extra_positional(ctx, 1)
  end
  local query
  if ctx.options.query then
    local err
    query, err = args.pairs(ctx.options.query, "--query")
    if not query then usage_error(err, ctx.command) end
  end
  local client = get_client(ctx)
  if ctx.options.raw then
    local text, err = client:request(method, path, {query = query, body = body, raw = true})
    if text == nil then return api_failure(ctx, err) end
    ctx.out(text)
    return EXIT_OK
  end
  local result, err
  if method == "GET" then
    result, err = client:get(path, {query = query})
  elseif method == "PATCH" then
    result, err = client:patch(path, body)
  elseif method == "POST" then
    result, err = client:post(path, body)
  else
    result, err = client:delete(path)
  end
  if result == nil then return api_failure(ctx, err) end
  print_json(ctx, result)
  return EXIT_OK
end

handlers.get = function(ctx) return generic_request(ctx, "GET") end
handlers.patch = function(ctx) return generic_request(ctx, "PATCH") end
handlers.post = function(ctx) return generic_request(ctx, "POST") end
handlers.delete = function(ctx) return generic_request(ctx, "DELETE") end

handlers["profile get"] = function(ctx)
  need_positional(ctx, 1, "PKEY")
  no_extra_positional(ctx, 1)
  local client = get_client(ctx)
  local profile, err = require("campaign.api").get_profile(client, ctx.positional[1])
  if profile == nil then return api_failure(ctx, err) end
  print_json(ctx, profile)
  return EXIT_OK
end

local function describe_value(value)
  local ok, text = pcall(encode_json, {pretty = false}, value)
  return ok and text or tostring(value)
end

handlers["profile update"] = function(ctx)
  need_positional(ctx, 1, "PKEY")
  local pkey = ctx.positional[1]
  local words = {}
  for i = 2, #ctx.positional do words[#words + 1] = ctx.positional[i] end
  local changes = request_body(ctx, words, true)
  if type(changes) ~= "table" or changes[1] ~= nil then
    usage_error("a profile update needs a JSON object", ctx.command)
  end
  local client = get_client(ctx)
  if not ctx.options.verify then
    local answer, err = require("campaign.api").update_profile(client, pkey, changes)
    if answer == nil then return api_failure(ctx, err) end
    print_json(ctx, answer)
    return EXIT_OK
  end
  -- The library's defaults: the whole change is PATCHed (a read-only field gets ACS's 500, exit 1,
  -- as without --verify), then read back and compared.
  local profile, err = require("campaign.workflow").update_and_verify(client, pkey, changes)
  if profile == nil then
    if type(err) == "table" and err.kind == "verify" then
      local names = {}
      for field in pairs(err.mismatches or {}) do names[#names + 1] = field end
      table.sort(names)
      local parts = {}
      for _, field in ipairs(names) do
        local mismatch = err.mismatches[field]
        parts[#parts + 1] = field .. ": expected " .. describe_value(mismatch.expected) ..
          ", got " .. describe_value(mismatch.got)
      end
      local text = "campaign: verification failed for " .. pkey .. ": " .. table.concat(parts, "; ")
      ctx.err(ctx.redact(text) .. "\n")
      return EXIT_VERIFY
    end
    return api_failure(ctx, err)
  end
  print_json(ctx, profile)
  return EXIT_OK
end

-- Prints a listing as a JSON array while campaign.pages fetches it, page after page: memory
-- stays bounded for `--all` on a big table. The layout is what campaign.encode gives for the
-- whole array. A failed page, or a bad next.href (a cycle, another origin: campaign.pages
-- returns nil, err of kind "pagination"), ends the output where it is, after a newline (invalid
-- JSON on purpose: a partial list must not pass for a complete one), and exits 1.
-- Without a limit (every page: `profile list --all`, `profile find`) the first request says
-- `_forcePagination=true`: ACS omits `next` on tables above XtkBigTableThreshold (100,000 rows)
-- without it, which would end the listing silently after one page. It changes nothing on a
-- smaller table; campaign.pages keeps it on every later page.
local function print_listing(ctx, path, query, limit)
  local campaign = load_campaign()
  local pages = require "campaign.pages"
  if limit == nil and query._forcePagination == nil then query._forcePagination = "true" end
  local records = pages.each(get_client(ctx), path, query, {limit = limit})
  local count = 0
  while true do
    local record, err = records()
    if record == nil then
      if err ~= nil then
        if count > 0 then ctx.out("\n") end
        return api_failure(ctx, err)
      end
      break
    end
    local text
    if ctx.pretty then
      text = campaign.encode(record, {pretty = true}):gsub("\n", "\n  ")
      ctx.out((count == 0 and "[\n  " or ",\n  ") .. text)
    else
      ctx.out((count == 0 and "[" or ",") .. campaign.encode(record))
    end
    count = count + 1
  end
  if count == 0 then
    ctx.out("[]\n")
  else
    ctx.out(ctx.pretty and "\n]\n" or "]\n")
  end
  return EXIT_OK
end

handlers["profile find"] = function(ctx)
  no_extra_positional(ctx, 0)
  local email = ctx.options.email
  if not email or email == "" then usage_error("missing --email", ctx.command) end
  return print_listing(ctx, "profileAndServices/profile/byEmail", {email = email})
end

handlers["profile list"] = function(ctx)
  no_extra_positional(ctx, 0)
  local options = ctx.options
  local path = "profileAndServices/profile"
  for _, filter in ipairs(options.filter or {}) do
    if not filter:match("^[%w_]+$") then
      usage_error("--filter '" .. filter .. "' is not a filter name", ctx.command)
    end
    path = path .. "/" .. filter
  end
  local query, err = args.pairs(options.param, "--param")
  if not query then usage_error(err, ctx.command) end
  if options.desc and not options.order then usage_error("--desc needs --order", ctx.command) end
  if options.order then query._order = options.order .. (options.desc and " desc" or "") end
  if options.all and options.limit then usage_error("--limit and --all exclude each other", ctx.command) end
  local limit
  if options.limit then
    limit, err = args.positive_integer(options.limit, "limit")
    if not limit then usage_error(err, ctx.command) end
    query._lineCount = tostring(limit)
  elseif not options.all then
    limit = 25   -- ACS's default page size: the first page, as `campaign get` would show it
  end
  return print_listing(ctx, path, query, limit)
end

-- Token expiry from an Adobe IMS access token (a JWT whose payload carries created_at and
-- expires_in in milliseconds) or a standard `exp` claim; nil when the token is opaque.
local function jwt_expiry(token)
  local payload = token:match("^[%w_-]+%.([%w_-]+)%.")
  if not payload then return nil end
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local bits, count, bytes = 0, 0, {}
  for char in payload:gmatch(".") do
    local index = alphabet:find(char, 1, true)
    if not index then return nil end
    bits = bits * 64 + index - 1
    count = count + 6
    if count >= 8 then
      count = count - 8
      bytes[#bytes + 1] = string.char(math.floor(bits / 2 ^ count) % 256)
      bits = bits % math.floor(2 ^ count)
    end
  end
  local claims = load_campaign().decode(table.concat(bytes))
  if type(claims) ~= "table" then return nil end
  if tonumber(claims.exp) then return tonumber(claims.exp) end
  local created, lifetime = tonumber(claims.created_at), tonumber(claims.expires_in)
  if created and lifetime then return math.floor((created + lifetime) / 1000) end
  return nil
end

handlers.token = function(ctx)
  no_extra_positional(ctx, 0)
  get_client(ctx)
  local settings = ctx.settings
  local result = {}
  local token, expires_in
  if settings.token.kind == "ims" then
    token, expires_in = ctx.provider(false)
    if token == nil then return api_failure(ctx, expires_in) end
    result.source = "ims"
    result.ims_url = settings.ims_url
  else
    token = settings.token.value
    result.source = settings.token.source
  end
  -- The token's own claims give its real expiry; the provider's expires_in is when it will
  -- refresh the token (a little earlier), used only for an opaque token.
  local expiry = jwt_expiry(token)
  if expiry then expires_in = expiry - os.time() end
  if expires_in then
    expires_in = math.floor(expires_in)
    result.expires_in = expires_in
    result.expires_at = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + expires_in)
  else
    result.expires_at = load_campaign().null
    result.note = "the token is opaque: its expiry is not known"
  end
  if ctx.options.show then
    result.access_token = token
    ctx.reveal(encode_json(ctx, result) .. "\n")   -- a secret printed because the user asked
    return EXIT_OK
  end
  print_json(ctx, result)
  return EXIT_OK
end

handlers.emulator = function(ctx)
  local words = ctx.rest
  local show = false
  local passed = {}
  for _, word in ipairs(words) do
    if word == "--show" then show = true else passed[#passed + 1] = shell_quote(word) end
  end
  if #passed == 0 then usage_error("missing start, stop or status", ctx.command) end
  local has_prefix = false
  for _, word in ipairs(words) do
    if word == "--prefix" or word:match("^%-%-prefix=") then has_prefix = true end
  end
  local prefix = ctx.getenv("CAMPAIGN_EMULATOR_PREFIX")
  if not has_prefix and prefix and prefix ~= "" then
    passed[#passed + 1] = "--prefix " .. shell_quote(prefix)
  end
  local script = emulator_script(ctx)
  if not script then
    usage_error("emulator/campaign-emulator not found (it ships with the source checkout; " ..
      "set CAMPAIGN_EMULATOR to its path)")
  end
  -- The output is captured and printed line by line so that secrets can be hidden.
  local pipe = io.popen(shell_quote(script) .. " " .. table.concat(passed, " "))
  for line in pipe:lines() do
    local key, value = line:match("^([%w_]+)=(.*)$")
    -- Adobe's client id is the API key: both are hidden.
    local secret = key == "access_token" or key == "client_secret" or key == "api_key" or key == "client_id"
    if not show and secret and value ~= "" then
      line = key .. "=***"
    end
    if show then ctx.reveal(line .. "\n") else ctx.out(line .. "\n") end
  end
  local _, _, code = pipe:close()
  return code or EXIT_API
end

-- bulk-update -------------------------------------------------------------------------------

-- Copies standard input into a temporary file: the input is read once to count and check it,
-- once to send it, and once more to write the report in input order.
local function spool_stdin(stdin)
  local name = os.tmpname()
  local file = assert(io.open(name, "wb"))
  while true do
    local chunk = stdin:read(65536)
    if not chunk then break end
    file:write(chunk)
  end
  file:close()
  return name
end

handlers["bulk-update"] = function(ctx)
  need_positional(ctx, 1, "FILE")
  no_extra_positional(ctx, 1)
  local options = ctx.options
  local campaign = load_campaign()
  local concurrency, err = args.positive_integer(options.concurrency or "8", "concurrency")
  if not concurrency then usage_error(err, ctx.command) end
  local interval
  interval, err = args.non_negative_number(options.progress_interval or "2", "progress-interval")
  if not interval then usage_error(err, ctx.command) end

  local path, temporary = ctx.positional[1], nil
  if path == "-" then
    temporary = spool_stdin(ctx.stdin)
    path = temporary
  end
  local function cleanup()
    if temporary then os.remove(temporary) end
  end

  -- Pass 1: count the items and find whole-file problems before anything is sent.
  local items, problem = input.open(path, options.format, campaign.decode)
  if not items then
    cleanup()
    problem = tostring(problem)
    -- io.open's message already starts with the file name.
    if problem:sub(1, #path + 2) ~= path .. ": " then problem = ctx.positional[1] .. ": " .. problem end
    usage_error(problem, ctx.command)
  end
  local total, invalid = 0, 0
  for item in items do
    if item.fatal then cleanup(); usage_error(ctx.positional[1] .. ": " .. item.error, ctx.command) end
    total = total + 1
    if item.error then invalid = invalid + 1 end
  end

  local ok_client, client = pcall(get_client, ctx)
  if not ok_client then cleanup(); error(client, 0) end

  local report_file
  if options.report then
    local open_err
    report_file, open_err = io.open(options.report, "wb")
    if not report_file then cleanup(); usage_error("--report: " .. tostring(open_err), ctx.command) end
  end

  -- Pass 2: send the valid items; the invalid ones are already failures.
  local update, finish
  if not options.no_progress and total > 0 then
    update, finish = output.progress{
      write = ctx.err, tty = ctx.isatty(2), clock = ctx.clock, interval = interval, total = total,
    }
  end
  local sending = assert(input.open(path, options.format, campaign.decode))
  local function next_valid()
    while true do
      local item = sending()
      if item == nil then return nil end
      if not item.error then return {pkey = item.pkey, changes = item.changes} end
    end
  end
  local ran, report = pcall(require("campaign.workflow").bulk_update, client, next_valid, {
    concurrency = concurrency,
    verify = options.verify and true or false,
    on_progress = update and function(done, _, failed) update(invalid + done, invalid + failed) end,
  })
  if not ran then
    -- A raise is misuse that the input checks did not catch: clean up, then report it.
    cleanup()
    if report_file then report_file:close() end
    error(report, 0)
  end
  local failed = invalid + report.failed
  if finish then finish(invalid + report.ok + report.failed, failed) end

  -- Pass 3: the report file and the first failures on stderr, in input order.
  local shown, SHOW_AT_MOST = 0, 10
  local reading = assert(input.open(path, options.format, campaign.decode))
  local sent_index = 0
  for item in reading do
    local line = {line = item.line, PKey = item.pkey}
    local message
    if item.error then
      message = item.error:gsub("^line %d+: ", "")
      line.ok, line.error, line.kind = false, message, "input"
    else
      sent_index = sent_index + 1
      local item_err = report.errors[sent_index]
      if item_err then
        message = ctx.redact(tostring(item_err)):gsub("[\r\n].*", "")
        line.ok, line.error, line.changes = false, message, item.changes
        if type(item_err) == "table" then
          line.kind, line.status, line.mismatches = item_err.kind, item_err.status, item_err.mismatches
        end
      else
        line.ok = true
      end
    end
    if message and shown < SHOW_AT_MOST then
      shown = shown + 1
      ctx.err(ctx.redact("campaign: line " .. item.line .. (item.pkey and " (" .. item.pkey .. ")" or "") ..
        ": " .. message) .. "\n")
    end
    if report_file then
      report_file:write(ctx.redact(campaign.encode(line)), "\n")
    end
  end
  if shown < failed then
    ctx.err("campaign: ... " .. (failed - shown) .. " more failures" ..
      (report_file and " (see " .. options.report .. ")" or "") .. "\n")
  end
  if report_file then report_file:close() end
  cleanup()

  local summary = {total = total, ok = total - failed, failed = failed,
    elapsed = math.floor((report.elapsed or 0) * 1000 + 0.5) / 1000, report = options.report}
  print_json(ctx, summary)
  return failed > 0 and EXIT_BULK or EXIT_OK
end

-- main --------------------------------------------------------------------------------------

local function allowed_options(name)
  local allowed = {}
  for _, option in ipairs(GLOBAL_OPTIONS) do allowed[option] = true end
  for _, option in ipairs(COMMANDS[name].options) do allowed[option] = true end
  return allowed
end

local function run(ctx, argv)
  local parsed, err = args.parse(argv, KNOWN, SHORT, function(word, count)
    return count == 1 and word == "emulator"
  end)
  if not parsed then usage_error(err) end
  ctx.options = parsed.options
  local positional = parsed.positional
  local first = positional[1]
  if parsed.options.version and first == nil then
    ctx.out("campaign (lua-campaign) " .. tostring(load_campaign()._VERSION) .. "\n")
    return EXIT_OK
  end
  if first == nil or first == "help" then
    local topic = positional[2] and (positional[3] and positional[2] .. " " .. positional[3] or positional[2])
    if topic and COMMANDS[topic] then ctx.out(command_help(topic)); return EXIT_OK end
    if first == nil and not parsed.options.help then
      ctx.err(main_help())
      return EXIT_USAGE
    end
    ctx.out(main_help())
    return EXIT_OK
  end
  local name, rest_from = first, 2
  if first == "profile" then
    if positional[2] == nil then
      if parsed.options.help then
        local lines = {"Usage: campaign profile get|update|find|list ...", ""}
        for _, sub in ipairs({"profile get", "profile update", "profile find", "profile list"}) do
          lines[#lines + 1] = "  " .. COMMANDS[sub].usage
        end
        ctx.out(table.concat(lines, "\n") .. "\n\n'campaign profile SUBCOMMAND --help' for details.\n")
        return EXIT_OK
      end
      usage_error("missing a profile subcommand: get, update, find or list")
    end
    name, rest_from = "profile " .. positional[2], 3
  end
  if not COMMANDS[name] then
    usage_error("unknown command '" .. name .. "' (see campaign --help)")
  end
  ctx.command = name
  if name == "emulator" then
    for _, word in ipairs(parsed.rest) do
      if word == "--help" or word == "-h" then ctx.out(command_help(name)); return EXIT_OK end
    end
  end
  if parsed.options.help then ctx.out(command_help(name)); return EXIT_OK end
  local allowed = allowed_options(name)
  for option in pairs(parsed.seen) do
    if not allowed[option] then
      usage_error("option '--" .. option:gsub("_", "-") .. "' does not apply to '" .. name .. "'", name)
    end
  end
  if parsed.options.pretty and parsed.options.compact then
    usage_error("--pretty and --compact exclude each other")
  end
  if parsed.options.pretty then
    ctx.pretty = true
  elseif parsed.options.compact then
    ctx.pretty = false
  else
    ctx.pretty = ctx.isatty(1)
  end
  ctx.positional = {}
  for i = rest_from, #positional do ctx.positional[#ctx.positional + 1] = positional[i] end
  ctx.rest = parsed.rest
  return handlers[name](ctx)
end

--- Runs the CLI. `argv` is the script's `arg` table; `env` (optional) overrides the process's
-- surroundings: root (the checkout, to find the emulator), getenv, stdout, stderr, stdin,
-- isatty(fd), clock(). Returns the exit code.
function cli.main(argv, env)
  env = env or {}
  local stdout, stderr = env.stdout or io.stdout, env.stderr or io.stderr
  local words = {}
  for i = 1, #(argv or {}) do words[i] = argv[i] end
  local ctx = {
    root = env.root,
    getenv = env.getenv or os.getenv,
    stdin = env.stdin or io.stdin,
    isatty = env.isatty or isatty,
    clock = env.clock or make_clock(),
  }
  -- Everything written goes through the redactor (secrets of the environment at first, every
  -- configured secret once the client is built); only --show writes through `reveal`.
  local getenv = ctx.getenv
  ctx.redact = output.redactor({getenv("CAMPAIGN_ACCESS_TOKEN"), getenv("CAMPAIGN_API_KEY"),
    getenv("CAMPAIGN_CLIENT_SECRET")})
  ctx.out = function(text) stdout:write(ctx.redact(text)) end
  ctx.reveal = function(text) stdout:write(text) end
  ctx.err = function(text) stderr:write(ctx.redact(text)); stderr:flush() end
  local ok, result = xpcall(run, function(e)
    if getmetatable(e) == Usage then return e end
    return setmetatable({message = tostring(e), traceback = debug.traceback("", 2), unexpected = true}, Usage)
  end, ctx, words)
  stdout:flush()
  if ok then return result end
  if result.exit then return result.exit end
  local message = ctx.redact(tostring(result.message)):gsub("^campaign: ", "")
  ctx.err("campaign: " .. message .. "\n")
  if result.unexpected and ctx.getenv("CAMPAIGN_DEBUG") then ctx.err(result.traceback .. "\n") end
  if result.command then
    ctx.err("Try 'campaign " .. result.command .. " --help'.\n")
  end
  return EXIT_USAGE
end

return cli
