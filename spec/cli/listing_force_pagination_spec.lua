-- The CLI's whole-listing commands (`profile list --all`, `profile find`) send
-- `_forcePagination=true`: above XtkBigTableThreshold ACS omits `next` without it, and `--all`
-- would stop after the first page without a word. The shared emulator plays a big table by
-- lowering its `big_table_threshold`; its own next.href keeps the flag, so one spec also serves
-- a first page whose next.href is shaped like ACS's documented one (`_lineCount` and
-- `_lineStart` only) and checks that the later pages still carry the flag.
local emulator = require "emulator"
local cjson = require "cjson"

local emu = emulator.shared()

local sh = require("cli_process").quote

local function slurp(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  os.remove(path)
  return text
end

-- bin/campaign with `argv` in a clean environment (the emulator's IMS credentials).
local function campaign(argv)
  local env = {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
  local words = {"env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp")}
  for key, value in pairs(env) do words[#words + 1] = key .. "=" .. value end
  words[#words + 1] = "lua5.4"
  words[#words + 1] = "bin/campaign"
  for _, word in ipairs(argv) do words[#words + 1] = word end
  for i, word in ipairs(words) do words[i] = sh(word) end
  local out_path, err_path = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(table.concat(words, " ") .. " >" .. out_path .. " 2>" .. err_path
    .. " </dev/null")
  return {code = code, out = slurp(out_path), err = slurp(err_path)}
end

local function listed(result)
  assert(result.code == 0, ("exit %s\nstdout: %s\nstderr: %s"):format(
    tostring(result.code), tostring(result.out):sub(1, 300), tostring(result.err)))
  local ok, value = pcall(cjson.decode, result.out)
  assert(ok, "stdout is not JSON: " .. tostring(result.out))
  return value
end

-- The GETs of profile listings the emulator received, oldest first (their URIs).
local function listing_uris(prefix)
  local uris = {}
  for _, request in ipairs(emu:requests()) do
    if request.method == "GET" and request.uri:find(prefix, 1, true) then uris[#uris + 1] = request.uri end
  end
  return uris
end

local function total()
  local status, body = emu:call("GET", "profileAndServices/profile//_count")
  assert(status == 200 and type(body) == "table" and type(body.count) == "number", "no count")
  return body.count
end

describe("CLI listings on a big table (_forcePagination)", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()   -- also restores big_table_threshold
    emu:config { big_table_threshold = 5 }
  end)
  after_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  it("profile list --all sends _forcePagination=true and follows every page", function()
    local n = total()
    assert.is_true(n > 50, "the seed should span several pages")
    emu:clear_requests()
    local all = listed(campaign({"profile", "list", "--all"}))
    assert.equal(n, #all)
    local seen = {}
    for _, profile in ipairs(all) do
      assert.is_nil(seen[profile.PKey])
      seen[profile.PKey] = true
    end
    local uris = listing_uris("/profileAndServices/profile")
    assert.is_true(#uris >= 3, "expected several pages, got " .. #uris)
    for _, uri in ipairs(uris) do
      assert.matches("[?&]_forcePagination=true", uri)
      local _, flags = uri:gsub("_forcePagination=", "")
      assert.equal(1, flags, uri)
    end
  end)

  it("keeps the flag when next.href drops it, as ACS's documented hrefs do", function()
    local n = total()
    -- The real first page, its next.href cut down to _lineCount and _lineStart.
    local status, first = emu:call("GET", "profileAndServices/profile?_forcePagination=true")
    assert.equal(200, status)
    local base, qs = first.next.href:match("^([^?]*)%?(.*)$")
    local href = base .. "?_lineCount=" .. qs:match("_lineCount=([^&]*)")
      .. "&_lineStart=" .. qs:match("_lineStart=([^&]*)")
    assert.is_nil(href:find("_forcePagination", 1, true))
    assert.matches("_lineStart=", href)
    first.next.href = href
    emu:faults { { method = "GET", path = "/profileAndServices/profile$", status = 200, body = first,
                   times = 1 } }
    emu:clear_requests()
    local all = listed(campaign({"profile", "list", "--all"}))
    assert.equal(n, #all)
    local uris = listing_uris("/profileAndServices/profile")
    assert.is_true(#uris >= 3, "expected several pages, got " .. #uris)
    local path = href:match("^https?://[^/]+(.*)$")
    assert.equal(path .. "&_forcePagination=true", uris[2])
    for _, uri in ipairs(uris) do assert.matches("[?&]_forcePagination=true", uri) end
  end)

  it("profile find sends it too (it prints every match)", function()
    emu:clear_requests()
    local found = listed(campaign({"profile", "find", "--email", "amy.dakota@mail.com"}))
    assert.equal(1, #found)
    local uris = listing_uris("/profileAndServices/profile/byEmail")
    assert.equal(1, #uris)
    assert.matches("[?&]_forcePagination=true", uris[1])
  end)

  it("a single page (no option, --limit N) does not send it", function()
    emu:clear_requests()
    assert.equal(25, #listed(campaign({"profile", "list"})))
    assert.equal(7, #listed(campaign({"profile", "list", "--limit", "7"})))
    local uris = listing_uris("/profileAndServices/profile")
    assert.equal(2, #uris)
    for _, uri in ipairs(uris) do assert.is_nil(uri:find("_forcePagination", 1, true)) end
  end)

  it("--param _forcePagination=... given by the user is sent as given", function()
    emu:clear_requests()
    assert.equal(25, #listed(campaign({"profile", "list", "--all", "--param", "_forcePagination=false"})))
    local uris = listing_uris("/profileAndServices/profile")
    assert.equal(1, #uris)   -- a big table without the flag: no next, as on ACS
    assert.matches("[?&]_forcePagination=false", uris[1])
    assert.is_nil(uris[1]:find("_forcePagination=true", 1, true))
  end)
end)
