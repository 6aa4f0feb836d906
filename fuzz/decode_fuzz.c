/*
 * decode_fuzz.c - campaign.decode on arbitrary bytes. It must never crash, never read out of
 * bounds, never raise, and either return a value or fail with an error of kind "json" whose
 * byte offset lies inside the input. Crashes and sanitizer reports are findings too.
 */
#include "fuzz_lua.h"

static const char CHECKER[] =
  "local campaign = ...\n"
  "return function(text)\n"
  "  local ok, value, err = pcall(campaign.decode, text)\n"
  "  if not ok then\n"
  "    local e = value\n"
  "    if type(e) == 'table' and e.kind == 'json' then return end\n"
  "    error('FUZZ-BUG decode raised: ' .. tostring(e), 0)\n"
  "  end\n"
  "  if value == nil then\n"
  "    if type(err) ~= 'table' or err.kind ~= 'json' then\n"
  "      error('FUZZ-BUG decode failed without a json error: ' .. tostring(err), 0)\n"
  "    end\n"
  "    local offset = err.offset or tonumber(tostring(err.message):match('offset (%d+)'))\n"
  "    if offset and (offset < 0 or offset > #text) then\n"
  "      error('FUZZ-BUG error offset ' .. offset .. ' outside the input of ' .. #text .. ' bytes', 0)\n"
  "    end\n"
  "  end\n"
  "end\n";

FUZZ_STRING_TARGET(CHECKER)
