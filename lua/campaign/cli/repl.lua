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

--- The text printed for one value: pretty JSON, or tostring for functions, userdata and
-- values JSON cannot encode (a table holding a function, a cycle).
function repl.show(campaign, value)
  local kind = type(value)
  if kind == "function" or kind == "userdata" or kind == "thread" then
    return output.escape(tostring(value))
  end
  local ok, text = pcall(campaign.encode, value, {pretty = true})
  if ok and type(text) == "string" then return output.json_safe(text) end
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
          for i = 2, packed.n do ctx.out(repl.show(campaign, packed[i]) .. "\n") end
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
