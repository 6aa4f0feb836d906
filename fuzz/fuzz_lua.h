/*
 * fuzz_lua.h - what every libFuzzer target here shares: one Lua 5.4 state with the campaign
 * module loaded (the sources in src/ are linked straight into the fuzzer), a Lua checker chunk
 * per target, and the rule that a checker's error starting with "FUZZ-BUG" is a finding
 * (the target aborts, so libFuzzer saves the input), while any other error is an expected
 * refusal of bad input.
 */
#ifndef CAMPAIGN_FUZZ_LUA_H
#define CAMPAIGN_FUZZ_LUA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_campaign(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh state with the standard libraries and `campaign` in package.loaded; the checker
 * chunk is compiled, called with the module, and the function it returns is kept in the
 * registry under "fuzz.check". */
static inline lua_State *fuzz_new_state(const char *checker) {
  lua_State *L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  luaL_requiref(L, "campaign", luaopen_campaign, 1);
  if (luaL_loadstring(L, checker) != LUA_OK) {
    fprintf(stderr, "fuzz: checker does not compile: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: checker failed to load: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.check");
  lua_pop(L, 1);
  return L;
}

/* Calls the checker with the nargs values on top of the stack; aborts on a FUZZ-BUG error. */
static inline void fuzz_check(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.check");
  lua_insert(L, base + 1);
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg && strncmp(msg, "FUZZ-BUG", 8) == 0) {
      fprintf(stderr, "%s\n", msg);
      abort();
    }
  }
  lua_settop(L, base);
}

/* The libFuzzer entry points of a target whose checker receives the input as one string:
 * one lua_State per process, made from the checker's source on the first call. */
#define FUZZ_STRING_TARGET(checker_source)                                   \
  static lua_State *fuzz_L;                                                  \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {                        \
    (void)argc;                                                              \
    (void)argv;                                                              \
    fuzz_L = fuzz_new_state(checker_source);                                 \
    return 0;                                                                \
  }                                                                          \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {             \
    lua_pushlstring(fuzz_L, (const char *)data, size);                       \
    fuzz_check(fuzz_L, 1);                                                   \
    return 0;                                                                \
  }

#endif /* CAMPAIGN_FUZZ_LUA_H */
