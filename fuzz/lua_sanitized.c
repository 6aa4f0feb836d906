/*
 * lua_sanitized.c - a minimal Lua 5.4 interpreter built with AddressSanitizer and UBSan, for
 * scripts/memcheck. The sanitizer runtime is linked into this executable instead of being
 * LD_PRELOADed into the stock lua5.4: a preloaded libasan would also reach every child process
 * the specs start (curl, sh), and curl hangs under it.
 *   lua_sanitized SCRIPT [ARGS...]    runs SCRIPT like `lua5.4 SCRIPT ARGS...` (global `arg`,
 *                                     `...` = ARGS); exits 1 with the message on an error.
 */
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L;
  int i, status;
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", argv[0]);
    return 2;
  }
  L = luaL_newstate();
  if (L == NULL) return 1;
  luaL_openlibs(L);
  lua_createtable(L, argc - 2, 2); /* arg: [-1] interpreter, [0] script, [1..] arguments */
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, traceback);
  status = luaL_loadfile(L, argv[1]);
  if (status == LUA_OK) {
    for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc - 2, 0, 1);
  }
  if (status != LUA_OK) fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
