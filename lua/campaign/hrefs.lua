-- Reading the query string of an href that ACS gave (next.href, a subscription's href...):
-- shared by campaign.api and campaign.pages, which send such hrefs verbatim and only need to
-- know whether a parameter is already in them.
local string_char, tonumber = string.char, tonumber

local hrefs = {}

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string_char(tonumber(h, 16)) end))
end

--- The value of `key` in the href's own query string (percent-decoded; "" for a bare key), or
-- nil when the query does not name it. The fragment is ignored.
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

return hrefs
