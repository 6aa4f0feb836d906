-- campaign.pages against the emulator: real next.href links, cursors, faults.
local campaign = require "campaign"
local emulator = require "emulator"
local api = require "campaign.api"
local pages = require "campaign.pages"

local function listing_gets(emu)
  local uris = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.uri:find("/profileAndServices/profile", 1, true) then
      uris[#uris + 1] = r.uri
    end
  end
  return uris
end

describe("pages against the emulator", function()
  local emu, client

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retries = 0 })
  end)

  after_each(function() emu:clear_faults() end)

  it("reads every profile over 3+ pages, each exactly once, following next.href", function()
    local reference = {}
    local total = 0
    for p in pages.each(client, "profileAndServices/profile", { _lineCount = "1000" }) do
      total = total + 1
      reference[p.PKey] = true
    end
    assert.is_true(total >= 10, "the emulator has " .. total .. " profiles")
    emu:clear_requests()

    local size = math.ceil(total / 4)   -- 4 or 5 pages
    local it = pages.each(client, "profileAndServices/profile", { _lineCount = tostring(size) })
    local seen, n = {}, 0
    for p in it do
      assert.is_nil(seen[p.PKey], "record seen twice")
      seen[p.PKey] = true
      n = n + 1
    end
    assert.is_nil(it.err)
    assert.are.equal(total, n)
    for pkey in pairs(reference) do assert.is_true(seen[pkey], pkey) end
    assert.is_true(it.pages >= 4)
    local uris = listing_gets(emu)
    assert.are.equal(it.pages, #uris)
    for k = 2, #uris do assert.matches("_lineStart=", uris[k]) end
  end)

  it("counts a listing through its count.href", function()
    local all = assert(pages.all(client, "profileAndServices/profile", { _lineCount = "500" }))
    local n, err = pages.count(client, "profileAndServices/profile")
    assert.are.equal(#all, n, tostring(err))
    local one = assert(pages.count(client, api.listing("profileAndServices/profile",
      { filters = { "byEmail" }, email = "amy.dakota@mail.com" })))
    assert.are.equal(1, one)
  end)

  it("collects with pages.all and stops at a limit without reading further pages", function()
    local list = assert(pages.all(client, "profileAndServices/profile", { _lineCount = "3" }, { limit = 7 }))
    assert.are.equal(7, #list)
    assert.are.equal(3, #listing_gets(emu))
  end)

  it("returns nil, err when a later page fails, after the records of the pages before", function()
    local it = pages.each(client, "profileAndServices/profile", { _lineCount = "3" })
    for _ = 1, 3 do assert.is_table(it()) end   -- page 1, fetched lazily
    emu:faults { { method = "GET", path = "/profileAndServices/profile", status = 503, times = 1 } }
    local record, err = it()
    assert.is_nil(record)
    assert.are.equal(503, err.status)
    assert.is_nil((it()))
    assert.are.equal(2, #listing_gets(emu))
  end)

  it("the first page failing: the iterator returns nil, err and stops", function()
    emu:faults { { method = "GET", path = "/profileAndServices/profile", status = 500, times = 1 } }
    local it = pages.each(client, "profileAndServices/profile")
    local record, err = it()
    assert.is_nil(record)
    assert.are.equal(500, err.status)
    assert.is_nil((it()))
    assert.are.equal(err, it.err)
    assert.are.equal(1, #listing_gets(emu))
  end)

  it("yields the values of an attribute projection", function()
    local emails = assert(pages.all(client, "profileAndServices/profile/email", { _lineCount = "4" },
      { limit = 9 }))
    assert.are.equal(9, #emails)
    for _, e in ipairs(emails) do
      assert.is_string(e)
      assert.matches("@", e)
    end
  end)

  it("follows filtered listings built with api.listing", function()
    local found = assert(pages.all(client, api.listing("profileAndServices/profile",
      { filters = { "byEmail" }, email = "amy.dakota@mail.com" })))
    assert.are.equal(1, #found)
    assert.are.equal("amy.dakota@mail.com", found[1].email)
  end)

  it("gets next on a big table only with force_pagination", function()
    emu:config { big_table_threshold = 5 }
    local first = assert(api.get_all_profiles(client, { line_count = 2 }))
    local forced = assert(api.get_all_profiles(client, { line_count = 2, force_pagination = true }))
    emu:config { big_table_threshold = 100000 }
    assert.is_nil(first.next)
    assert.is_table(forced.next)
    assert.is_string(forced.next.href)
  end)
end)
