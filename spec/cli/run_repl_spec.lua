-- `campaign run FILE.lua [ARGS]` and `campaign repl`, in process through cli.main with a fake
-- stdin/stdout/stderr, against the shared emulator: the ready globals, the script's own
-- environment, its return value as exit code, errors redacted, the REPL's expressions,
-- statements, multi-line chunks, JSON printing, .exit/os.exit/EOF, and no secret echoed.
local emulator = require "emulator"
local cli = require "campaign.cli"

local emu = emulator.shared()

local function write_file(text)
  local path = os.tmpname()
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
  return path
end

-- The emulator's client credentials (a token from IMS for each run), or `extra` over them.
local function ims_values(extra)
  local values = {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
  for k, v in pairs(extra or {}) do
    if v == false then v = nil end
    values[k] = v
  end
  return values
end

-- A stdin that gives `text` line by line (read("*l")/("l")) or whole ("*a"/"a").
local function fake_stdin(text)
  local pos = 1
  return {
    read = function(_, fmt)
      if pos > #text then return nil end
      fmt = tostring(fmt):gsub("^%*", "")
      if fmt:sub(1, 1) == "a" then
        local rest = text:sub(pos)
        pos = #text + 1
        return rest
      end
      local nl = text:find("\n", pos, true)
      local line = text:sub(pos, (nl or #text + 1) - 1)
      pos = (nl or #text) + 1
      return line
    end,
  }
end

--- cli.main(argv) with the emulator's settings (opts.values) and opts.stdin;
-- returns code, stdout, stderr.
local function run(argv, opts)
  opts = opts or {}
  local values = opts.values or ims_values()
  local out, err = {}, {}
  local code = cli.main(argv, {
    root = ".",
    getenv = function(name) return values[name] end,
    isatty = function() return false end,
    stdin = fake_stdin(opts.stdin or ""),
    stdout = {write = function(_, s) out[#out + 1] = s end, flush = function() end},
    stderr = {write = function(_, s) err[#err + 1] = s end, flush = function() end},
  })
  return code, table.concat(out), table.concat(err)
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

describe("campaign run FILE.lua", function()
  before_each(function() emu:fresh() end)

  it("hands the script client, api, workflow, pages, campaign, json and arg; a number returned is the exit "
    .. "code",
    function()
      local script = write_file([[
local email = arg[1]
local found = assert(api.get_all_profiles(client, {filters = {"byEmail"}, email = email}))
print("found", #found.content, found.content[1].lastName)
local record, how = assert(workflow.upsert_profile(client, email, {phone = "3301020304"}))
print(how, record.phone)
local n = 0
for _ in pages.each(client, "profileAndServices/profile", {_lineCount = "5"}, {limit = 7}) do n = n + 1 end
print("pages", n)
print("json", json.encode(json.decode('{"a":[1,2]}')), campaign.null ~= nil)
print("args", select("#", ...), table.concat({...}, "|"), arg[0] ~= nil)
prototype_global = "set"
print("own env", _G.prototype_global, rawget(_G, "print") ~= nil)
return 3
]])
      local code, out, err = run({"run", script, "amy.dakota@mail.com", "--not-campaigns", "x"})
      os.remove(script)
      assert.equal(3, code, err)
      assert.equal("", err)
      assert.matches("found\t1\tDakota\n", out, 1, true)
      assert.matches("updated\t3301020304\n", out, 1, true)
      assert.matches("pages\t7\n", out, 1, true)
      assert.matches('json\t{"a":[1,2]}\ttrue\n', out, 1, true)
      assert.matches("args\t3\tamy.dakota@mail.com|--not-campaigns|x\ttrue\n", out, 1, true)
      assert.matches("own env\tset\ttrue\n", out, 1, true)
      -- The script's globals stayed in its own table.
      assert.is_nil(rawget(_G, "prototype_global"))
    end)

  it("an error goes to stderr redacted and terminal-safe, exit 1", function()
    local token = emu:new_token()
    local script = write_file('local x = 1\nerror("boom " .. token() .. " \\27[2J")\n')
    local code, out, err = run({"run", script}, {values = ims_values{CAMPAIGN_CLIENT_ID = false,
      CAMPAIGN_CLIENT_SECRET = false, CAMPAIGN_ACCESS_TOKEN = token}})
    os.remove(script)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^campaign: " .. plain(script) .. ":2: boom %*%*%* \\x1b%[2J\n$", err)
    assert.is_nil(err:find(token, 1, true))
    assert.is_nil(err:find("\27", 1, true))
  end)

  it("nil, err exits with the workflow commands' code; a table is printed as JSON; os.exit(n) is n",
    function()
    local script = write_file('return workflow.upsert_profile(client, "nobody@example.com", ' ..
      '{firstName = "X"}, {create = false})\n')
    local code, out, err = run({"run", script})
    assert.equal(8, code, err)
    assert.equal("", out)
    assert.matches("^campaign: not_found: no profile matches email 'nobody@example.com'", err)
    local f = assert(io.open(script, "wb"))
    f:write('return {answer = 42, list = {1, 2}}')
    f:close()
    code, out, err = run({"--compact", "run", script})
    assert.equal(0, code, err)
    assert.same({answer = 42, list = {1, 2}}, require("cjson").decode(out))
    f = assert(io.open(script, "wb"))
    f:write('print("before")\nos.exit(4)\nprint("after")')
    f:close()
    code, out = run({"run", script})
    os.remove(script)
    assert.equal(4, code)
    assert.equal("before\n", out)
  end)

  it("a syntax error or an unreadable file is a usage error (exit 2); a missing setting too", function()
    local script = write_file("x = = 1\n")
    local code, out, err = run({"run", script})
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches(":1: unexpected symbol near '='", err, 1, true)
    code, out, err = run({"run", "/nonexistent/script.lua"})
    assert.equal("", out)
    assert.equal(2, code)
    assert.matches("No such file", err, 1, true)
    code, out, err = run({"run", script}, {values = {}})
    assert.equal("", out)
    os.remove(script)
    assert.equal(2, code)
    assert.matches("missing settings", err, 1, true)
    code, out, err = run({"run"})
    assert.equal("", out)
    assert.equal(2, code)
    assert.matches("missing FILE", err, 1, true)
  end)

  it("reads the script from standard input with '-', a #! line skipped", function()
    local code, out, err = run({"run", "-", "a"}, {stdin = "#!/usr/bin/env campaign run\nprint(arg[1])\n" ..
      "error('line')\n"})
    assert.equal(1, code)
    assert.equal("a\n", out)
    assert.matches("^campaign: stdin:3: line\n$", err)
  end)
end)

describe("campaign repl", function()
  before_each(function() emu:fresh() end)

  it("evaluates an expression, a statement and a multi-line function, printing pretty JSON", function()
    local code, out, err = run({"repl"}, {stdin = table.concat({
      "1 + 1",
      "x = 41",
      "x + 1",
      "function double(a)",
      "  return a * 2",
      "end",
      "double(21)",
      "{name = 'Amy', tags = {'a', 'b'}}",
      "",
      "(api.get_profile(client, (api.get_all_profiles(client, " ..
        "{filters = {'byEmail'}, email = 'amy.dakota@mail.com'})).content[1].PKey)).lastName",
      "nil, 'two'",
      "print",
    }, "\n") .. "\n"})
    assert.equal(0, code, err)
    assert.equal("", err)
    local expected = '2\n42\n42\n{\n  "name": "Amy",\n  "tags": [\n    "a",\n    "b"\n  ]\n}\n' ..
      '"Dakota"\nnull\n"two"\n'
    assert.equal(expected, out:sub(1, #expected))
    assert.matches("^function: ", out:sub(#expected + 1))
  end)

  it("an error goes to stderr and the prompt goes on; a broken chunk is not continued", function()
    local code, out, err = run({"repl"}, {stdin = 'error("bad")\nfoo bar\n"still here"\n'})
    assert.equal(0, code)
    assert.equal('"still here"\n', out)
    assert.matches("^campaign: stdin:1: bad\ncampaign: stdin:1: syntax error near 'bar'\n$", err)
  end)

  it("ends at .exit, at end of input, and with os.exit(n)", function()
    local code, out = run({"repl"}, {stdin = "1\n.exit\n2\n"})
    assert.equal(0, code)
    assert.equal("1\n", out)
    code, out = run({"repl"}, {stdin = "1"})
    assert.equal(0, code)
    assert.equal("1\n", out)
    code, out = run({"repl"}, {stdin = "os.exit(5)\n3\n"})
    assert.equal(5, code)
    assert.equal("", out)
    local err
    code, out, err = run({"repl"}, {stdin = "local t = {\n"})
    assert.equal("", out)
    assert.equal(0, code)
    assert.matches("the input ended inside a chunk", err, 1, true)
  end)

  it("never echoes a secret: the client, the token provider's output, the settings typed back", function()
    local code, out, err = run({"repl"}, {stdin = table.concat({
      "client",
      "token()",
      "print(token())",
      "{t = (token())}",
      "'" .. emu.client_secret .. "'",
      "'" .. emu.api_key .. "'",
      "error((token()))",
    }, "\n") .. "\n"})
    assert.equal(0, code, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("^campaign%.Client%(acme%)$", lines[1])
    assert.equal('"***"', lines[2])
    assert.matches("^%d", lines[3])       -- expires_in, the provider's second value
    assert.matches("^%*%*%*\t%d", lines[4])
    assert.equal('  "t": "***"', lines[6])
    assert.equal('"***"', lines[8])
    assert.equal('"***"', lines[9])
    assert.equal("campaign: stdin:1: ***\n", err)
    for _, secret in ipairs({emu.client_secret, emu.api_key}) do
      assert.is_nil(out:find(secret, 1, true))
      assert.is_nil(err:find(secret, 1, true))
    end
  end)

  it("redacts the strings of a value before encoding it: a secret JSON would escape is hidden too", function()
    local campaign = require "campaign"
    local repl = require "campaign.cli.repl"
    local secret = 'sec"ret\\value-123'
    local redact = require("campaign.cli.output").redactor({secret})
    local value = {s = "x " .. secret, [secret] = 1, list = campaign.array{}, n = campaign.null}
    local text = repl.show(campaign, value, redact)
    assert.equal('{\n  "***": 1,\n  "list": [],\n  "n": null,\n  "s": "x ***"\n}', text)
    assert.equal("null", repl.show(campaign, campaign.null, redact))
  end)

  it("hides a static token too, wherever it is printed", function()
    local token = emu:new_token()
    local values = ims_values{CAMPAIGN_CLIENT_ID = false, CAMPAIGN_CLIENT_SECRET = false,
      CAMPAIGN_ACCESS_TOKEN = token}
    local code, out, err = run({"repl"}, {values = values, stdin = "token()\n{token = token(), n = 1}\n" ..
      "client:get('profileAndServices/profile/@x" .. token:sub(1, 20) .. "')\n"})
    assert.equal(0, code, err)
    assert.is_nil(out:find(token, 1, true))
    assert.is_nil(out:find(token:sub(1, 16), 1, true))
    assert.matches('^"%*%*%*"\n', out)
  end)
  -- On a real terminal (script(1) gives it one) with Debian's lua-readline (scripts/bootstrap
  -- installs it): the up arrow recalls the last line, and no history file is written (a line
  -- may hold a secret). Without readline the recalled line would be the bytes ESC [ A, a
  -- syntax error, and 41 would be printed once.
  it("reads lines with readline on a terminal: the session's history, no history file", function()
    local home = os.tmpname()
    os.remove(home)
    assert(os.execute("mkdir " .. home))
    local input = os.tmpname()
    local file = assert(io.open(input, "wb"))
    file:write("40 + 1\n\27[A\n.exit\n")
    file:close()
    local quote = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local env = {"env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. home, "TERM=dumb",
      "CAMPAIGN_ORG=" .. emu.org, "CAMPAIGN_API_KEY=" .. emu.api_key,
      "CAMPAIGN_BASE_URL=" .. emu.base_url, "CAMPAIGN_ACCESS_TOKEN=" .. emu.access_token}
    if emu.cafile then env[#env + 1] = "CAMPAIGN_CAFILE=" .. emu.cafile end
    for i, word in ipairs(env) do env[i] = quote(word) end
    local pipe = assert(io.popen(table.concat(env, " ") ..
      " script -qec 'lua5.4 bin/campaign repl' /dev/null <" .. quote(input) .. " 2>&1"))
    local out = pipe:read("a")
    pipe:close()
    os.remove(input)
    local listing = io.popen("ls -A " .. quote(home))
    local left = listing:read("a")
    listing:close()
    os.execute("rm -rf " .. quote(home))
    local answers = 0
    for _ in out:gmatch("%f[%d]41%f[%D]") do answers = answers + 1 end
    assert.equal(2, answers, out)
    assert.is_nil(out:find("unexpected symbol", 1, true), out)
    assert.equal("", left)
    assert.is_nil(out:find(emu.access_token, 1, true))
  end)
end)
