/*
 * compat.h - the one place that knows about Lua versions.
 *
 * Supported: PUC Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1 (OpenResty's, which reports
 * LUA_VERSION_NUM 501). Every other file uses the campaign_* names below and never tests
 * LUA_VERSION_NUM itself.
 */
#ifndef CAMPAIGN_COMPAT_H
#define CAMPAIGN_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifdef CAMPAIGN_LUAJIT
#  include <luajit.h>
#  define CAMPAIGN_LUA_RELEASE LUAJIT_VERSION
#else
#  define CAMPAIGN_LUA_RELEASE LUA_RELEASE
#endif

/* The only symbol the module exports (everything else is hidden by the build). */
#if defined(__GNUC__)
#  define CAMPAIGN_EXPORT __attribute__((visibility("default")))
#else
#  define CAMPAIGN_EXPORT
#endif

#ifndef LUA_OK
#  define LUA_OK 0
#endif

/* 1 when the running Lua has a distinct integer subtype (5.3+). */
#if LUA_VERSION_NUM >= 503
#  define CAMPAIGN_HAVE_INTEGERS 1
#  define campaign_isinteger(L, i) lua_isinteger((L), (i))
#else
#  define CAMPAIGN_HAVE_INTEGERS 0
#  define campaign_isinteger(L, i) 0
#endif

/* 1 when `__close` and to-be-closed variables exist (5.4+). */
#if LUA_VERSION_NUM >= 504
#  define CAMPAIGN_HAVE_CLOSE 1
#else
#  define CAMPAIGN_HAVE_CLOSE 0
#endif

#if LUA_VERSION_NUM >= 502
#  define campaign_rawlen(L, i) lua_rawlen((L), (i))
#  define campaign_absindex(L, i) lua_absindex((L), (i))
#else
#  define campaign_rawlen(L, i) lua_objlen((L), (i))
#  define campaign_absindex(L, i) \
     (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

/* A full userdata with room for one user value (a table). */
#if LUA_VERSION_NUM >= 504
#  define campaign_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#  define campaign_setuservalue(L, i) ((void)lua_setiuservalue((L), (i), 1))
#  define campaign_getuservalue(L, i) ((void)lua_getiuservalue((L), (i), 1))
#elif LUA_VERSION_NUM >= 502
#  define campaign_newuserdata(L, sz) lua_newuserdata((L), (sz))
#  define campaign_setuservalue(L, i) lua_setuservalue((L), (i))
#  define campaign_getuservalue(L, i) ((void)lua_getuservalue((L), (i)))
#else
#  define campaign_newuserdata(L, sz) lua_newuserdata((L), (sz))
#  define campaign_setuservalue(L, i) ((void)lua_setfenv((L), (i)))
#  define campaign_getuservalue(L, i) lua_getfenv((L), (i))
#endif

/* luaL_setfuncs / luaL_testudata / luaL_setmetatable: in 5.2+ and in LuaJIT 2.1. */
#if LUA_VERSION_NUM == 501 && !defined(CAMPAIGN_LUAJIT)
static inline void campaign_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
static inline void *campaign_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}
#  define campaign_setmetatable(L, tname) \
     (luaL_getmetatable((L), (tname)), lua_setmetatable((L), -2))
#else
#  define campaign_setfuncs(L, l, n) luaL_setfuncs((L), (l), (n))
#  define campaign_testudata(L, i, t) luaL_testudata((L), (i), (t))
#  define campaign_setmetatable(L, t) luaL_setmetatable((L), (t))
#endif

/* lua_getfield returns the type from 5.3 on; this wrapper always does. */
static inline int campaign_getfield(lua_State *L, int i, const char *k) {
  lua_getfield(L, i, k);
  return lua_type(L, -1);
}
static inline int campaign_rawgeti(lua_State *L, int i, int n) {
  lua_rawgeti(L, i, n);
  return lua_type(L, -1);
}

#endif /* CAMPAIGN_COMPAT_H */
