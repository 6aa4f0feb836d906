-- campaign.cli.run.load_in on every Lua the project claims (5.1 and LuaJIT through setfenv,
-- 5.2+ through load's env): a chunk's globals live in the table given, never in _G.
local run = require "campaign.cli.run"

describe("campaign.cli.run.load_in", function()
  it("runs a chunk with its own globals, reading the standard ones through a metatable", function()
    local env = setmetatable({given = 20}, {__index = _G})
    local fn = assert(run.load_in("chunk_global = given + 1\nreturn type(print), chunk_global, ...", "=t",
      env))
    local kind, value, extra = fn("x")
    assert.equal("function", kind)
    assert.equal(21, value)
    assert.equal("x", extra)
    assert.equal(21, env.chunk_global)
    assert.is_nil(rawget(_G, "chunk_global"))
  end)

  it("returns nil and the message for a syntax error, <eof> at its end for an incomplete chunk", function()
    local fn, err = run.load_in("x = = 1", "=t", {})
    assert.is_nil(fn)
    assert.matches("^t:1:", err)
    fn, err = run.load_in("function f()", "=t", {})
    assert.is_nil(fn)
    assert.matches("<eof>'?$", err)
  end)

  it("maps os.exit's argument to an exit code and counts trailing nils", function()
    assert.equal(0, run.exit_code(nil))
    assert.equal(0, run.exit_code(true))
    assert.equal(1, run.exit_code(false))
    assert.equal(7, run.exit_code(7))
    assert.equal(1, run.exit_code(3.5))
    assert.equal(3, run.pack(nil, "err", nil).n)
  end)
end)
