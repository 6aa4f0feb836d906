--- campaign.pages: every record of an ACS listing, following `next.href`.
--
-- ACS pages a listing ({content = {...}, next = {href = <absolute URL>}, count = {href}}); the
-- last page has no `next`. The next page is fetched with the href verbatim (it carries the
-- opaque `_lineStart` cursor and the original query), through the client's own `get`, which
-- accepts absolute URLs of its own origin only. Records may be tables or, for an attribute
-- projection (`GET profile/email`), plain values: both are yielded as they come.
--
-- `_forcePagination`: ACS omits `next` on tables above XtkBigTableThreshold (100,000 rows)
-- unless the request says `_forcePagination=true`, and its documented `next.href` carries only
-- `_lineCount` and `_lineStart`. When the first request carries `_forcePagination` (in `query`
-- or in the path's own query string) and a `next.href` does not, the href is still followed
-- verbatim, with `{query = {_forcePagination = <the first request's value>}}`: the client
-- appends it after the href's own query. Without it a big listing would end silently after its
-- second page.
--
-- A server's bad `next.href` is a runtime failure (nil, err of kind "pagination"), never a raise:
-- one the client refuses (another origin: credentials never go there; a `..` segment, a control
-- character), one that names a page of this walk again (a cycle: every URL of the walk is kept
-- in a set, so an A -> B -> A loop is caught as well as a page naming itself), and one past
-- opts.max_pages.
local campaign = require "campaign"
local hrefs = require "campaign.hrefs"

local type, error, setmetatable, pairs, tonumber = type, error, setmetatable, pairs, tonumber

---@class campaign.pages
local pages = {}

local function check_args(fname, client, path, query, opts)
  local t = type(client)
  if (t ~= "table" and t ~= "userdata") or client.get == nil then
    error("campaign.pages." .. fname .. ": bad argument #1 'client' (client expected, got " .. t .. ")", 3)
  end
  if type(path) ~= "string" or path == "" then
    error("campaign.pages." .. fname .. ": bad argument #2 'path' (non-empty string expected)", 3)
  end
  if query ~= nil and type(query) ~= "table" then
    error("campaign.pages." .. fname .. ": bad argument #3 'query' (table or nil expected)", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("campaign.pages." .. fname .. ": bad argument #4 'opts' (table or nil expected)", 3)
  end
  local limit = opts and opts.limit
  if limit ~= nil and (type(limit) ~= "number" or limit < 0) then
    error("campaign.pages." .. fname .. ": opts.limit must be a non-negative number", 3)
  end
  local max_pages = opts and opts.max_pages
  if max_pages ~= nil and (type(max_pages) ~= "number" or max_pages < 1 or max_pages % 1 ~= 0) then
    error("campaign.pages." .. fname .. ": opts.max_pages must be a positive integer", 3)
  end
  return limit, max_pages
end

-- An href as the server sent it, fit for a one-line message: bytes outside printable ASCII as
-- %XX (no CR/LF or terminal escape reaches a log), at most 512 bytes of it.
local function printable(href)
  local s = href:gsub("[^!-~]", function(c) return ("%%%02X"):format(c:byte()) end)
  if #s > 512 then s = s:sub(1, 512) .. "..." end
  return s
end

local function pagination_error(href, message)
  return campaign.error { kind = "pagination", href = href, message = message .. ": " .. printable(href) }
end

local function next_href(body)
  local nxt = type(body) == "table" and body.next
  local href = type(nxt) == "table" and nxt.href
  if type(href) == "string" and href ~= "" then return href end
  return nil
end

local FORCE = "_forcePagination"

-- The value of `_forcePagination` in a URL's or path's own query string, or nil.
local function force_in_url(url)
  return hrefs.query_value(url, FORCE)
end

local iterator_mt = {
  __call = function(self) return self.step() end,
}

--- pages.each(client, path, query[, opts]) -> iterator
-- Each call of the iterator returns the next record; after the last one, nil. When a page
-- fails, it returns nil, err once and then nil for ever. It is also a table: after a generic
-- `for` loop, `it.err` holds the error that ended it (nil when the listing was complete),
-- `it.pages` the number of pages fetched, `it.res` the last page's res.
-- opts.limit stops after that many records (no further page is fetched); opts.max_pages (no
-- default) fails with kind "pagination" rather than fetch one page more.
---@param client campaign.AnyClient
---@param path string
---@param query? campaign.Query
---@param opts? campaign.pages.Opts
---@return campaign.pages.Iterator
function pages.each(client, path, query, opts)
  local limit, max_pages = check_args("each", client, path, query, opts)
  local it = setmetatable({ pages = 0, count = 0 }, iterator_mt)
  local records, index = nil, 0
  local href            -- the next page's absolute URL; nil before the first page
  local finished = false
  -- The first request's _forcePagination, to keep on every page whose href drops it.
  local force = query and query[FORCE]
  if force == nil then force = force_in_url(path) end
  local force_opts = force ~= nil and { query = { [FORCE] = force } } or nil
  local first_opts = query and { query = query } or nil

  -- Every URL of the walk -> the number of its page. Keyed by the URL the client builds
  -- (client:url, both clients have it) so that spellings of one URL meet; by the href itself
  -- for a client without `url`. A few hundred bytes a page: a million-row walk at ACS's 25 a
  -- page keeps 40,000 of them.
  local has_url = type(client.url) == "function"
  local seen = {}
  if has_url then
    local ok, url = pcall(client.url, client, path, first_opts)
    if ok then seen[url] = 1 end   -- when not, the first get raises the same misuse
  elseif not first_opts then
    seen[path] = 1
  end

  -- The page after it.pages, checked before anything is sent: body, res | nil, err.
  local function follow(target)
    local get_opts = force_opts and force_in_url(target) == nil and force_opts or nil
    local key = target
    if has_url then
      local ok, url = pcall(client.url, client, target, get_opts)
      if not ok then
        -- A client that cannot build even the first URL any more (closed, busy) is misused:
        -- that raise is the caller's. Otherwise the server's href is at fault.
        if not pcall(client.url, client, path, first_opts) then error(url, 0) end
        local why = tostring(url):gsub("^[^:\n]*:%d+: ", ""):gsub("^campaign[%w_.]*: ", "")
        return nil, pagination_error(target, ("next.href of page %d refused (%s)"):format(it.pages, why))
      end
      key = url
    end
    if seen[key] then
      return nil, pagination_error(target, ("next.href of page %d names page %d again (a pagination cycle)")
        :format(it.pages, seen[key]))
    end
    if max_pages and it.pages >= max_pages then
      return nil, pagination_error(target,
        ("more than opts.max_pages (%d) pages; next.href of page %d not followed")
          :format(max_pages, it.pages))
    end
    seen[key] = it.pages + 1
    return client:get(target, get_opts)
  end

  local function fetch()
    local body, res
    if href == nil then
      body, res = client:get(path, first_opts)
    else
      body, res = follow(href)
    end
    if body == nil then return nil, res end
    it.pages = it.pages + 1
    it.res = res
    local content = type(body) == "table" and body.content
    if type(content) ~= "table" then content = {} end
    return content, next_href(body)
  end

  function it.step()
    while not finished do
      if limit and it.count >= limit then finished = true break end
      if records and index < #records then
        index = index + 1
        it.count = it.count + 1
        return records[index]
      end
      if records and href == nil then finished = true break end   -- last page consumed
      local content, nxt = fetch()
      if content == nil then
        finished = true
        it.err = nxt
        return nil, nxt
      end
      records, index, href = content, 0, nxt
      if nxt == nil and #content == 0 then finished = true end
    end
    return nil
  end

  return it
end

--- pages.all(client, path, query[, opts]) -> list | nil, err, partial
-- Collects every record (at most opts.limit). On a failed page: nil, err, and the records read
-- so far as a third value.
---@param client campaign.AnyClient
---@param path string
---@param query? campaign.Query
---@param opts? campaign.pages.Opts
---@return any[]|nil records
---@return campaign.Error|nil err
---@return any[]|nil partial the records read before the failure
function pages.all(client, path, query, opts)
  check_args("all", client, path, query, opts)
  local it = pages.each(client, path, query, opts)
  local list, n = {}, 0
  while true do
    local record, err = it()
    if record == nil then
      if err ~= nil then return nil, err, list end
      return list
    end
    n = n + 1
    list[n] = record
  end
end

--- pages.count(client, path[, query]) -> n | nil, err
-- The number of records of a listing: reads one record to get `count.value` when ACS puts it
-- inline, else `count.href` (ACS's `<resource>//_count?...`), which it GETs ({count = n}).
---@param client campaign.AnyClient
---@param path string
---@param query? campaign.Query
---@return integer|nil n
---@return campaign.Error|nil err
function pages.count(client, path, query)
  check_args("count", client, path, query)
  local q = {}
  for k, v in pairs(query or {}) do q[k] = v end
  q._lineCount = "1"
  local body, err = client:get(path, { query = q })
  if body == nil then return nil, err end
  local count = type(body) == "table" and body.count
  -- One documented ACS answer carries the number inline: {"count": {"href": ..., "value": 12}}.
  if type(count) == "table" and type(count.value) == "number" then return count.value end
  local href = type(count) == "table" and count.href
  if type(href) ~= "string" then
    -- Without a count link (an unpaged listing), the content is the whole listing.
    return nil, campaign.error { kind = "json", method = "GET", url = path,
      message = "the listing has no count.href" }
  end
  local answer, cerr = client:get(href)
  if answer == nil then return nil, cerr end
  local n = type(answer) == "table" and tonumber(answer.count)
  if not n then
    return nil, campaign.error { kind = "json", method = "GET", url = href,
      message = "the count answer has no number 'count'" }
  end
  return n
end

return pages
