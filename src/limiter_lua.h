/* limiter_lua.h - campaign._limiter (src/limiter_lua.c), registered by campaign.c. */
#ifndef CAMPAIGN_LIMITER_LUA_H
#define CAMPAIGN_LIMITER_LUA_H

#include "compat.h"

/* The bound of every limiter option (concurrency_max of batch included). */
#define CAMPAIGN_LIMITER_MAX 256

void campaign_limiter_register(lua_State *L, int module_idx);

/* Pushes a new campaign._limiter object (1 <= min <= start <= max, checked by the caller). */
void campaign_limiter_push(lua_State *L, double start, double min, double max);

#endif /* CAMPAIGN_LIMITER_LUA_H */
