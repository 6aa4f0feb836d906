-- campaign.pages keeps `_forcePagination` on every page, against a fake ACS that behaves like the
-- documented one: its next.href carries only `_lineCount` and `_lineStart`, and on a big table
-- it omits `next` from any page requested without `_forcePagination=true`.
-- The fake client records the URL each call would send, built by a real client's `url` (so the
-- way the client appends opts.query after an href's own query is checked too); no server.
local campaign = require "campaign"
local pages = require "campaign.pages"
local api = require "campaign.api"

local ORIGIN = "https://mc.example.test"
local ROOT = ORIGIN .. "/acme/campaign/"

-- A listing of `n` records, one per page unless `_lineCount` says otherwise.
-- opts.big: omit `next` unless the request's URL says _forcePagination=true (ACS above
-- XtkBigTableThreshold). opts.keep_flag: next.href keeps `_forcePagination` (as the emulator's).
local function fake_acs(n, opts)
  opts = opts or {}
  local real = campaign.new { org = "acme", api_key = "key", token = "tok", base_url = ORIGIN }
  local client = { urls = {}, calls = {} }
  function client.get(_, path, call_opts)
    local url = real:url(path, call_opts)
    client.urls[#client.urls + 1] = url
    client.calls[#client.calls + 1] = { path = path, opts = call_opts }
    local size = tonumber(url:match("[?&]_lineCount=(%d+)")) or 25
    local start = tonumber(url:match("[?&]_lineStart=@p(%d+)")) or 1
    local forced = url:find("[?&]_forcePagination=true") ~= nil
    local content = {}
    for i = start, math.min(n, start + size - 1) do content[#content + 1] = { PKey = "@p" .. i, n = i } end
    local body = { content = content, serverSidePagination = not (opts.big and forced),
                   count = { href = ROOT .. "profileAndServices/profile//_count" } }
    if start + size <= n and (forced or not opts.big) then
      body.next = { href = ROOT .. "profileAndServices/profile/?_lineCount=" .. size
        .. "&_lineStart=@p" .. (start + size)
        .. (opts.keep_flag and forced and "&_forcePagination=true" or "") }
    end
    return body, { status = 200, headers = {}, attempts = 1 }
  end
  function client.close() real:close() end
  return client
end

local function numbers(list)
  local out = {}
  for i, record in ipairs(list) do out[i] = record.n end
  return out
end

describe("campaign.pages and _forcePagination", function()
  it("adds _forcePagination to a next.href that drops it (api.listing, force_pagination)", function()
    local client = fake_acs(3, { big = true })
    local path, query = api.listing("profileAndServices/profile", { line_count = 1, force_pagination = true })
    local seen = {}
    local it = pages.each(client, path, query)
    for record in it do seen[#seen + 1] = record.n end
    client:close()
    assert.are.same({ 1, 2, 3 }, seen)
    assert.is_nil(it.err)
    assert.are.equal(3, it.pages)
    assert.are.same({
      ROOT .. "profileAndServices/profile?_forcePagination=true&_lineCount=1",
      ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@p2&_forcePagination=true",
      ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@p3&_forcePagination=true",
    }, client.urls)
    -- the href itself is followed verbatim; the flag comes as opts.query
    assert.are.equal(ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@p2", client.calls[2].path)
    assert.are.same({ query = { _forcePagination = "true" } }, client.calls[2].opts)
  end)

  it("pages.all reads every record too", function()
    local client = fake_acs(5, { big = true })
    local got = assert(pages.all(client, "profileAndServices/profile",
      { _lineCount = "2", _forcePagination = true }))
    client:close()
    assert.are.same({ 1, 2, 3, 4, 5 }, numbers(got))
    assert.are.equal(3, #client.urls)
    assert.are.equal(ROOT .. "profileAndServices/profile/?_lineCount=2&_lineStart=@p5&_forcePagination=true",
      client.urls[3])
  end)

  it("takes the flag from the path's own query string as well", function()
    local client = fake_acs(3, { big = true })
    local got = assert(pages.all(client, "profileAndServices/profile?_lineCount=1&_forcePagination=true"))
    client:close()
    assert.are.same({ 1, 2, 3 }, numbers(got))
    assert.are.equal(ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@p3&_forcePagination=true",
      client.urls[3])
  end)

  it("follows an href that keeps the flag verbatim (never twice)", function()
    local client = fake_acs(3, { big = true, keep_flag = true })
    local got = assert(pages.all(client, "profileAndServices/profile",
      { _lineCount = "1", _forcePagination = "true" }))
    client:close()
    assert.are.same({ 1, 2, 3 }, numbers(got))
    assert.is_nil(client.calls[2].opts)
    assert.is_nil(client.calls[3].opts)
    for _, url in ipairs(client.urls) do
      local _, flags = url:gsub("_forcePagination=", "")
      assert.are.equal(1, flags, url)
    end
  end)

  it("adds nothing when the first request did not force pagination", function()
    local client = fake_acs(3)
    local got = assert(pages.all(client, "profileAndServices/profile", { _lineCount = "1" }))
    client:close()
    assert.are.same({ 1, 2, 3 }, numbers(got))
    for i = 2, 3 do assert.is_nil(client.calls[i].opts) end
    for _, url in ipairs(client.urls) do assert.is_nil(url:find("_forcePagination", 1, true)) end
    -- and a big table without the flag ends after its first page, as ACS does
    local big = fake_acs(3, { big = true })
    local first = assert(pages.all(big, "profileAndServices/profile", { _lineCount = "1" }))
    assert.are.same({ 1 }, numbers(first))
    big:close()
  end)

  it("keeps the first request's value as it was given", function()
    local client = fake_acs(2, { big = true })
    assert(pages.all(client, "profileAndServices/profile", { _lineCount = "1", _forcePagination = true }))
    client:close()
    assert.are.same({ query = { _forcePagination = true } }, client.calls[2].opts)
    assert.are.equal(ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@p2&_forcePagination=true",
      client.urls[2])
  end)
end)
