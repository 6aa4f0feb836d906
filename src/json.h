/*
 * json.h - Lua value <-> JSON (src/json.c), on top of yajl.
 * The rules are design.md's JSON table; docs/json.md explains them for users.
 */
#ifndef CAMPAIGN_JSON_H
#define CAMPAIGN_JSON_H

#include <stddef.h>
#include "compat.h"

/* Registry key of the metatable that marks a table as a JSON array. */
#define CAMPAIGN_ARRAY_MT "campaign.array"

/* Adds encode, decode, null, array, is_array to the table at module_idx.
 * Creates the array metatable in the registry. [-0, +0, m] */
void campaign_json_register(lua_State *L, int module_idx);

/* Encodes the value at idx and pushes the JSON text. Raises a Lua error naming the key path
 * for anything design.md calls unencodable (this is a usage error). [-0, +1, e] */
void campaign_json_encode(lua_State *L, int idx);

/* Decodes len bytes at text and pushes the value; returns 1.
 * On invalid JSON, invalid UTF-8 or depth > 1000 pushes nothing, writes a one-line message that
 * includes the byte offset into errbuf, stores the offset in *offset, and returns 0.
 * Raises only on memory errors, and never while yajl is on the C stack. [-0, +(0|1), m] */
int campaign_json_decode(lua_State *L, const char *text, size_t len,
                         char *errbuf, size_t errlen, size_t *offset);

#endif /* CAMPAIGN_JSON_H */
