/*
 * limiter_lua.c - campaign._limiter{start =, min =, max =}: src/limiter.c's algorithm for Lua
 * (campaign.ngx's batch with concurrency = "auto", and the unit specs with synthetic samples).
 * Internal: it may change.
 */
#include <string.h>

#include "limiter.h"
#include "limiter_lua.h"
#include "retry.h"

#define LIMITER_MT "campaign.Limiter"

static double bound_opt(lua_State *L, const char *name, double dflt) {
  double v;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -1;
  if (v < 1 || v > CAMPAIGN_LIMITER_MAX || v != (double)(int)v)
    luaL_error(L, "campaign._limiter: option '%s' must be an integer from 1 to %d", name,
               CAMPAIGN_LIMITER_MAX);
  lua_pop(L, 1);
  return v;
}

static int limiter_new(lua_State *L) {
  double start, min, max;
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k == NULL || (strcmp(k, "start") != 0 && strcmp(k, "min") != 0 && strcmp(k, "max") != 0))
      luaL_error(L, "campaign._limiter: unknown option '%s'", k ? k : "?");
    lua_pop(L, 1);
  }
  min = bound_opt(L, "min", 1);
  max = bound_opt(L, "max", CAMPAIGN_LIMITER_DEFAULT_MAX);
  start = bound_opt(L, "start", CAMPAIGN_LIMITER_DEFAULT_START < max ? CAMPAIGN_LIMITER_DEFAULT_START : max);
  if (min > max || start < min || start > max)
    luaL_error(L, "campaign._limiter: needs min <= start <= max (got %d, %d, %d)", (int)min,
               (int)start, (int)max);
  campaign_limiter_push(L, start, min, max);
  return 1;
}

void campaign_limiter_push(lua_State *L, double start, double min, double max) {
  campaign_limiter *l = lua_newuserdata(L, sizeof *l);
  campaign_limiter_init(l, start, min, max);
  luaL_getmetatable(L, LIMITER_MT);
  lua_setmetatable(L, -2);
}

static int limiter_limit(lua_State *L) {
  campaign_limiter *l = luaL_checkudata(L, 1, LIMITER_MT);
  lua_pushinteger(L, campaign_limiter_limit(l));
  return 1;
}

/* l:sample(rtt, outcome, inflight[, now]) -> limit. outcome: "ok", "overload" (429/503),
 * "timeout", "ignore"; now: seconds on any clock (default: the monotonic clock). */
static int limiter_sample(lua_State *L) {
  static const char *const outcomes[] = {"ok", "overload", "timeout", "ignore", NULL};
  campaign_limiter *l = luaL_checkudata(L, 1, LIMITER_MT);
  double rtt = (double)luaL_checknumber(L, 2);
  int outcome = luaL_checkoption(L, 3, NULL, outcomes);
  lua_Number inflight = luaL_checknumber(L, 4);
  double now = lua_isnoneornil(L, 5) ? campaign_now() : (double)luaL_checknumber(L, 5);
  luaL_argcheck(L, rtt >= 0 && rtt - rtt == 0, 2, "rtt must be a finite number of seconds >= 0");
  luaL_argcheck(L, inflight >= 0 && inflight <= 1e9, 4, "inflight must be a count >= 0");
  luaL_argcheck(L, now - now == 0, 5, "now must be a finite number");
  campaign_limiter_sample(l, now, rtt, (campaign_limiter_outcome)outcome, (int)inflight);
  lua_pushinteger(L, campaign_limiter_limit(l));
  return 1;
}

/* l:state() -> {limit = fractional, smoothed = s, base = s, min =, max =}: for specs and logs. */
static int limiter_state(lua_State *L) {
  campaign_limiter *l = luaL_checkudata(L, 1, LIMITER_MT);
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, (lua_Number)l->limit);
  lua_setfield(L, -2, "limit");
  lua_pushnumber(L, (lua_Number)l->smoothed);
  lua_setfield(L, -2, "smoothed");
  lua_pushnumber(L, (lua_Number)l->base);
  lua_setfield(L, -2, "base");
  lua_pushinteger(L, (lua_Integer)l->min);
  lua_setfield(L, -2, "min");
  lua_pushinteger(L, (lua_Integer)l->max);
  lua_setfield(L, -2, "max");
  return 1;
}

void campaign_limiter_register(lua_State *L, int module_idx) {
  module_idx = campaign_absindex(L, module_idx);
  if (luaL_newmetatable(L, LIMITER_MT)) {
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, limiter_limit);
    lua_setfield(L, -2, "limit");
    lua_pushcfunction(L, limiter_sample);
    lua_setfield(L, -2, "sample");
    lua_pushcfunction(L, limiter_state);
    lua_setfield(L, -2, "state");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, limiter_new);
  lua_setfield(L, module_idx, "_limiter");
}
