/* error.c - the error object (minimal first version; see error.h). */
#include "error.h"

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "campaign: %s", luaL_optstring(L, -1, "error"));
  return 1;
}

void campaign_error_register(lua_State *L, int module_idx) {
  (void)module_idx;
  luaL_newmetatable(L, CAMPAIGN_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void campaign_error_new(lua_State *L, const char *kind, const char *message) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  campaign_setmetatable(L, CAMPAIGN_ERROR_MT);
}
