-- URL pieces shared by campaign.api, campaign.pages and campaign.workflow: reading the query
-- string of an href that ACS gave (next.href, a subscription's href...), which is sent verbatim,
-- and turning a caller's key (PKey, resource name, event id...) into one path segment.
local string_char, string_byte, string_format, tonumber, type =
  string.char, string.byte, string.format, tonumber, type

---@class campaign.hrefs
local hrefs = {}

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string_char(tonumber(h, 16)) end))
end

--- The value of `key` in the href's own query string (percent-decoded; "" for a bare key), or
-- nil when the query does not name it. The fragment is ignored.
---@param url string
---@param key string
---@return string|nil value
function hrefs.query_value(url, key)
  local qs = url:match("^[^?#]*%?([^#]*)")
  if not qs then return nil end
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    if percent_decode(k) == key then return percent_decode(v) end
  end
  return nil
end

local function escape_byte(c) return string_format("%%%02X", string_byte(c)) end

-- Why `key` cannot be one path segment, or nil.
local function key_problem(key)
  if key == "" then return "must not be empty" end
  if key == "." or key == ".." then return "must not be '.' or '..'" end
  if key:find("/", 1, true) then return "must not contain '/'" end
  if key:find("\\", 1, true) then return "must not contain '\\'" end
  if key:find("[%z\1-\31\127]") then return "must not contain control characters" end
  return nil
end

--- hrefs.key_segment(key) -> segment | nil, problem
-- A key (PKey, resource or filter name, event id, workflow id, tenant) as ONE path segment:
-- every byte but RFC 3986's unreserved characters and `@` (which starts every PKey and is a
-- legal pchar) is percent-encoded, so `?`, `#`, `%`, `:`, `+`, a space... are data, never
-- structure. A key that cannot be one segment is refused, as given and percent-decoded once
-- (a server or proxy that decodes must not find structure either): empty, `.`, `..`, or
-- containing `/`, `\` or a control character (no ACS key has any of these: acs-api.md §1).
-- problem is a phrase such as "must not contain '/'".
---@param key any
---@return string|nil segment
---@return string|nil problem
function hrefs.key_segment(key)
  if type(key) ~= "string" then return nil, "must be a string" end
  local problem = key_problem(key)
  if not problem and key:find("%", 1, true) then
    problem = key_problem(percent_decode(key))
    if problem then problem = problem .. ", even percent-encoded" end
  end
  if problem then return nil, problem end
  return (key:gsub("[^A-Za-z0-9%-%._~@]", escape_byte)) -- explicit ASCII: %w follows the locale
end

return hrefs
