--- The `campaign` command-line tool: `cli.main(argv, env) -> exit code`.
-- bin/campaign is a thin wrapper around this module; docs/cli.md is the user's manual.
-- Exit codes: 0 ok, 1 API or network error, 2 usage error (also a missing setting),
-- 3 verification mismatch, 4 bulk run with failures, 5 bulk run whose only problems are
-- items of unknown outcome (sent, no answer), 6 a workflow ended in a failure status, 7 a
-- wait reached its deadline, 8 nothing or several matched (campaign/cli/workflows.lua), 128 +
-- signal when interrupted (130 SIGINT, 143 SIGTERM).
local args = require "campaign.cli.args"
local config = require "campaign.cli.config"
local input = require "campaign.cli.input"
local output = require "campaign.cli.output"
local cli_workflows = require "campaign.cli.workflows"

local cli = {}

local EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_VERIFY, EXIT_BULK, EXIT_UNKNOWN = 0, 1, 2, 3, 4, 5
cli.EXIT = {ok = EXIT_OK, api = EXIT_API, usage = EXIT_USAGE, verify = EXIT_VERIFY, bulk = EXIT_BULK,
  unknown = EXIT_UNKNOWN, sigint = 130, sigterm = 143}

-- Every option of every command with its kind; `commands[...].options` says where each is valid.
local KNOWN = {
  help = "flag", verbose = "flag", raw = "flag", pretty = "flag", compact = "flag",
  emulator = "flag", emulator_prefix = "value",
  org = "value", api_key = "value", access_token = "value", client_id = "value",
  client_secret = "value", scopes = "value", ims_url = "value", base_url = "value",
  cafile = "value", timeout = "value", retries = "value", rate = "value", budget = "value",
  query = "list", json = "value", verify = "flag", email = "value", filter = "list",
  param = "list", order = "value", desc = "flag", limit = "value", all = "flag",
  concurrency = "value", concurrency_max = "value", report = "value", format = "value",
  progress_interval = "value",
  no_progress = "flag", show = "flag", version = "flag", allow_http = "flag",
  journal = "value", resume = "flag",
}
for name, kind in pairs(cli_workflows.OPTIONS) do KNOWN[name] = kind end
local SHORT = {h = "help", v = "verbose"}

