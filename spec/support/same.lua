-- Deep equality for JSON values: numbers by value (1 == 1.0), campaign.null by identity, keys
-- compared both ways. Shared by the JSON specs.
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return same
