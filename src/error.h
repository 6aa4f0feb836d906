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

/* Secrets shorter than this are not searched for (a 3-letter "secret" would blank ordinary
 * words); real tokens and API keys are far longer. */
#define CAMPAIGN_SECRET_MIN 8
/* A run of at least this many bytes equal to the start of a secret is a secret's cut prefix. */
#define CAMPAIGN_SECRET_PREFIX 16

/* Pushes the n bytes at s made fit for an error field (docs/errors.md "Text from the server"):
 * every occurrence of a secret (NULL-terminated list; NULL or short entries skipped), and every
 * run of >= CAMPAIGN_SECRET_PREFIX bytes that starts a secret, becomes "<redacted>"; then, with
 * utf8, each byte that does not start well-formed UTF-8 becomes U+FFFD; then the result is cut
 * to at most max bytes (0: no limit) on a character boundary. Without utf8 the bytes are kept
 * as they are, and only a cut inside a well-formed sequence backs off to its start.
 * [-0, +1, m] */
void campaign_error_push_text(lua_State *L, const char *s, size_t n, size_t max, int utf8,
                              const char *const *secrets);

/* The largest cut <= max of s (n bytes) that does not split a well-formed UTF-8 sequence. */
size_t campaign_utf8_cut(const char *s, size_t n, size_t max);

/* The reason phrase of an HTTP status ("Not Found"), or "" when unknown. */
const char *campaign_reason_phrase(long status);

/* 1 when the value at idx is an error object. */
int campaign_is_error(lua_State *L, int idx);

#endif /* CAMPAIGN_ERROR_H */
