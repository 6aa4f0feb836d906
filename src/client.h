/*
 * client.h - what luaopen_campaign (campaign.c) needs of client.c: the client's methods and
 * metatable. The client's C state is client_state.h's.
 */
#ifndef CAMPAIGN_CLIENT_H
#define CAMPAIGN_CLIENT_H

#include "client_state.h"

/* Adds new, get, patch, post, delete, request, batch, close, url, stats to the module table and
 * creates the client metatable (its __index is the module table). */
void campaign_client_register(lua_State *L, int module_idx);

#endif /* CAMPAIGN_CLIENT_H */
