/*
 * batch_options.c - client:batch's arguments and options, one rule set for every driver
 * (batch_options.h). No I/O; raises on misuse, before anything is sent.
 */
#include <string.h>

#include "batch_options.h"
#include "client_state.h"
#include "limiter.h"
#include "limiter_lua.h"

/* A bound of "auto": an integer from 1 to max, or 0 when nil. */
static int bounded_int(lua_State *L, int opts_idx, const char *fname, const char *name, int max,
                       int adaptive) {
  double d;
  int v;
  lua_getfield(L, opts_idx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!adaptive) luaL_error(L, "%s: option '%s' needs concurrency = \"auto\"", fname, name);
  d = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -1;
  if (d < 1 || d > max || d != (double)(int)d)
    luaL_error(L, "%s: option '%s' must be an integer from 1 to %d", fname, name, max);
  v = (int)d;
  lua_pop(L, 1);
  return v;
}

void campaign_batch_options_parse(lua_State *L, const char *fname, int req_idx, int opts_idx,
                                  campaign_batch_options *o) {
  static const char *const known[4] = {"concurrency", "on_result", "concurrency_max",
                                       "concurrency_start"};
  memset(o, 0, sizeof *o);
  o->concurrency = 16;
  o->stream = lua_isfunction(L, req_idx);
  if (!o->stream && !lua_istable(L, req_idx))
    luaL_error(L, "%s: bad argument #1 'requests' (a list of requests or a source function "
                  "expected, got %s)", fname, luaL_typename(L, req_idx));
  if (lua_isnoneornil(L, opts_idx)) {
    if (o->stream)
      luaL_error(L, "%s: a source function needs option 'on_result' (its results are not "
                    "collected)", fname);
    return;
  }
  if (!lua_istable(L, opts_idx)) luaL_error(L, "%s: options must be a table", fname);
  lua_pushnil(L);
  while (lua_next(L, opts_idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int i, found = 0;
    for (i = 0; k != NULL && i < 4; i++) found |= strcmp(k, known[i]) == 0;
    if (!found) luaL_error(L, "%s: unknown option '%s'", fname, k ? k : "?");
    lua_pop(L, 1);
  }
  lua_getfield(L, opts_idx, "concurrency");
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0) {
    o->adaptive = 1;
  } else if (!lua_isnil(L, -1)) {
    double d = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -1;
    if (d < 1 || d > CAMPAIGN_MAX_CONCURRENCY || d != (double)(int)d)
      luaL_error(L, "%s: option 'concurrency' must be an integer from 1 to %d, or \"auto\"", fname,
                 CAMPAIGN_MAX_CONCURRENCY);
    o->concurrency = (int)d;
  }
  lua_pop(L, 1);
  {
    int max = bounded_int(L, opts_idx, fname, "concurrency_max", CAMPAIGN_LIMITER_MAX,
                          o->adaptive);
    int start = bounded_int(L, opts_idx, fname, "concurrency_start", CAMPAIGN_LIMITER_MAX,
                            o->adaptive);
    if (o->adaptive) {
      if (!max) max = CAMPAIGN_LIMITER_DEFAULT_MAX;
      if (!start) start = CAMPAIGN_LIMITER_DEFAULT_START < max ? CAMPAIGN_LIMITER_DEFAULT_START : max;
      if (start > max)
        luaL_error(L, "%s: option 'concurrency_start' (%d) must not exceed 'concurrency_max' (%d)",
                   fname, start, max);
      o->limit_max = max;
      o->limit_start = start;
      o->concurrency = start;
    }
  }
  lua_getfield(L, opts_idx, "on_result");
  if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
    luaL_error(L, "%s: option 'on_result' must be a function(i, result)", fname);
  o->has_on_result = lua_isfunction(L, -1);
  lua_pop(L, 1);
  if (o->stream && !o->has_on_result)
    luaL_error(L, "%s: a source function needs option 'on_result' (its results are not "
                  "collected)", fname);
}
