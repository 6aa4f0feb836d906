-- The Lua code claims Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT; scripts/run-tests runs this file under
-- each of them. What differs between them and has bitten this tree: syntax (`//`, goto, `\u{}`
-- escapes, `<close>`), io read formats without the '*' (5.1/5.2 refuse "a"/"n"), xpcall's extra
-- arguments (5.1 drops them), `\x` escapes (5.1 reads "\xe9" as "xe9").
local cli = require "campaign.cli"

local function lines_of(cmd)
  local pipe = assert(io.popen(cmd))
  local out = {}
  for line in pipe:lines() do out[#out + 1] = line end
  pipe:close()
  return out
end

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- Every Lua file the project ships: the module's Lua layers, the CLI, the examples.
local shipped = lines_of("find lua examples -name '*.lua' | sort")
shipped[#shipped + 1] = "bin/campaign"

local function sink()
  local parts = {}
  return {write = function(_, s) parts[#parts + 1] = s end, flush = function() end,
          text = function() return table.concat(parts) end}
end

local function run_cli(argv)
  local out, err = sink(), sink()
  local code = cli.main(argv, {stdout = out, stderr = err, getenv = function() return nil end,
    isatty = function() return false end})
  return code, out.text(), err.text()
end

describe("the Lua code on " .. (jit and jit.version or _VERSION), function()
  it("ships Lua files (the file list is not empty)", function()
    assert.is_true(#shipped > 10)
  end)

  it("compiles every shipped Lua file", function()
    for _, path in ipairs(shipped) do
      local chunk, err = loadfile(path)
      assert(chunk, err)
    end
  end)

  it("reads files with the '*' formats every Lua accepts", function()
    for _, path in ipairs(shipped) do
      local text = read_all(path)
      for call in text:gmatch("[:.]read%(%s*[\"'][^\"']*[\"']") do
        assert(call:find("%*"), path .. ": " .. call .. " (Lua 5.1 and 5.2 need \"*a\", \"*n\", \"*l\")")
      end
      for call in text:gmatch("[:.]lines%([^)]*[\"'][anlL][\"']") do
        error(path .. ": " .. call .. " (Lua 5.1 and 5.2 need the '*')")
      end
    end
  end)

  it("writes bytes with decimal escapes, not \\x or \\u{} (Lua 5.1 reads those as letters)", function()
    for _, path in ipairs(shipped) do
      local text = read_all(path)
      local at = text:find("\\x%x%x") or text:find("\\u{", 1, true)
      assert(not at, path .. ": " .. (at and text:sub(at, at + 5) or ""))
    end
  end)

  it("runs the CLI in process: --version", function()
    local code, out, err = run_cli({ "--version" })
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("^campaign %(lua%-campaign%) %d+%.%d+%.%d+\n$", out)
  end)

  it("runs the CLI in process: --json @FILE is read (a refused connection is exit 1)", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local file = assert(io.open(path, "wb"))
    file:write('{"phone":"3301020304"}')
    file:close()
    local code, out, err = run_cli({ "--base-url", "http://127.0.0.1:9", "--org", "acme",
      "--api-key", "key", "--access-token", "token", "--retries", "0", "--timeout", "5",
      "patch", "profileAndServices/profile/@x", "--json", "@" .. path })
    assert.equal("", out)
    assert.not_matches("bad argument", err)
    assert.matches("network", err)
    assert.equal(1, code)
  end)
end)
