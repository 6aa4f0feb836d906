-- campaign.pages against a server whose next.href misbehaves: a cycle (A -> B -> A, a page
-- naming the first one), an endless run of distinct pages (opts.max_pages), an href the client
-- refuses (another origin, a `..` segment). Each ends the walk with nil, err of kind
-- "pagination" (the iterator's own protocol), never a raise and never an endless loop: the
-- handlers below abort after a bounded number of requests, so code that loops fails the spec
-- instead of hanging it.
local campaign = require "campaign"
local emulator = require "emulator"
local pages = require "campaign.pages"
local fake = require "lua.fake_client"

local BASE = "http://127.0.0.1:1/acme/campaign/"
local BOUND = 50   -- requests a spec allows before it calls the walk endless

-- Walks `it` to its end, at most BOUND records; returns the records, the error, the calls made.
local function walk(it)
  local got = {}
  for _ = 1, BOUND do
    local record, err = it()
    if record == nil then return got, err end
    got[#got + 1] = record
  end
  error("the walk did not end after " .. BOUND .. " records", 2)
end

-- A fake client answering each href with one record and the next href of `links`.
local function linked(links)
  local calls = 0
  return fake.new(function(c)
    calls = calls + 1
    if calls > BOUND then error("more than " .. BOUND .. " requests: an endless walk") end
    local key = c.path:match("[^/]+$")
    local nxt = links[key] and { href = BASE .. "profile/" .. links[key] }
    return { content = { { page = key } }, next = nxt },
      { status = 200 }
  end)
end

describe("campaign.pages.each on a pagination cycle", function()
  it("ends A -> B -> A with nil, err (kind pagination) once, then nil; it.err keeps it", function()
    local client = linked { first = "A", A = "B", B = "A" }
    local it = pages.each(client, "profile/first")
    local got, err = walk(it)
    assert.are.same({ { page = "first" }, { page = "A" }, { page = "B" } }, got)
    assert.is_true(campaign.is_error(err))
    assert.are.equal("pagination", err.kind)
    assert.are.equal(BASE .. "profile/A", err.href)
    assert.matches("next.href of page 3 names page 2 again (a pagination cycle)", err.message, 1, true)
    assert.are.equal(err, it.err)
    assert.is_nil((it()))
    assert.are.equal(3, #client.calls)
    assert.are.equal("campaign: pagination: next.href of page 3 names page 2 again (a pagination cycle): "
      .. BASE .. "profile/A", tostring(err))
  end)

  it("catches a cycle over many pages (every href of the walk is remembered)", function()
    local links = {}
    for i = 1, 20 do links["p" .. i] = "p" .. (i + 1) end
    links.p21 = "p5"
    local got, err = walk(pages.each(linked(links), "profile/p1"))
    assert.are.equal(21, #got)
    assert.are.equal("pagination", err.kind)
  end)

  it("pages.all returns nil, err and the records read before the cycle", function()
    local list, err, partial = pages.all(linked { first = "A", A = "A" }, "profile/first")
    assert.is_nil(list)
    assert.are.equal("pagination", err.kind)
    assert.are.equal(2, #partial)
  end)

  it("opts.limit reached first: no error, the cyclic href is never looked at", function()
    local client = linked { first = "A", A = "B", B = "A" }
    local got, err = walk(pages.each(client, "profile/first", nil, { limit = 3 }))
    assert.are.equal(3, #got)
    assert.is_nil(err)
  end)
end)

describe("campaign.pages.each opts.max_pages", function()
  -- Distinct hrefs for ever: only a page cap ends this.
  local function endless()
    local calls = 0
    return fake.new(function(c)
      calls = calls + 1
      if calls > BOUND then error("more than " .. BOUND .. " requests") end
      local n = tonumber(c.path:match("_lineStart=(%d+)")) or 1
      return { content = { { n = n } }, next = { href = BASE .. "profile/?_lineStart=" .. (n + 1) } },
        { status = 200 }
    end)
  end

  it("fetches at most max_pages pages, then nil, err (kind pagination)", function()
    local client = endless()
    local got, err = walk(pages.each(client, "profile", nil, { max_pages = 4 }))
    assert.are.equal(4, #got)
    assert.are.equal(4, #client.calls)
    assert.are.equal("pagination", err.kind)
    assert.matches("more than opts.max_pages (4) pages", err.message, 1, true)
  end)

  it("a listing of exactly max_pages pages ends normally", function()
    local client = fake.new(function(c)
      local n = tonumber(c.path:match("_lineStart=(%d+)")) or 1
      local nxt = n < 3 and { href = BASE .. "profile/?_lineStart=" .. (n + 1) } or nil
      return { content = { { n = n } }, next = nxt },
        { status = 200 }
    end)
    local list = assert(pages.all(client, "profile", nil, { max_pages = 3 }))
    assert.are.equal(3, #list)
  end)

  it("raises on a max_pages that is not a positive integer", function()
    local client = fake.new()
    for _, bad in ipairs { 0, -1, 1.5, "3", true } do
      assert.has_error(function() pages.each(client, "profile", nil, { max_pages = bad }) end)
    end
    assert.are.equal(0, #client.calls)
  end)
end)

describe("campaign.pages against the emulator's crafted next.href", function()
  local emu, client

  setup(function() emu = emulator.shared() end)
  before_each(function()
    emu:fresh()
    client = campaign.new(emu:client_options { retries = 0 })
  end)
  after_each(function() emu:clear_faults() end)

  local root = function() return emu.base_url .. "/" .. emu.org .. "/campaign/" end

  -- A fault answering GETs of one path with one record and `href` as next.
  local function page(path_pattern, href, times)
    return { method = "GET", path = path_pattern, status = 200, times = times or -1,
      body = { content = { { PKey = "@" .. path_pattern:gsub("%W", "") } },
               next = href and { href = href } } }
  end

  local function gets_of(fragment)
    local n = 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" and r.uri:find(fragment, 1, true) then n = n + 1 end
    end
    return n
  end

  it("an A -> B -> A cycle between two hrefs ends with nil, err (the C client)", function()
    emu:faults {
      page("/hostile/A$", root() .. "profileAndServices/profile/hostile/B"),
      page("/hostile/B$", root() .. "profileAndServices/profile/hostile/A"),
    }
    local got, err = walk(pages.each(client, "profileAndServices/profile/hostile/A"))
    assert.are.equal(2, #got)
    assert.are.equal("pagination", err.kind)
    assert.matches("names page 1 again", err.message, 1, true)   -- the first page, asked by path
    assert.are.equal(1, gets_of("/hostile/A"))
    assert.are.equal(1, gets_of("/hostile/B"))
  end)

  it("an off-origin next.href: nil, err, not a raise, and nothing is sent there", function()
    -- localhost is another origin than 127.0.0.1 but the same emulator: had the client sent the
    -- request (with the token and API key), the emulator's log would show it.
    local evil = emu.base_url:gsub("127%.0%.0%.1", "localhost") .. "/" .. emu.org
      .. "/campaign/profileAndServices/profile/hostile/evil?_lineStart=@x"
    emu:faults { page("/hostile/start$", evil) }
    local it = pages.each(client, "profileAndServices/profile/hostile/start")
    local ok, got, err = pcall(walk, it)
    assert.is_true(ok, "pages.each raised: " .. tostring(got))
    assert.are.equal(1, #got)
    assert.is_true(campaign.is_error(err))
    assert.are.equal("pagination", err.kind)
    assert.are.equal(evil, err.href)
    assert.matches("next.href of page 1 refused (an absolute URL must have the base_url's scheme, "
      .. "host and port", err.message, 1, true)
    assert.is_nil((it()))
    assert.are.equal(0, gets_of("/hostile/evil"))
  end)

  it("an href with control bytes or a `..` segment: nil, err; the message shows it escaped", function()
    emu:faults { page("/hostile/start$", root() .. "profileAndServices/profile/../x\r\nX-Injected: 1") }
    local ok, got, err = pcall(walk, pages.each(client, "profileAndServices/profile/hostile/start"))
    assert.is_true(ok, "pages.each raised: " .. tostring(got))
    assert.are.equal("pagination", err.kind)
    assert.is_nil(tostring(err):find("[\r\n]"))
    assert.matches("x%0D%0AX-Injected:%201", err.message, 1, true)
  end)

  it("a closed client still raises (misuse), it is not taken for a bad href", function()
    emu:faults { page("/hostile/A$", root() .. "profileAndServices/profile/hostile/B") }
    local it = pages.each(client, "profileAndServices/profile/hostile/A")
    assert.is_table(it())
    client:close()
    assert.has_error(function() it() end, "campaign.url: client is closed")
  end)
end)
