-- campaign.pages against a fake client serving a paged listing.
local pages = require "campaign.pages"
local fake = require "lua.fake_client"

local BASE = "http://127.0.0.1:1/acme/campaign/"

-- A listing of `n` records, `size` per page; next.href is absolute, like ACS's.
local function listing_handler(n, size, opts)
  opts = opts or {}
  return function(c)
    local start = 1
    if c.path:find("^http") then
      start = tonumber(c.path:match("_lineStart=(%d+)"))
    end
    if opts.fail_at and start == opts.fail_at then
      return nil, { kind = "http", status = 503, message = "unavailable" }
    end
    local content = {}
    for i = start, math.min(n, start + size - 1) do
      content[#content + 1] = opts.projection and ("user" .. i .. "@mail.com") or { PKey = "@p" .. i, n = i }
    end
    local body = { content = content, serverSidePagination = true,
                   count = { href = BASE .. "profileAndServices/profile//_count" } }
    if start + size <= n then
      body.next = { href = BASE .. "profileAndServices/profile/?_lineCount=" .. size
        .. "&_lineStart=" .. (start + size) }
    end
    return body, { status = 200, headers = {}, attempts = 1 }
  end
end

describe("campaign.pages.each", function()
  it("yields every record across pages, following the absolute next.href verbatim", function()
    local client = fake.new(listing_handler(7, 3))
    local seen = {}
    local it = pages.each(client, "profileAndServices/profile", { _lineCount = "3" })
    for record in it do seen[#seen + 1] = record.n end
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, seen)
    assert.are.equal(3, #client.calls)
    assert.are.equal(3, it.pages)
    assert.is_nil(it.err)
    assert.are.equal("profileAndServices/profile", client.calls[1].path)
    assert.are.same({ _lineCount = "3" }, client.calls[1].query)
    assert.are.equal(BASE .. "profileAndServices/profile/?_lineCount=3&_lineStart=4", client.calls[2].path)
    assert.is_nil(client.calls[2].query)   -- the href already carries the query
  end)

  it("stops when next is absent (one page, exact multiple, empty listing)", function()
    for _, case in ipairs { { 2, 5, 1 }, { 6, 3, 2 }, { 0, 3, 1 } } do
      local n, size, calls = case[1], case[2], case[3]
      local client = fake.new(listing_handler(n, size))
      local got = assert(pages.all(client, "profileAndServices/profile"))
      assert.are.equal(n, #got)
      assert.are.equal(calls, #client.calls)
    end
  end)

  it("returns nil, err when a page fails, then stops; it.err keeps the error", function()
    local client = fake.new(listing_handler(10, 3, { fail_at = 4 }))
    local it = pages.each(client, "profileAndServices/profile")
    local values = {}
    for _ = 1, 3 do values[#values + 1] = it().n end
    assert.are.same({ 1, 2, 3 }, values)
    local record, err = it()
    assert.is_nil(record)
    assert.are.equal(503, err.status)
    assert.are.equal(err, it.err)
    assert.is_nil((it()))
    assert.are.equal(2, #client.calls)   -- nothing fetched after the failure
  end)

  it("yields the plain values of an attribute projection", function()
    local client = fake.new(listing_handler(4, 3, { projection = true }))
    local got = assert(pages.all(client, "profileAndServices/profile/email"))
    assert.are.same({ "user1@mail.com", "user2@mail.com", "user3@mail.com", "user4@mail.com" }, got)
  end)

  it("stops at opts.limit without fetching further pages", function()
    local client = fake.new(listing_handler(100, 10))
    local got = assert(pages.all(client, "profileAndServices/profile", nil, { limit = 15 }))
    assert.are.equal(15, #got)
    assert.are.equal(2, #client.calls)
  end)

  it("does not loop for ever on a next.href pointing at the same page: nil, err (a cycle)", function()
    local href = BASE .. "profileAndServices/profile/?_lineStart=@same"
    local client = fake.new(function()
      return { content = { { n = 1 } }, next = { href = href } }, { status = 200 }
    end)
    local list, err, partial = pages.all(client, href)
    assert.is_nil(list)   -- the server said there is more: not a complete listing
    assert.are.equal("pagination", err.kind)
    assert.are.equal(1, #partial)
    assert.are.equal(1, #client.calls)
  end)
end)

describe("campaign.pages.count", function()
  it("reads one record for count.href, then GETs it", function()
    local client = fake.new(function(c)
      if c.path:find("_count", 1, true) then return { count = 26 }, { status = 200 } end
      return { content = { { n = 1 } }, count = { href = BASE .. "profileAndServices/profile//_count?x=1" } },
        { status = 200 }
    end)
    assert.are.equal(26, pages.count(client, "profileAndServices/profile", { email = "a" }))
    assert.are.same({ email = "a", _lineCount = "1" }, client.calls[1].query)
    assert.are.equal(BASE .. "profileAndServices/profile//_count?x=1", client.calls[2].path)
  end)

  it("returns nil, err when a request fails or the answer has no count", function()
    local failing = fake.new(function() return nil, { kind = "timeout" } end)
    local n, err = pages.count(failing, "profileAndServices/profile")
    assert.is_nil(n)
    assert.are.equal("timeout", err.kind)
    local no_link = fake.new(function() return { content = {} }, { status = 200 } end)
    local n2, err2 = pages.count(no_link, "profileAndServices/profile")
    assert.is_nil(n2)
    assert.are.equal("json", err2.kind)
  end)
end)

describe("campaign.pages.all", function()
  it("returns nil, err and the records read so far on a failed page", function()
    local client = fake.new(listing_handler(10, 3, { fail_at = 7 }))
    local list, err, partial = pages.all(client, "profileAndServices/profile")
    assert.is_nil(list)
    assert.are.equal(503, err.status)
    assert.are.equal(6, #partial)
  end)

  it("raises on misuse", function()
    local client = fake.new()
    assert.has_error(function() pages.all(nil, "x") end)
    assert.has_error(function() pages.all(client, 42) end)
    assert.has_error(function() pages.all(client, "x", "q") end)
    assert.has_error(function() pages.all(client, "x", nil, { limit = -1 }) end)
    assert.are.equal(0, #client.calls)
  end)
end)
