--- `campaign repl`: an interactive Lua prompt with a ready client (docs/cli.md).
-- The globals are campaign.cli.run's environment. Each input is tried as an expression first
-- ("return " .. input, as lua5.4's own prompt does), else as statements; an input whose error
-- is at <eof> is incomplete and the next line continues it. Every value is printed as pretty
-- JSON (tostring for what JSON cannot hold) through the CLI's redactor: no secret is echoed.
-- History: the `readline` module (Debian's lua-readline) when it loads and stdin is a
-- terminal, kept for the session only (no history file: a line may hold a secret).
local output = require "campaign.cli.output"
local run = require "campaign.cli.run"

local repl = {}

local PROMPT, MORE = "> ", ">> "

-- Whether a compile error means "the input goes on" (lua.c's rule: the message ends at <eof>;
-- Lua 5.1 quotes it).
local function incomplete(message)
  return type(message) == "string" and message:find("<eof>'?$") ~= nil
end

-- A line reader: readline(prompt) when the readline module is there and stdin is a terminal,
-- else ctx.stdin's lines (the prompt on stderr, only on a terminal: stdout stays JSON).
-- Whether the process's stdin is a terminal (lua-term when present, else `test -t 0`).
local function stdin_is_tty()
  local ok, term = pcall(require, "term")
  if ok and type(term) == "table" and term.isatty then return term.isatty(io.stdin) and true or false end
  return os.execute("test -t 0") == true
end

local function line_reader(ctx)
  local tty = ctx.stdin == io.stdin and stdin_is_tty()
  if tty then
    local ok, rl = pcall(require, "readline")
    if ok and type(rl) == "table" and type(rl.readline) == "function" then
      if type(rl.set_options) == "function" then
        pcall(rl.set_options, {histfile = "", auto_add = false})
      end
      return function(prompt)
        local line = rl.readline(prompt)
        if line and line:find("%S") and type(rl.add_history) == "function" then rl.add_history(line) end
        return line
      end, true
    end
  end
  return function(prompt)
    if tty then ctx.err(prompt) end
    return ctx.stdin:read("*l")
  end, tty
end

-- A copy of `value` whose strings (keys too) went through `redact`: a secret holding a quote or
-- a backslash is escaped by the JSON encoder, and the redactor would not find it in the text.
-- nil for a cycle (then tostring is printed).
local function redacted_copy(campaign, value, redact, depth)
  if type(value) == "string" then return redact(value) end
  if type(value) ~= "table" then return value end
  if depth > 100 then return nil end
  local copy = {}
  for k, v in pairs(value) do
    local ck = redacted_copy(campaign, k, redact, depth + 1)
    local cv = redacted_copy(campaign, v, redact, depth + 1)
    if ck == nil or (cv == nil and v ~= nil) then return nil end
    copy[ck] = cv
  end
  local is_array, array = campaign.is_array, campaign.array
  if next(copy) == nil and type(is_array) == "function" and type(array) == "function" then
    local ok, yes = pcall(is_array, value)
    if ok and yes then copy = array(copy) end
  end
  return copy
end

--- The text printed for one value: pretty JSON of it with every string redacted, or tostring
-- for functions, userdata and values JSON cannot encode (a table holding a function, a cycle).
-- The caller writes it through the redactor as well.
function repl.show(campaign, value, redact)
  local kind = type(value)
  if value ~= campaign.null and (kind == "function" or kind == "userdata" or kind == "thread") then
    return output.escape(tostring(value))
  end
  local copy = redacted_copy(campaign, value, redact or tostring, 0)
  if copy ~= nil or value == nil then
    local ok, text = pcall(campaign.encode, copy, {pretty = true})
    if ok and type(text) == "string" then return output.json_safe(text) end
  end
  return output.escape(tostring(value))
end

local BANNER = "campaign repl: client, api, workflow, pages, campaign, json and token() are ready; " ..
  "values print as JSON; .exit or Ctrl-D ends.\n"

--- The `repl` command's handler -> exit code (0 at end of input or .exit; os.exit(n): n).
function repl.command(ctx, kit)
  if #ctx.positional > 0 then
    kit.usage_error("unexpected argument '" .. ctx.positional[1] .. "'", ctx.command)
  end
  local campaign = kit.load_campaign()
  local env = run.environment(ctx, kit)
  local read, interactive = line_reader(ctx)
  if interactive then ctx.err(BANNER) end
  local buffer
  while true do
    local line = read(buffer and MORE or PROMPT)
    if line == nil then
      -- Ctrl-C at the prompt (signals trapped: the read is cut short) clears the input.
      local signal = type(campaign.interrupted) == "function" and campaign.interrupted()
      if signal and type(campaign.clear_interrupt) == "function" then
        campaign.clear_interrupt()
        buffer = nil
        ctx.err("\n")
      else
        if buffer then ctx.err(run.error_text(ctx, "the input ended inside a chunk")) end
        if interactive then ctx.err("\n") end
        return 0
      end
    elseif buffer == nil and line:match("^%s*%.exit%s*$") then
      return 0
    elseif buffer ~= nil or line:find("%S") then
      local text = buffer and buffer .. "\n" .. line or line
      local fn, expr_err = run.load_in("return " .. text, "=stdin", env)
      local err
      if not fn then fn, err = run.load_in(text, "=stdin", env) end
      if fn then
        buffer = nil
        local packed = run.pack(xpcall(fn, run.handler))
        if packed[1] then
          for i = 2, packed.n do ctx.out(repl.show(campaign, packed[i], ctx.redact) .. "\n") end
        else
          local e = packed[2]
          if getmetatable(e) == run.Exit then return e.code end
          ctx.err(run.error_text(ctx, e.error))
        end
        -- A client call cut short by Ctrl-C returned kind "interrupted": the prompt goes on.
        if type(campaign.interrupted) == "function" and campaign.interrupted() and
          type(campaign.clear_interrupt) == "function" then
          campaign.clear_interrupt()
        end
      elseif incomplete(err) or incomplete(expr_err) then
        buffer = text
      else
        buffer = nil
        ctx.err(run.error_text(ctx, err))
      end
    end
  end
end

return repl
