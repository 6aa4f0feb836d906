/*
 * core.h - campaign._core (src/core.c): the request core's Lua face for drivers that do their
 * own I/O (campaign.ngx).
 */
#ifndef CAMPAIGN_CORE_H
#define CAMPAIGN_CORE_H

#include "compat.h"

/* Creates the core's metatables and sets module._core; called once from luaopen_campaign. */
void campaign_core_register(lua_State *L, int module_idx);

#endif /* CAMPAIGN_CORE_H */
