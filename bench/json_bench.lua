-- bench/json_bench.lua: campaign.encode / campaign.decode against Debian's lua-cjson and dkjson,
-- measured in the same run on the same data, printed as MB/s and ratios.
--   lua5.4 bench/json_bench.lua            (or: luajit bench/json_bench.lua)
--   CAMPAIGN_BENCH_SECONDS=1 lua5.4 ...    time per measurement (default 0.3 s, best of 5 rounds)
-- Data: one ACS profile record (~1 KB) and a listing page of 1200 profiles (~1.3 MB) shaped like
-- GET /profileAndServices/profile?_lineCount=1200.
local flavour = jit and "jit" or "5.4"
-- CAMPAIGN_BENCH_CPATH overrides where campaign.so is looked up (default: build/<flavour>/).
local cpath = os.getenv("CAMPAIGN_BENCH_CPATH") or ("build/" .. flavour .. "/?.so")
package.cpath = cpath .. ";" .. package.cpath

local campaign = require "campaign"
local cjson_ok, cjson = pcall(require, "cjson")
local dkjson_ok, dkjson = pcall(require, "dkjson")

local seconds = tonumber(os.getenv("CAMPAIGN_BENCH_SECONDS")) or 0.3
local rounds = 5

-- Deterministic pseudo-random data (the same on every Lua).
local seed = 12345
local function rand(n)
  seed = (seed * 69069 + 1) % 4294967296    -- stays below 2^53: exact on LuaJIT too
  return math.floor(seed / 65536) % n
end
local letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local function word(n)
  local t = {}
  for i = 1, n do
    local k = rand(#letters) + 1
    t[i] = letters:sub(k, k)
  end
  return table.concat(t)
end

local base = "https://mc.adobe.io/acme/campaign/profileAndServices/profile/"
local function profile(i)
  local pkey = "@" .. word(96)
  return {
    PKey = pkey,
    href = base .. pkey,
    age = 18 + rand(60),
    birthDate = string.format("19%02d-%02d-%02d", 40 + rand(60), 1 + rand(12), 1 + rand(28)),
    blackList = false, blackListEmail = rand(10) == 0, blackListMobile = false,
    blackListEmailLastModified = "", blackListLastModified = "",
    created = "2019-09-25 00:19:14.569Z", lastModified = "2021-03-02 10:11:12.000Z",
    email = word(8) .. "." .. word(6) .. "@mail.com",
    firstName = word(7), lastName = word(9), middleName = "",
    gender = ({ "male", "female", "unknown" })[rand(3) + 1],
    preferredLanguage = "en_US", timeZone = "Europe/Paris", title = "", salutation = "",
    phone = "+33 1 " .. rand(100000000), mobilePhone = "+33 6 " .. rand(100000000),
    domain = "mail.com", thumbnail = "/nl/img/thumbnails/defaultProfil.png",
    cusLoyaltyPoints = rand(100000), cusScore = rand(1000) / 8, cusCrmId = 100000000000 + i,
    location = {
      address1 = rand(200) .. " rue " .. word(8), address2 = "", address3 = "", address4 = "",
      city = "Paris", countryCode = "FR", stateCode = "", zipCode = tostring(75000 + rand(20)),
    },
    orgUnit = { PKey = "@" .. word(40), href = base .. "orgUnit", title = "All (all)" },
    subscriptions = { href = base .. pkey .. "/subscriptions/" },
    tags = campaign.array { "vip", word(5) },
  }
end

local profile_text = campaign.encode(profile(0))
local listing = { content = {}, count = { href = base .. "/_count?_lineCount=1200" },
                  next = { href = base .. "?_lineCount=1200&_lineStart=@" .. word(40) },
                  serverSidePagination = true }
for i = 1, 1200 do listing.content[i] = profile(i) end
local listing_text = campaign.encode(listing)

-- Throughput (MB/s) of one run of about `seconds`.
local function measure_once(fn, arg, bytes)
  local n, start = 0, os.clock()
  local elapsed
  repeat
    for _ = 1, 10 do fn(arg) end
    n = n + 10
    elapsed = os.clock() - start
  until elapsed >= seconds
  return bytes * n / elapsed / 1e6
end

local coders = {
  { name = "campaign", decode = campaign.decode, encode = campaign.encode },
}
if cjson_ok then
  coders[#coders + 1] = { name = "cjson " .. cjson._VERSION, decode = cjson.decode, encode = cjson.encode }
end
if dkjson_ok then
  coders[#coders + 1] = { name = tostring(dkjson.version), decode = dkjson.decode,
                          encode = dkjson.encode }
end

print(string.format("json_bench on %s: profile %d bytes, listing %d bytes (%d profiles); best of %d x %.1fs",
  jit and jit.version or _VERSION, #profile_text, #listing_text, #listing.content, rounds, seconds))
for _, case in ipairs { { "profile", profile_text }, { "listing", listing_text } } do
  local label, text = case[1], case[2]
  local value = campaign.decode(text)
  -- Round after round, every coder in turn, keeping each one's best: a burst of load from
  -- elsewhere on a shared machine then hits all of them alike instead of one coder's rounds.
  local results = {}
  for i, c in ipairs(coders) do results[i] = { name = c.name, decode = 0, encode = 0 } end
  for _ = 1, rounds do
    for i, c in ipairs(coders) do
      local r = results[i]
      r.decode = math.max(r.decode, measure_once(c.decode, text, #text))
      r.encode = math.max(r.encode, measure_once(c.encode, value, #text))
    end
  end
  local ours = results[1]
  for _, r in ipairs(results) do
    local line = string.format("  %-8s %-14s decode %8.1f MB/s   encode %8.1f MB/s", label, r.name,
      r.decode, r.encode)
    if r ~= ours then
      line = line .. string.format("   campaign/%s: decode %.2fx, encode %.2fx", r.name:match("^%S+"),
        ours.decode / r.decode, ours.encode / r.encode)
    end
    print(line)
  end
end