local GLOBAL_OPTIONS = {"help", "verbose", "pretty", "compact", "emulator", "emulator_prefix", "org",
  "api_key", "access_token", "client_id", "client_secret", "scopes", "ims_url", "base_url", "cafile",
  "timeout", "retries", "allow_http", "rate", "budget"}

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
  --allow-http          plain http:// to a host    CAMPAIGN_ALLOW_HTTP=1
                          that is not loopback
  --emulator            use the running emulator's values (--emulator-prefix DIR or
                        CAMPAIGN_EMULATOR_PREFIX picks which one)
  --timeout S, --retries N
  --rate N              at most N requests/second  CAMPAIGN_RATE
                          (retries included; burst 1)
  --budget N            at most N requests in all  CAMPAIGN_BUDGET
                          (then kind "budget", unsent)
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
    usage = "campaign bulk-update FILE [--concurrency N|auto [--concurrency-max N]] [--verify]\n" ..
      "                            [--report FILE]" ..
      " [--format csv|ndjson] [--journal FILE [--resume]]",
    summary = "PATCH many profiles from NDJSON or CSV (FILE '-' reads stdin); exit 4 if any failed, " ..
      "5 if some are unknown",
    options = {"concurrency", "concurrency_max", "verify", "report", "format", "progress_interval",
      "no_progress", "journal", "resume"},
    example = "campaign bulk-update changes.csv --concurrency 16 --verify --report report.ndjson",
  },
  token = {
    usage = "campaign token [--show]",
    summary = "get an access token and show its expiry (the token itself only with --show)",
    options = {"show"},
    example = "campaign token",
  },
  run = {
    usage = "campaign [options] run FILE.lua [ARGS...]",
    summary = "run a Lua script with client, api, workflow, pages ready (its return value: the exit code)",
    options = {},
    example = "campaign --emulator run prototype.lua amy.dakota@mail.com",
  },
  repl = {
    usage = "campaign repl",
    summary = "a Lua prompt with the globals of run; values print as JSON, secrets as ***",
    options = {},
    example = "campaign --emulator repl",
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
-- The workflow commands (campaign.cli.workflows), then run and repl, before token and emulator.
for name, command in pairs(cli_workflows.COMMANDS) do COMMANDS[name] = command end
for i, name in ipairs(cli_workflows.ORDER) do table.insert(COMMAND_ORDER, 9 + i, name) end
table.insert(COMMAND_ORDER, 10 + #cli_workflows.ORDER, "run")
table.insert(COMMAND_ORDER, 11 + #cli_workflows.ORDER, "repl")
-- The command groups: "profile get" makes `profile` one, with its subcommands in help order.
local GROUPS = {}
for _, name in ipairs(COMMAND_ORDER) do
  local group, sub = name:match("^(%S+) (%S+)$")
  if group then
    GROUPS[group] = GROUPS[group] or {}
    table.insert(GROUPS[group], sub)
  end
end

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
  concurrency = "  --concurrency N|auto  requests in flight (default 8); auto: a limit that adapts to\n" ..
    "                        the server (grows while latency holds, backs off on latency, 429/503)",
  concurrency_max = "  --concurrency-max N   the most --concurrency auto may reach (default 64, at most\n" ..
    "                        256)",
  report = "  --report FILE         NDJSON, one line per input item in input order, with its outcome",
  format = "  --format csv|ndjson   input format (default: by extension, else by content)",
  progress_interval = "  --progress-interval S seconds between progress lines off a terminal (default 2)",
  no_progress = "  --no-progress         no progress output",
  journal = "  --journal FILE        append each item's outcome as it settles (flushed: a crash or kill\n" ..
    "                        loses at most the items in flight); refused if FILE has records",
  resume = "  --resume              finish the run --journal recorded: skip what it applied, send the\n" ..
    "                        rest (the input must be the same, else nothing is sent)",
  show = "  --show                print the secret values too",
}
for name, text in pairs(cli_workflows.HELP) do EXTRA_HELP[name] = text end

local FIELDS_HELP = [[
FIELDS: key=value sends a string (a phone number stays a string); key:=json sends any JSON
value (age:=42, tags:=[], x:=null, location:={"city":"Paris"}).
]]

local function main_help()
  local lines = {"Usage: campaign COMMAND [options]", "", "Commands:"}
  for _, name in ipairs(COMMAND_ORDER) do
    lines[#lines + 1] = string.format("  %-19s %s", name, COMMANDS[name].summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'campaign COMMAND --help' shows a command's options and an example."
  lines[#lines + 1] = "Exit codes: 0 ok, 1 API or network error, 2 usage error, 3 verification mismatch,"
  lines[#lines + 1] = "4 bulk run with failures, 5 bulk run with items of unknown outcome (sent, no answer),"
  lines[#lines + 1] = "6 a workflow ended in a failure status, 7 a wait reached its --deadline, 8 nothing or"
  lines[#lines + 1] = "several matched (nothing changed), 130/143 interrupted by SIGINT/SIGTERM."
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
Progress goes to stderr: a bar on a terminal, plain lines otherwise. Rows of one PKey are
applied in file order (the last one wins). Each report line has "outcome": applied, failed,
unknown (sent, no answer: it may have been applied) or not_sent (stopped by Ctrl-C/SIGTERM).
Exit 4 when an item failed, else 5 when some are unknown, 130/143 when interrupted.
A rerun on the report's failed lines finishes the job:
  grep '"ok":false' report.ndjson | campaign bulk-update -
The report must not be the input file (also through a link): that is refused.
A long job: --journal FILE records every outcome as it settles; after a kill, a crash or Ctrl-C
  campaign bulk-update FILE --journal FILE --resume
sends only what was not applied (docs/bulk.md).
]]
  elseif name == "emulator" then
    lines[#lines + 1] = "The arguments go to emulator/campaign-emulator (start: --port, --tls, --http2, " ..
      "--prefix,\n--profiles, --token-ttl; a distant, loaded tenant: --latency MS, --jitter MS,\n" ..
      "--seed N, --latency-methods M,M, --capacity N, --limit-inflight N, --limit-rate R,\n" ..
      "--retry-after S (docs/emulator.md \"Load\"); stop/status: --prefix).\n"
  elseif name == "run" or name == "repl" then
    lines[#lines + 1] = [[
Globals: client (built from the options and environment below, --emulator too), api
(campaign.api), workflow (campaign.workflow), pages (campaign.pages), campaign, json
({encode, decode}), token() (the access token, printed as ***), print (redacted), arg (run:
arg[0] = FILE, arg[1..] = ARGS, also the chunk's ...). The script has an environment table
of its own: its globals do not leak into _G. os.exit(n) ends it with exit code n.
run: campaign's options go before FILE; every word after FILE is the script's. Its return
value: nothing, nil or true 0; false 1; a number the exit code; nil, err: err on stderr and
the workflow commands' exit code; a table or string: printed as JSON, 0. An error: exit 1.
repl: an expression prints its values as pretty JSON; statements run; an incomplete chunk
continues on the next line (>>); .exit or end of input ends it (exit 0).
]]
  elseif command.usage:find("FIELDS", 1, true) then
    lines[#lines + 1] = FIELDS_HELP
  end
  if cli_workflows.COMMANDS[name] then lines[#lines + 1] = cli_workflows.HELP_TEXT end
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
      local value = file and tonumber(file:read("*n"))
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
  local text = pipe:read("*a")   -- "*a": Lua 5.1/5.2 need the star
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
  if ctx.pretty then return output.json_safe(campaign.encode(value, {pretty = true})) end
  return output.json_safe(campaign.encode(value))
end

-- Signals: 128 + the signal number, the shell's convention (130 SIGINT, 143 SIGTERM).
local SIGNAL_NAMES = {[2] = "SIGINT", [15] = "SIGTERM"}
local function interrupt_code(signal)
  if type(signal) == "number" and signal > 0 and signal < 128 then return 128 + signal end
  return 130
end

-- The signal campaign.trap_signals caught, or nil (also where the C module has no trap).
local function current_signal()
  local campaign = load_campaign()
  if type(campaign.interrupted) == "function" then return campaign.interrupted() end
  return nil
end

local function signal_name(signal)
  return SIGNAL_NAMES[signal] or (type(signal) == "number" and "signal " .. signal) or "SIGINT"
end

-- The interpreter's own SIGINT hook raises "interrupted!" (lua.c) wherever Lua code runs.
local function is_interrupt(e)
  if type(e) == "table" then return e.kind == "interrupted" end
  return type(e) == "string" and e:find("interrupted!$") ~= nil
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
      ctx.err(output.escape(ctx.redact("campaign: " .. describe_event(ev))) .. "\n")
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
      allow_http = settings.allow_http,
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
    allow_http = settings.allow_http,
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
  if settings.rate then
    local rate = tonumber(settings.rate)
    if not rate or not (rate > 0 and rate <= 1e6) then
      usage_error("option '--rate' (" .. settings.sources.rate .. ") needs a positive number of "
        .. "requests per second")
    end
    client_options.rate = rate
  end
  if settings.budget then
    local budget = tonumber(settings.budget)
    if not budget or budget < 1 or budget ~= math.floor(budget) or budget > 2 ^ 53 then
      usage_error("option '--budget' (" .. settings.sources.budget .. ") needs a positive integer "
        .. "(requests)")
    end
    client_options.budget = math.floor(budget)
  end
  client_options.on_event = on_event
  local ok, client = pcall(campaign.new, client_options)
  if not ok then usage_error(tostring(client)) end
  ctx.client = client
  -- From here on the command sends. With campaign.trap_signals, SIGINT and SIGTERM only set a
  -- flag: the client's calls return kind "interrupted" and the command stops in order (a bulk
  -- run writes its whole report). Without it the interpreter's own SIGINT hook stays.
  if type(campaign.trap_signals) == "function" then campaign.trap_signals() end
  return client
end

-- Prints a runtime failure (one line) and returns exit code 1.
-- An interrupted call (after SIGINT/SIGTERM) exits 128 + the signal instead. The text comes
-- from the server: control characters are escaped (no terminal escape gets through).
local function api_failure(ctx, err)
  if type(err) == "table" and err.kind == "interrupted" then
    local signal = current_signal()
    ctx.err("campaign: interrupted by " .. signal_name(signal) .. "\n")
    return interrupt_code(signal)
  end
  local text = tostring(err)
  if not text:match("^campaign: ") then text = "campaign: " .. text end
  text = text:gsub("[\r\n].*", "")
  ctx.err(output.escape(ctx.redact(text)) .. "\n")
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
      text = file:read("*a")
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
    -- As received, but a terminal gets no control sequence of the server's.
    if ctx.isatty(1) then text = output.escape(text, "\n\r\t") end
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
      ctx.err(output.escape(ctx.redact(text)) .. "\n")
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
      text = output.json_safe(campaign.encode(record, {pretty = true})):gsub("\n", "\n  ")
      ctx.out((count == 0 and "[\n  " or ",\n  ") .. text)
    else
      ctx.out((count == 0 and "[" or ",") .. output.json_safe(campaign.encode(record)))
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
-- and once more to send it (the report is written as the items settle).
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

-- The identity of the file at `path` (symlinks followed) as "device:inode"; nil when nothing is
-- there; false when this system gives no way to ask. Lua has no stat(): LuaFileSystem when it
-- is installed (busted brings it; it is not a dependency), else stat(1) in its GNU (-c) or BSD
-- (-f) spelling, the path shell-quoted.
local function file_identity(path)
  local ok, lfs = pcall(require, "lfs")
  if ok and type(lfs) == "table" and type(lfs.attributes) == "function" then
    local attr = lfs.attributes(path)
    if type(attr) == "table" and attr.dev and attr.ino then return attr.dev .. ":" .. attr.ino end
    return nil
  end
  local probe = io.open(path, "rb")
  if not probe then return nil end
  probe:close()
  for _, flags in ipairs({"-L -c %d:%i", "-L -f %d:%i"}) do
    local pipe = io.popen("stat " .. flags .. " -- " .. shell_quote(path) .. " 2>/dev/null")
    if pipe then
      local text = pipe:read("*a") or ""
      pipe:close()
      local id = text:match("^(%d+:%d+)%s*$")
      if id then return id end
    end
  end
  return false
end

local function same_content(a, b)
  local fa, fb = io.open(a, "rb"), io.open(b, "rb")
  local same = fa ~= nil and fb ~= nil
  while same do
    local x, y = fa:read(65536), fb:read(65536)
    if x ~= y then same = false elseif x == nil then break end
  end
  if fa then fa:close() end
  if fb then fb:close() end
  return same
end

--- Whether writing `report` would overwrite `input`: the same device and inode (another name,
-- a hard link, a symlink). Without any way to read inodes, an existing report with the input's
-- exact content counts as the same file (refusing to overwrite a copy is harmless).
local function same_file(input_path, report)
  local report_id = file_identity(report)
  if report_id == nil then return false end        -- nothing there yet
  local input_id = file_identity(input_path)
  if input_id == nil then return false end         -- the input is missing: said later
  if input_id and report_id then return input_id == report_id end
  return same_content(input_path, report)
end
cli._same_file = same_file

-- A cheap fingerprint of the items a pass reads (count, line numbers, PKeys): the counting
-- pass and the sending pass must see the same input.
local function fingerprint()
  local state = {count = 0, hash = 0}
  return function(item)
    state.count = state.count + 1
    local pkey = item.pkey or ""
    local n = #pkey
    local v = (item.line or 0) * 7 + n * 131 + (pkey:byte(1) or 0) + (pkey:byte(n) or 0) * 17 +
      (pkey:byte(math.floor(n / 2) + 1) or 0) * 257 + (item.error and 1 or 2)
    state.hash = (state.hash * 31 + v) % 2147483647
  end, state
end

-- A copy of a report line whose strings are made valid UTF-8 (keys too; JSON array marks kept).
local function utf8_copy(value)
  if type(value) == "string" then return output.to_utf8(value) end
  if type(value) ~= "table" then return value end
  local copy = {}
  for k, v in pairs(value) do
    copy[type(k) == "string" and output.to_utf8(k) or k] = utf8_copy(v)
  end
  return setmetatable(copy, getmetatable(value))
end

-- One report line as JSON, whatever it holds: a string that is not valid UTF-8 (a server's
-- message, a value read back) is written with \xNN escapes instead of failing the encoder.
local function encode_line(campaign, line)
  local ok, text = pcall(campaign.encode, line)
  if ok then return output.json_safe(text) end
  local clean = utf8_copy(line)
  ok, text = pcall(campaign.encode, clean)
  if ok then return output.json_safe(text) end
  clean.mismatches = nil
  clean.note = "the mismatches could not be written as JSON"
  ok, text = pcall(campaign.encode, clean)
  if ok then return output.json_safe(text) end
  return campaign.encode({line = clean.line, ok = clean.ok, outcome = clean.outcome,
    error = "this item's outcome could not be written as JSON"})
end

local FINISH_RECIPE = "grep '\"ok\":false' %s | campaign bulk-update -"
local BULK_RESOURCE = "profileAndServices/profile"

local function bulk_update(ctx, path, name, file)
  local options = ctx.options
  local campaign = load_campaign()
  local concurrency, concurrency_max, err
  if options.concurrency == "auto" then
    concurrency = "auto"
  else
    concurrency, err = args.positive_integer(options.concurrency or "8", "concurrency")
    if not concurrency then usage_error(err .. " or 'auto'", ctx.command) end
  end
  if options.concurrency_max then
    if concurrency ~= "auto" then
      usage_error("option '--concurrency-max' needs --concurrency auto", ctx.command)
    end
    concurrency_max, err = args.positive_integer(options.concurrency_max, "concurrency-max")
    if not concurrency_max or concurrency_max > 256 then
      usage_error(err or "option '--concurrency-max' must be at most 256", ctx.command)
    end
  end
  local interval
  interval, err = args.non_negative_number(options.progress_interval or "2", "progress-interval")
  if not interval then usage_error(err, ctx.command) end

  -- Pass 1: count the items and find whole-file problems before anything is sent.
  local items, problem = input.open(path, options.format, campaign.decode, file)
  if not items then
    problem = tostring(problem)
    -- io.open's message already starts with the file name.
    if problem:sub(1, #path + 2) ~= path .. ": " then problem = name .. ": " .. problem end
    usage_error(problem, ctx.command)
  end
  -- The journal: read and checked against the whole input in this pass, before anything is
  -- sent (a resume with another input, or a journal without --resume, is refused here).
  local journal_state, journal
  if options.journal then
    journal = require "campaign.journal"
    local jerr
    journal_state, jerr = journal.load(options.journal)
    if not journal_state then usage_error("--journal " .. tostring(jerr.message), ctx.command) end
    jerr = journal.check_start(journal_state, {resume = options.resume, resource = BULK_RESOURCE})
    if jerr then usage_error("--journal " .. tostring(jerr.message), ctx.command) end
    if not journal_state.header and options.resume then
      ctx.err("campaign: --resume: the journal " .. options.journal .. " holds nothing yet: starting it\n")
    end
  end
  local check = journal_state and journal_state.header ~= nil
  local counted, counted_state = fingerprint()
  local valid = 0
  for item in items do
    if item.fatal then usage_error(name .. ": " .. item.error, ctx.command) end
    counted(item)
    if check and not item.error then
      valid = valid + 1
      local jerr = journal.check_item(journal_state, valid, journal.sum(item.pkey, item.changes), item.pkey,
        "line " .. item.line .. " of " .. name)
      if jerr then usage_error("--resume: " .. tostring(jerr.message), ctx.command) end
    end
  end
  if check then
    local jerr = journal.check_count(journal_state, valid, name)
    if jerr then usage_error("--resume: " .. tostring(jerr.message), ctx.command) end
  end
  local total = counted_state.count
  local counted_size = file:seek("end")

  local client = get_client(ctx)

  local report_file
  if options.report then
    local open_err
    report_file, open_err = io.open(options.report, "wb")
    if not report_file then usage_error("--report: " .. tostring(open_err), ctx.command) end
  end

  local update, finish
  if not options.no_progress and total > 0 then
    update, finish = output.progress{
      write = ctx.err, tty = ctx.isatty(2), clock = ctx.clock, interval = interval, total = total,
    }
  end

  -- Pass 2: send, and write each item's report line as soon as it and every item before it
  -- have settled (input order; what waits: the lines settled while an earlier item was in
  -- flight). Nothing about an item comes from pass 1: a report line says what was read, sent
  -- and answered.
  local pending, first_pending, next_seq = {}, 1, 0   -- seq -> {item =, outcome =, err =}
  local seq_of = {}                                  -- bulk_update's index -> seq
  local counts = {applied = 0, failed = 0, unknown = 0, not_sent = 0, skipped = 0}
  -- the progress line's limit; "auto" starts at the limiter's documented start value (4)
  local limit_now = concurrency ~= "auto" and concurrency or math.min(4, concurrency_max or 64)
  local settled = 0
  local shown, SHOW_AT_MOST, not_ok = {}, 10, 0

  local function write_entry(entry)
    local item, outcome, item_err = entry.item, entry.outcome, entry.err
    local line = {line = item.line, PKey = item.pkey, ok = outcome == "applied", outcome = outcome,
      skipped = entry.skipped}
    local message
    if item.error then
      message = item.error:gsub("^line %d+: ", "")
      line.error, line.kind = message, "input"
    elseif outcome ~= "applied" then
      message = ctx.redact(tostring(item_err)):gsub("[\r\n].*", "")
      line.error, line.changes = output.to_utf8(message), item.changes
      if type(item_err) == "table" then
        line.kind, line.status, line.mismatches = item_err.kind, item_err.status, item_err.mismatches
      end
    end
    if message then
      not_ok = not_ok + 1
      if #shown < SHOW_AT_MOST then
        shown[#shown + 1] = "campaign: line " .. item.line ..
          (item.pkey and " (" .. item.pkey .. ")" or "") ..
          (outcome == "unknown" and " (outcome unknown)" or "") .. ": " .. message
      end
    end
    if report_file then report_file:write(ctx.redact(encode_line(campaign, line)), "\n") end
  end

  local function settle(seq, outcome, item_err, skipped)
    local entry = pending[seq]
    entry.outcome, entry.err, entry.skipped = outcome, item_err, skipped
    settled = settled + 1
    counts[outcome] = counts[outcome] + 1
    if skipped then counts.skipped = counts.skipped + 1 end
    if outcome == "not_sent" then counts.failed = counts.failed + 1 end
    if update then update(settled, counts.failed, counts.unknown, limit_now) end
    while pending[first_pending] and pending[first_pending].outcome do
      write_entry(pending[first_pending])
      pending[first_pending] = nil
      first_pending = first_pending + 1
    end
  end

  local sending = assert(input.open(path, options.format, campaign.decode, file))
  local seen, seen_state = fingerprint()
  local given = 0
  local function register(item)
    seen(item)
    next_seq = next_seq + 1
    pending[next_seq] = {item = item}
    return next_seq
  end
  local function next_valid()
    while true do
      local item = sending()
      if item == nil then return nil end
      local seq = register(item)
      if item.error then
        settle(seq, "failed")
      else
        given = given + 1
        seq_of[given] = seq
        return {pkey = item.pkey, changes = item.changes, line = item.line}
      end
    end
  end

  local ran, report, journal_err = pcall(require("campaign.workflow").bulk_update, client, next_valid, {
    concurrency = concurrency, concurrency_max = concurrency_max,
    verify = options.verify and true or false,
    on_progress = function(_, _, _, _, info) limit_now = info.limit end,
    journal = journal_state, resume = options.resume and true or nil,
    on_item = function(i, outcome, item_err, skipped)
      local seq = seq_of[i]
      seq_of[i] = nil
      settle(seq, outcome, item_err, skipped)
    end,
  })
  local stopped              -- the error bulk_update raised with its report, if it did
  if ran and report == nil then
    -- A journal problem: before anything was sent (no report), or mid-run (a failed write).
    if type(journal_err) ~= "table" or type(journal_err.report) ~= "table" then
      usage_error("--journal " .. tostring(journal_err and journal_err.message or journal_err), ctx.command)
    end
    report = journal_err.report
    ctx.err("campaign: --journal " .. output.escape(ctx.redact(tostring(journal_err.message))) .. "\n")
  end
  if not ran then
    if not (campaign.is_error(report) and type(report.report) == "table") then
      -- A raise before anything was sent: misuse that the input checks did not catch.
      error(report, 0)
    end
    stopped, report = report, report.report
  end
  local interrupted = report.interrupted or (stopped and stopped.kind == "interrupted")
  -- Taken but never settled (the run raised with items in flight): unknown.
  for _, seq in pairs(seq_of) do
    settle(seq, "unknown", campaign.error{kind = "interrupted",
      message = "the run stopped while this item was in progress"})
  end
  -- What bulk_update never took: not sent (the run stopped), or a bad row.
  for item in sending do
    local seq = register(item)
    if item.error then
      settle(seq, "failed")
    else
      settle(seq, "not_sent", campaign.error{kind = "interrupted", sent = false,
        message = "not sent: the run stopped before this item"})
    end
  end
  if finish then finish(settled, counts.failed, counts.unknown, limit_now) end
  if report_file then report_file:close() end

  local changed = seen_state.count ~= total or seen_state.hash ~= counted_state.hash or
    file:seek("end") ~= counted_size

  for _, line in ipairs(shown) do ctx.err(output.escape(ctx.redact(line)) .. "\n") end
  if not_ok > #shown then
    ctx.err("campaign: ... " .. (not_ok - #shown) .. " more not applied" ..
      (report_file and " (see " .. options.report .. ")" or "") .. "\n")
  end
  local finish_hint = options.report and "finish with:  " .. string.format(FINISH_RECIPE,
    shell_quote(options.report)) or "rerun with --report FILE to list them"
  if options.journal then
    finish_hint = "resume with:  " .. (name == "-" and "(the same input on stdin) | " or "") ..
      "campaign bulk-update " .. shell_quote(name) .. " --journal " .. shell_quote(options.journal) ..
      " --resume"
  end
  local signal
  if interrupted then
    signal = type(report.interrupted) == "number" and report.interrupted or current_signal()
    ctx.err(string.format("campaign: interrupted by %s: %d applied, %d unknown (sent, no answer), " ..
      "%d not sent, %d failed; %s\n", signal_name(signal), counts.applied, counts.unknown, counts.not_sent,
      counts.failed - counts.not_sent, finish_hint))
  elseif counts.unknown > 0 then
    ctx.err(string.format("campaign: %d item(s) of unknown outcome (sent, no answer: they may have been " ..
      "applied); %s\n", counts.unknown, finish_hint))
  end
  if changed then
    ctx.err("campaign: " .. name .. " changed while it was read: " .. total .. " item(s) counted, " ..
      seen_state.count .. " read to send; the report lists what was sent\n")
  end
  if stopped and not interrupted then
    ctx.err("campaign: " .. output.escape(ctx.redact(tostring(stopped))) .. "\n")
  end

  local summary = {total = seen_state.count, ok = counts.applied, failed = counts.failed,
    unknown = counts.unknown, elapsed = math.floor((report.elapsed or 0) * 1000 + 0.5) / 1000,
    report = options.report, journal = options.journal}
  if options.resume then summary.skipped = counts.skipped end
  if counts.not_sent > 0 or interrupted then summary.not_sent = counts.not_sent end
  if interrupted then summary.interrupted = signal_name(signal) end
  if changed then summary.input_changed, summary.counted = true, total end
  print_json(ctx, summary)
  if interrupted then return interrupt_code(signal) end
  if stopped then return EXIT_USAGE end
  if changed or counts.failed > 0 then return EXIT_BULK end
  if counts.unknown > 0 then return EXIT_UNKNOWN end
  return EXIT_OK
end

handlers["bulk-update"] = function(ctx)
  need_positional(ctx, 1, "FILE")
  no_extra_positional(ctx, 1)
  local name, report = ctx.positional[1], ctx.options.report
  -- Before anything is opened for writing or sent: the report must not be the input.
  if report and name ~= "-" and same_file(name, report) then
    usage_error("--report " .. report .. " is the input file " .. name .. " (the same file, maybe " ..
      "through a link): writing the report would destroy the input; give another --report FILE",
      ctx.command)
  end
  local journal = ctx.options.journal
  if ctx.options.resume and not journal then
    usage_error("--resume needs --journal FILE (the journal of the run to finish)", ctx.command)
  end
  if journal then
    -- The journal is appended to and read back: neither the input nor the report (rewritten
    -- from the start by every run) may be that file.
    if name ~= "-" and same_file(name, journal) then
      usage_error("--journal " .. journal .. " is the input file " .. name .. ": give another --journal FILE",
        ctx.command)
    end
    if report and (report == journal or same_file(journal, report)) then
      usage_error("--journal and --report name the same file (" .. journal .. "): the report is rewritten " ..
        "by every run, the journal only grows; give two files", ctx.command)
    end
  end
  local path, temporary = name, nil
  if name == "-" then
    temporary = spool_stdin(ctx.stdin)
    path = temporary
  end
  -- One handle for every pass: a file replaced under the same name meanwhile is not mixed in.
  local file, open_err = io.open(path, "rb")
  if not file then
    if temporary then os.remove(temporary) end
    usage_error(tostring(open_err), ctx.command)
  end
  local ok, code = pcall(bulk_update, ctx, path, name, file)
  file:close()
  if temporary then os.remove(temporary) end
  if not ok then error(code, 0) end
  return code
end

-- The workflow commands, run and repl: their code is in campaign/cli/{workflows,run,repl}.lua,
-- with these helpers of the CLI.
do
  local kit = {
    usage_error = usage_error, get_client = get_client, print_json = print_json, api_failure = api_failure,
    request_body = request_body, need_positional = need_positional, no_extra_positional = no_extra_positional,
    load_campaign = load_campaign,
  }
  for name, handler in pairs(cli_workflows.handlers(kit)) do handlers[name] = handler end
  handlers.run = function(ctx) return require("campaign.cli.run").command(ctx, kit) end
  handlers.repl = function(ctx) return require("campaign.cli.repl").command(ctx, kit) end
end

-- main --------------------------------------------------------------------------------------

local function allowed_options(name)
  local allowed = {}
  for _, option in ipairs(GLOBAL_OPTIONS) do allowed[option] = true end
  for _, option in ipairs(COMMANDS[name].options) do allowed[option] = true end
  return allowed
end

local function run(ctx, argv)
  -- `emulator`: its words go to the launcher; `run FILE`: the words after FILE are the script's.
  local first_word
  local parsed, err = args.parse(argv, KNOWN, SHORT, function(word, count)
    if count == 1 then first_word = word end
    return (count == 1 and word == "emulator") or (count == 2 and first_word == "run")
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
  local subs = GROUPS[first]
  if subs then
    if positional[2] == nil then
      if parsed.options.help then
        local lines = {"Usage: campaign " .. first .. " " .. table.concat(subs, "|") .. " ...", ""}
        for _, sub in ipairs(subs) do
          lines[#lines + 1] = "  " .. COMMANDS[first .. " " .. sub].usage
        end
        ctx.out(table.concat(lines, "\n") .. "\n\n'campaign " .. first ..
          " SUBCOMMAND --help' for details.\n")
        return EXIT_OK
      end
      usage_error("missing " .. (first == "event" and "an " or "a ") .. first .. " subcommand: " ..
        table.concat(subs, ", ", 1, #subs - 1) .. (#subs > 1 and " or " or "") .. subs[#subs])
    end
    name, rest_from = first .. " " .. positional[2], 3
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
---@param argv string[] the script's `arg` table
---@param env? campaign.cli.Env
---@return integer exit code
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
  -- run's arguments through a closure: Lua 5.1's xpcall passes none.
  local ok, result = xpcall(function() return run(ctx, words) end, function(e)
    if getmetatable(e) == Usage then return e end
    if is_interrupt(e) then return setmetatable({interrupted = true}, Usage) end
    return setmetatable({message = tostring(e), traceback = debug.traceback("", 2), unexpected = true}, Usage)
  end)
  stdout:flush()
  if ok then return result end
  if result.exit then return result.exit end
  if result.interrupted then
    local signal = current_signal()
    ctx.err("campaign: interrupted by " .. signal_name(signal) .. "\n")
    return interrupt_code(signal)
  end
  local message = ctx.redact(tostring(result.message)):gsub("^campaign: ", "")
  ctx.err("campaign: " .. output.escape(message, "\n") .. "\n")
  if result.unexpected and ctx.getenv("CAMPAIGN_DEBUG") then ctx.err(result.traceback .. "\n") end
  if result.command then
    ctx.err("Try 'campaign " .. result.command .. " --help'.\n")
  end
  return EXIT_USAGE
end

return cli
