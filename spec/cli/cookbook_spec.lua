-- docs/cookbook.md cannot rot: every ```lua block of it runs against the emulator, as a reader
-- runs it. The first block builds the client from the CAMPAIGN_* variables the page's setup
-- exports (each key=value line of `campaign emulator start --show` as CAMPAIGN_<KEY>); each
-- other block runs after it, as one script, in a fresh lua5.4 process, on a fresh emulator.
-- An example that raises (its asserts included) fails here with its output.
local emulator = require "emulator"

local LUA = os.getenv("CAMPAIGN_TEST_LUA") or "lua5.4"

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- The ```lua blocks of a markdown text: {code =, line = <line of the fence>}.
local function lua_blocks(text)
  local blocks, current, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = current
        current = nil
      else
        current.code[#current.code + 1] = line
      end
    elseif line:match("^```lua%s*$") then
      current = { code = {}, line = n }
    end
  end
  assert(current == nil, "docs/cookbook.md: a ```lua block is not closed")
  for _, b in ipairs(blocks) do b.code = table.concat(b.code, "\n") .. "\n" end
  return blocks
end

local root = (os.getenv("PWD") or "."):gsub("/$", "")

-- The environment the page's setup gives: CAMPAIGN_<KEY> for each key the emulator prints.
local function environment(emu, drop)
  local vars = {
    "LUA_PATH=" .. emulator.shell_quote(root .. "/lua/?.lua;;"),
    "LUA_CPATH=" .. emulator.shell_quote(root .. "/build/5.4/?.so;;"),
  }
  for _, key in ipairs { "base_url", "ims_url", "org", "api_key", "client_id", "client_secret",
      "access_token", "cafile", "prefix" } do
    if emu[key] and not (drop and drop[key]) then
      vars[#vars + 1] = "CAMPAIGN_" .. key:upper() .. "=" .. emulator.shell_quote(emu[key])
    end
  end
  return table.concat(vars, " ")
end

local function run_script(emu, code, drop)
  local path = os.tmpname()
  local file = assert(io.open(path, "wb"))
  file:write(code)
  file:close()
  local out, ok = emulator.run("env -u CAMPAIGN_ACCESS_TOKEN -u CAMPAIGN_BASE_URL " .. environment(emu, drop)
    .. " " .. LUA .. " " .. emulator.shell_quote(path) .. " 2>&1")
  os.remove(path)
  return ok, out
end

describe("docs/cookbook.md", function()
  local blocks = lua_blocks(read_all("docs/cookbook.md"))
  local emu

  setup(function() emu = emulator.shared() end)
  before_each(function() emu:fresh() end)
  teardown(function() emu:fresh() end)

  it("has the client block and an example of each workflow", function()
    assert.is_true(#blocks >= 9, #blocks .. " lua blocks")
    assert.matches("campaign%.new", blocks[1].code)
    local all = read_all("docs/cookbook.md")
    for _, name in ipairs { "update_and_verify", "bulk_update", "upsert_profile", "subscribe_and_verify",
        "unsubscribe_and_verify", "send_and_track", "gdpr_request_and_fetch", "run_workflow_and_wait",
        "signal_and_wait", "pages%.each", "pages%.all", "pages%.count" } do
      local used = false
      for i = 2, #blocks do used = used or blocks[i].code:find(name) ~= nil end
      assert.is_true(used, name .. " has no example")
      assert.matches(name, all)
    end
  end)

  for i = 2, #blocks do
    local block = blocks[i]
    it("runs the example at docs/cookbook.md:" .. block.line, function()
      local ok, out = run_script(emu, blocks[1].code .. block.code)
      assert(ok, "docs/cookbook.md:" .. block.line .. " failed:\n" .. out)
    end)
  end

  it("builds the client from IMS client credentials when there is no ready token", function()
    local ok, out = run_script(emu, blocks[1].code .. [[
local body = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
print(#body.content)
]], { access_token = true })
    assert(ok, out)
    assert.matches("^1\n", out)
  end)

  it("fails when an example fails (a broken example is caught)", function()
    local ok, out = run_script(emu, blocks[1].code .. [[
assert(workflow.upsert_profile(client, "nobody@example.com", {firstName = "X"}, {create = false}))
]])
    assert.is_false(ok)
    assert.matches("no profile", out)
  end)
end)
