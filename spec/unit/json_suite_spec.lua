-- campaign.decode over every file of JSONTestSuite's test_parsing (shared/fixtures/JSONTestSuite):
-- y_ accepted, n_ rejected with a json error, i_ either way without crashing or hanging.
-- The fixtures: CAMPAIGN_SHARED_DIR when set, else the copy in spec/fixtures/JSONTestSuite (MIT,
-- taken unchanged from shared/fixtures so the spec runs in any clone), else ../shared.
local campaign = require "campaign"
local cjson = require "cjson"

local function is_dir(path)
  local p = io.popen('ls -d "' .. path .. '" 2>/dev/null')
  local found = p:read("*l")
  p:close()
  return found ~= nil
end

local function find_suite()
  local tried = {}
  local roots = {}
  if os.getenv("CAMPAIGN_SHARED_DIR") then roots[#roots + 1] = os.getenv("CAMPAIGN_SHARED_DIR") end
  -- relative to the repo (the spec's own location): <repo>/spec, then <repo>/../shared
  local here = debug.getinfo(1, "S").source:match("^@(.*)/spec/unit/[^/]*$") or "."
  roots[#roots + 1] = here .. "/spec"
  roots[#roots + 1] = here .. "/../shared"
  roots[#roots + 1] = "../shared"
  roots[#roots + 1] = "shared"
  for _, root in ipairs(roots) do
    local dir = root .. "/fixtures/JSONTestSuite/test_parsing"
    tried[#tried + 1] = dir
    if is_dir(dir) then return dir end
  end
  return nil, tried
end

local function list(dir)
  local names = {}
  local p = io.popen('ls -1 "' .. dir .. '"')
  for name in p:lines() do
    if name:match("%.json$") then names[#names + 1] = name end
  end
  p:close()
  return names
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local same = require "same" -- spec/support/same.lua: deep equality, numbers by value

describe("JSONTestSuite", function()
  local dir, tried = find_suite()

  it("finds the JSONTestSuite fixtures", function()
    assert(dir, "JSONTestSuite not found; looked in: " .. table.concat(tried or {}, ", ") ..
      " (set CAMPAIGN_SHARED_DIR to the shared/ folder)")
    local names = list(dir)
    local counts = { y = 0, n = 0, i = 0 }
    for _, name in ipairs(names) do
      local kind = name:sub(1, 1)
      counts[kind] = (counts[kind] or 0) + 1
    end
    -- the fixture set as committed: 95 y_, 188 n_, 35 i_
    assert.is_true(counts.y >= 95 and counts.n >= 188 and counts.i >= 35,
      string.format("only %d y_, %d n_, %d i_ files in %s", counts.y, counts.n, counts.i, dir))
  end)

  if not dir then return end

  for _, name in ipairs(list(dir)) do
    local kind = name:sub(1, 1)
    local path = dir .. "/" .. name

    if kind == "y" then
      it("accepts " .. name .. ", and the value survives encode/decode", function()
        local text = read(path)
        local value, err = campaign.decode(text)
        assert.is_nil(err, err and err.message)
        assert.is_not_nil(value)
        local again = campaign.decode(campaign.encode(value))
        assert.is_true(same(value, again), campaign.encode(value))
        -- where lua-cjson reads the file too, both read the same values
        local ok, theirs = pcall(cjson.decode, text)
        if ok then assert.is_true(same(value, theirs), name) end
      end)

    elseif kind == "n" then
      it("rejects " .. name .. " with a json error and a byte offset", function()
        local text = read(path)
        local value, err = campaign.decode(text)
        assert.is_nil(value)
        assert.equal("json", err.kind)
        assert.is_number(err.offset)
        assert.is_true(err.offset >= 0 and err.offset <= #text, tostring(err.offset))
      end)

    elseif kind == "i" then
      it("survives " .. name .. " (accepted or rejected, never a crash)", function()
        local text = read(path)
        local ok, value, err = pcall(campaign.decode, text)
        assert.is_true(ok, tostring(value))
        if value == nil then
          assert.equal("json", err.kind)
          assert.is_number(err.offset)
        else
          -- what is accepted can be written again (it is valid UTF-8 and finite)
          assert.is_string(campaign.encode(value))
        end
      end)
    end
  end
end)
