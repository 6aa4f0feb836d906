/*
 * json.c - the JSON functions of the `campaign` module: campaign.encode, campaign.decode,
 * campaign.null, campaign.array, campaign.is_array (design.md's JSON table; docs/json.md),
 * their argument checks, and the array metatable. The work is done by
 *   json_decode.c  JSON text -> Lua values (yajl callbacks, the tape)
 *   json_encode.c  Lua values -> JSON text
 *   json_number.c  the number rules both apply      json_utf8.c  the UTF-8 rules both apply
 * src/json.h is the interface for the rest of the module; json_internal.h is these files' own.
 */
#include "json.h"
#include "json_internal.h"
#include "error.h"

#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Lua functions                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* campaign.encode(value [, {pretty = bool, sort_keys = bool}]) -> string; raises on misuse. */
static int json_encode(lua_State *L) {
  int flags = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      int bit = 0;
      if (name && strcmp(name, "pretty") == 0) bit = ENCODE_PRETTY | ENCODE_SORT_KEYS;
      else if (name && strcmp(name, "sort_keys") == 0) bit = ENCODE_SORT_KEYS;
      else if (name) return luaL_error(L, "campaign.encode: unknown option '%s'", name);
      else return luaL_error(L, "campaign.encode: option names are strings");
      if (lua_type(L, -1) != LUA_TBOOLEAN)
        return luaL_error(L, "campaign.encode: option '%s' must be a boolean", name);
      if (lua_toboolean(L, -1)) flags |= bit;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  json_encode_with(L, 1, flags);
  return 1;
}

/* campaign.decode(text) -> value, or nil, err (kind "json", offset = 0-based byte offset). */
static int json_decode(lua_State *L) {
  char message[256];
  size_t len, offset = 0;
  const char *text;
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 1)));
  text = lua_tolstring(L, 1, &len);
  if (campaign_json_decode(L, text, len, message, sizeof message, &offset)) return 1;
  lua_pushnil(L);
  campaign_error_new(L, "json", message);
  lua_pushinteger(L, (lua_Integer)offset);
  lua_setfield(L, -2, "offset");
  return 2;
}

/* campaign.array([t]) -> t, marked as a JSON array (a new table when t is nil). */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
      luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
      if (!lua_rawequal(L, -1, -2))
        return luaL_argerror(L, 1, "the table already has another metatable");
      lua_settop(L, 1);
      return 1;
    }
  }
  campaign_setmetatable(L, CAMPAIGN_ARRAY_MT);
  return 1;
}

/* campaign.is_array(v) -> true when v is a table carrying the array metatable. */
static int json_is_array(lua_State *L) {
  int result = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
    result = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, result);
  return 1;
}

void campaign_json_register(lua_State *L, int module_idx) {
  static const luaL_Reg functions[] = {
    {"encode", json_encode},
    {"decode", json_decode},
    {"array", json_array},
    {"is_array", json_is_array},
    {NULL, NULL}
  };
  module_idx = campaign_absindex(L, module_idx);

  luaL_newmetatable(L, CAMPAIGN_ARRAY_MT);
  lua_pushliteral(L, "array");          /* dkjson's marker, so dkjson writes [] for it too */
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);

  json_decode_register(L);
  json_encode_register(L);

  lua_pushvalue(L, module_idx);
  campaign_setfuncs(L, functions, 0);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, NULL);       /* the same value as cjson.null */
  lua_setfield(L, module_idx, "null");
}
