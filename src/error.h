/*
 * error.h - the error object of design.md: a table with the "campaign.Error" metatable whose
 * __tostring gives one line. Fields: kind, status, code, message, method, url, path, body,
 * retry_after, attempts, request_id, codes, headers, mismatches (see docs/errors.md).
 */
#ifndef CAMPAIGN_ERROR_H
#define CAMPAIGN_ERROR_H

#include "compat.h"

#define CAMPAIGN_ERROR_MT "campaign.Error"

/* Creates the metatable and adds error(fields) and is_error(v) to the module table at
 * module_idx; called once from luaopen_campaign. [-0, +0, m] */
void campaign_error_register(lua_State *L, int module_idx);

/* Pushes a new error object {kind = kind, message = message}; more fields may be set on it
 * with lua_setfield afterwards. [-0, +1, m] */
void campaign_error_new(lua_State *L, const char *kind, const char *message);

/* Sets err.codes (at idx) to the list of ACS codes (`RST-360011`, `XTK-170036`, any
 * `[A-Z]{3}-\d{6}`) found in err.message, in order. [-0, +0, m] */
void campaign_error_set_codes(lua_State *L, int idx);

/* The reason phrase of an HTTP status ("Not Found"), or "" when unknown. */
const char *campaign_reason_phrase(long status);

/* 1 when the value at idx is an error object. */
int campaign_is_error(lua_State *L, int idx);

#endif /* CAMPAIGN_ERROR_H */
