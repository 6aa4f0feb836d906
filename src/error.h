/*
 * error.h - the error object of design.md: a table with the "campaign.Error" metatable whose
 * __tostring gives one line. Fields: kind, status, code, message, method, url, body,
 * retry_after, attempts, request_id, codes, mismatches (see docs/errors.md).
 */
#ifndef CAMPAIGN_ERROR_H
#define CAMPAIGN_ERROR_H

#include "compat.h"

#define CAMPAIGN_ERROR_MT "campaign.Error"

/* Creates the metatable; called once from luaopen_campaign. [-0, +0, m] */
void campaign_error_register(lua_State *L, int module_idx);

/* Pushes a new error object {kind = kind, message = message}; more fields may be set on it
 * with lua_setfield afterwards. [-0, +1, m] */
void campaign_error_new(lua_State *L, const char *kind, const char *message);

#endif /* CAMPAIGN_ERROR_H */
