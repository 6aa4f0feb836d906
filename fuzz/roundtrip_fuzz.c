/*
 * roundtrip_fuzz.c - for every input that decodes, encode(decode(x)) must succeed and decode
 * back to an equal value: same strings byte for byte, numbers equal (an integral float may
 * come back as an integer: design.md encodes it so), the same array/object marking (an empty
 * [] stays [] and {} stays {}), campaign.null where null was. Key order is not compared: a Lua
 * table has none. A value holding an infinity (1e999) may refuse to encode: design.md makes inf
 * an encode error.
 */
#include "fuzz_lua.h"

static const char CHECKER[] =
  "local campaign = ...\n"
  "local function has_inf(v)\n"
  "  if type(v) == 'number' then return v == math.huge or v == -math.huge end\n"
  "  if type(v) == 'table' then\n"
  "    for k, x in next, v do if has_inf(k) or has_inf(x) then return true end end\n"
  "  end\n"
  "  return false\n"
  "end\n"
  "local function same(a, b, path)\n"
  "  if type(a) ~= type(b) then\n"
  "    error(('FUZZ-BUG at %s: %s became %s'):format(path, type(a), type(b)), 0)\n"
  "  end\n"
  "  if type(a) == 'table' then\n"
  "    if getmetatable(a) ~= getmetatable(b) then\n"
  "      error('FUZZ-BUG at ' .. path .. ': array/object marking changed', 0)\n"
  "    end\n"
  "    for k, x in next, a do same(x, rawget(b, k), path .. '.' .. tostring(k)) end\n"
  "    for k in next, b do\n"
  "      if rawget(a, k) == nil then error('FUZZ-BUG at ' .. path .. ': new key ' .. tostring(k), 0) end\n"
  "    end\n"
  "  elseif a ~= b then\n"
  "    error(('FUZZ-BUG at %s: %q became %q'):format(path, tostring(a), tostring(b)), 0)\n"
  "  end\n"
  "end\n"
  "return function(text)\n"
  "  local ok, value = pcall(campaign.decode, text)\n"
  "  if not ok or value == nil then return end\n"
  "  local encoded_ok, encoded = pcall(campaign.encode, value)\n"
  "  if not encoded_ok then\n"
  "    if has_inf(value) then return end\n"
  "    error('FUZZ-BUG encode(decode(x)) raised: ' .. tostring(encoded), 0)\n"
  "  end\n"
  "  local again_ok, again, err = pcall(campaign.decode, encoded)\n"
  "  if not again_ok or again == nil then\n"
  "    error('FUZZ-BUG decode(encode(decode(x))) failed: ' .. tostring(again_ok and err or again), 0)\n"
  "  end\n"
  "  same(value, again, '$')\n"
  "end\n";

FUZZ_STRING_TARGET(CHECKER)
