/*
 * campaign.c - luaopen_campaign: the module table, which is also the client's method table.
 * (Skeleton: the client arrives with src/http.c and src/error.c.)
 */
#include "compat.h"
#include "error.h"
#include "json.h"

#define CAMPAIGN_VERSION "0.1.0"

CAMPAIGN_EXPORT int luaopen_campaign(lua_State *L);

CAMPAIGN_EXPORT int luaopen_campaign(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, CAMPAIGN_VERSION);
  lua_setfield(L, -2, "_VERSION");
  campaign_error_register(L, lua_gettop(L));
  campaign_json_register(L, lua_gettop(L));
  return 1;
}
