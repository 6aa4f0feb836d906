-- bench/string_hash.lua [luajit]: which bytes of a string LuaJIT's string hash reads, by
-- length. For each length and each byte position, 3000 strings that differ only in the three
-- bytes from that position are made; when the hash does not read them, the strings share one
-- chain of the string table and each costs a walk of it. Prints per length a map: "." the
-- position is hashed, "X" it is not (making the strings took over 4 times as long as when they
-- differ in their first bytes, which every hash reads). Why the cosocket transport
-- reads a head in pieces under 128 bytes (docs/openresty.md "Reading a response").
local n = 3000

-- Seconds to make n strings of base's length that differ in the three bytes at position k.
local function make(base, k)
  collectgarbage("collect") -- the previous position's strings leave the table first
  local keep = {}
  local t0 = os.clock()
  for i = 1, n do
    local c = string.char(65 + i % 26, 65 + math.floor(i / 26) % 26, 65 + math.floor(i / 676) % 26)
    keep[i] = base:sub(1, k) .. c .. base:sub(k + 4)
  end
  local seconds = os.clock() - t0
  return seconds, #keep -- kept alive until here: every string stays in the table while timed
end

local function map(len, step)
  local base = ("q"):rep(len)
  local baseline = math.min((make(base, 0)), (make(base, 0)), (make(base, 0)))
  local marks = {}
  for k = 0, len - 3, step do
    marks[#marks + 1] = (make(base, k)) > 4 * baseline and "X" or "."
  end
  return marks
end

print(jit and jit.version or _VERSION)
for _, case in ipairs({ { 64, 1 }, { 127, 1 }, { 128, 1 }, { 256, 4 }, { 1600, 25 } }) do
  local marks = map(case[1], case[2])
  local unread = 0
  for _, m in ipairs(marks) do if m == "X" then unread = unread + 1 end end
  print(("length %4d (every %2d bytes): %3d of %3d positions not hashed  %s"):format(case[1], case[2],
    unread, #marks, table.concat(marks)))
end
