/* json.c - placeholder so the scaffold links; the real codec replaces this file. */
#include "json.h"
void campaign_json_register(lua_State *L, int module_idx) { (void)L; (void)module_idx; }
void campaign_json_encode(lua_State *L, int idx) { (void)idx; luaL_error(L, "campaign.encode: not built yet"); }
int campaign_json_decode(lua_State *L, const char *text, size_t len, char *errbuf, size_t errlen, size_t *offset) {
  (void)L; (void)text; (void)len; (void)offset; if (errlen) errbuf[0] = 0; return 0; }
