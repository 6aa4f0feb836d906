--- `campaign run FILE.lua [ARGS]`: a prototype script run with a ready client (docs/cli.md).
-- The script's chunk runs in an environment table of its own (never the real _G) holding
-- client, api, workflow, pages, campaign, json, token, print, os (whose exit ends the script)
-- and arg; the rest of the standard globals are read through to _G. campaign.cli.repl uses the
-- same environment. `load_in` is the one place that knows Lua 5.1's setfenv from 5.2's env.
local output = require "campaign.cli.output"
local workflows = require "campaign.cli.workflows"

local run = {}

--- load_in(text, chunkname, env) -> function | nil, message: `text` compiled with `env` as its
-- globals. Lua 5.2+ takes the env in load; Lua 5.1 and LuaJIT have setfenv instead.
local setfenv, loadstring = rawget(_G, "setfenv"), rawget(_G, "loadstring")
function run.load_in(text, chunkname, env)
  if setfenv and loadstring then
    local fn, err = loadstring(text, chunkname)
    if fn then setfenv(fn, env) end
    return fn, err
  end
  return load(text, chunkname, "t", env)
end

--- {n = select("#", ...), ...}: every value, trailing nils counted (a `nil, err` return).
function run.pack(...) return {n = select("#", ...), ...} end

-- os.exit in a script or at the prompt raises this mark: the CLI unwinds, flushes its output
-- and returns the code from cli.main (an in-process caller is not killed).
local Exit = {}
Exit.__index = Exit
run.Exit = Exit

--- The exit code os.exit(code) means: true/nil 0, false 1, an integer as it is.
function run.exit_code(code)
  if code == nil or code == true then return 0 end
  if code == false then return 1 end
  if type(code) == "number" and code == math.floor(code) and code >= 0 and code <= 255 then return code end
  return 1
end

--- run.environment(ctx, kit) -> env: the globals of a script or of the REPL.
-- The client is built at once from the CLI's flags, environment and --emulator (a missing
-- setting is a usage error, exit 2, before the script runs).
function run.environment(ctx, kit)
  local campaign = kit.load_campaign()
  local client = kit.get_client(ctx)
  local env = setmetatable({}, {__index = _G})
  env._G = env
  env.client = client
  env.campaign = campaign
  env.api = require "campaign.api"
  env.workflow = require "campaign.workflow"
  env.pages = require "campaign.pages"
  env.json = {
    encode = function(value, opts) return campaign.encode(value, opts) end,
    decode = function(text) return campaign.decode(text) end,
  }
  -- The access token the commands use (fetched from IMS when the settings say so); what is
  -- printed of it goes through the redactor like everything else.
  env.token = function(force_refresh)
    if ctx.provider then return ctx.provider(force_refresh) end
    return ctx.settings.token.value
  end
  -- print writes through the CLI's redactor: a secret printed by mistake shows as ***.
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    ctx.out(table.concat(parts, "\t") .. "\n")
  end
  env.os = setmetatable({exit = function(code)
    error(setmetatable({code = run.exit_code(code)}, Exit), 0)
  end}, {__index = os})
  return env
end

--- The text of a raised value for stderr: redacted and terminal-safe, one line per line.
function run.error_text(ctx, e)
  local text = tostring(e)
  if type(e) == "table" and getmetatable(e) == nil and e.message then text = tostring(e.message) end
  text = ctx.redact(text):gsub("^campaign: ", "")
  return "campaign: " .. output.escape(text, "\n") .. "\n"
end

-- xpcall's handler: an exit mark and an interrupt go through; other errors keep the message
-- (a traceback for CAMPAIGN_DEBUG=1).
local function handler(e)
  if getmetatable(e) == Exit then return e end
  return {error = e, traceback = debug.traceback("", 2)}
end
run.handler = handler

local function is_interrupt(e)
  if type(e) == "table" then return e.kind == "interrupted" end
  return type(e) == "string" and e:find("interrupted!$") ~= nil
end
run.is_interrupt = is_interrupt

-- A returned value -> exit code, printing what needs printing:
--   nothing, nil or true: 0; false: 1; an integer 0-255: that code;
--   nil, err (the library's failure): err on stderr, the exit code of a workflow command;
--   a table or a string: printed as JSON on stdout, 0.
local function result_code(ctx, kit, n, results)
  local first = results[1]
  if n == 0 or (first == nil and results[2] == nil) or first == true then return 0 end
  if first == false then return 1 end
  if first == nil then
    local err = results[2]
    local code = kit.api_failure(ctx, err)
    if code ~= 1 then return code end
    return workflows.exit_code(err)
  end
  if type(first) == "number" then
    if first == math.floor(first) and first >= 0 and first <= 255 then return first end
    ctx.err("campaign: the script returned " .. tostring(first) .. ", not an exit code (0-255)\n")
    return 1
  end
  kit.print_json(ctx, first)
  return 0
end

--- The `run` command's handler: ctx.positional[1] is FILE, ctx.rest the script's ARGS.
function run.command(ctx, kit)
  local path = ctx.positional[1]
  if path == nil then
    kit.usage_error("missing FILE (a Lua script; '-' reads standard input)", ctx.command)
  end
  local file, open_err
  if path == "-" then file = ctx.stdin else file, open_err = io.open(path, "rb") end
  if not file then kit.usage_error(tostring(open_err), ctx.command) end
  local text = file:read("*a") or ""
  if file ~= ctx.stdin then file:close() end
  -- A #! first line is skipped as lua does, its newline kept so that line numbers hold.
  text = text:gsub("^#[^\n]*", "")
  local chunkname = path == "-" and "=stdin" or "@" .. path
  local env = run.environment(ctx, kit)
  local fn, err = run.load_in(text, chunkname, env)
  if not fn then
    ctx.err(run.error_text(ctx, err))
    return 2
  end
  local script_args = {[0] = path}
  for i, word in ipairs(ctx.rest or {}) do script_args[i] = word end
  env.arg = script_args
  local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
  local packed = run.pack(xpcall(function() return fn(unpack(script_args, 1, #script_args)) end, handler))
  local ok = packed[1]
  if not ok then
    local e = packed[2]
    if getmetatable(e) == Exit then return e.code end
    if is_interrupt(e.error) then return kit.api_failure(ctx, {kind = "interrupted"}) end
    ctx.err(run.error_text(ctx, e.error))
    if ctx.getenv("CAMPAIGN_DEBUG") then ctx.err(ctx.redact(e.traceback) .. "\n") end
    return 1
  end
  local results = {}
  for i = 2, packed.n do results[i - 1] = packed[i] end
  return result_code(ctx, kit, packed.n - 1, results)
end

return run
