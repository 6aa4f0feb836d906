/*
 * campaign.c - luaopen_campaign: the module table, which is also the client's method table
 * (campaign.get(client, p) == client:get(p)). Its metatable loads the Lua layers on first use:
 * campaign.auth, .api, .pages, .workflow, .ngx, .cli (require "campaign.<name>").
 */
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "client.h"
#include "compat.h"
#include "core.h"
#include "error.h"
#include "http_response.h"
#include "json.h"
#include "limiter_lua.h"
#include "pacing.h"
#include "retry.h"
#include "interrupt.h"

CAMPAIGN_EXPORT int luaopen_campaign(lua_State *L);

static const char *const SUBMODULES[] = {"auth", "api", "pages", "workflow", "ngx", "cli", "clock",
                                          NULL};

/* __index(M, name): require "campaign.<name>" for the Lua layers; nil for anything else. */
static int module_index(lua_State *L) {
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  int i;
  for (i = 0; name != NULL && SUBMODULES[i] != NULL; i++) {
    if (strcmp(name, SUBMODULES[i]) == 0) {
      lua_getglobal(L, "require");
      lua_pushfstring(L, "campaign.%s", name);
      lua_call(L, 1, 1);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* campaign.sleep(seconds): blocks the thread (the Lua layers' default wait outside nginx);
 * ends early once trap_signals' handlers caught a signal (the caller asks interrupted()). */
static int module_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in [0, 86400]");
  (void)campaign_signal_sleep((double)s);
  return 0;
}

/* campaign.gettime(): wall-clock Unix time in seconds, with sub-second precision (a default
 * clock for the Lua layers: token expiry and progress rates). */
static int module_gettime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

CAMPAIGN_EXPORT int luaopen_campaign(lua_State *L) {
  int m;
  /* libcurl's global init is not thread safe; doing it here, once per process, before any
   * handle exists is what its documentation asks. Later calls are counted no-ops. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  lua_newtable(L);
  m = lua_gettop(L);
  lua_pushliteral(L, CAMPAIGN_VERSION);
  lua_setfield(L, m, "_VERSION");
  campaign_error_register(L, m);
  campaign_json_register(L, m);
  campaign_client_register(L, m);
  campaign_signal_register(L, m);
  campaign_http_response_register(L, m);
  campaign_core_register(L, m);
  lua_pushcfunction(L, module_sleep);
  lua_setfield(L, m, "sleep");
  lua_pushcfunction(L, module_gettime);
  lua_setfield(L, m, "gettime");
  /* the pacing rule, for campaign.ngx (its state lives in a lua_shared_dict) and the specs */
  lua_pushcfunction(L, campaign_pacing_lua_take);
  lua_setfield(L, m, "_pacing_take");
  /* the adaptive concurrency limit, for campaign.ngx and the specs (batch.c uses it in C) */
  campaign_limiter_register(L, m);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, module_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, m);
  return 1;
}
