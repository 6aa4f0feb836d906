/*
 * url.h - request URLs: origin checks, percent-encoding of path segments, query tables.
 * Every refusal (a `.` or `..` segment, also percent-encoded; %2F, %5C or a backslash in a
 * segment; a '#'; a control character, CR/LF; another origin) is a usage error: it raises before
 * anything is sent. See docs/client.md "URLs".
 */
#ifndef CAMPAIGN_URL_H
#define CAMPAIGN_URL_H

#include <stddef.h>
#include "buf.h"
#include "compat.h"

/* Parses the scheme and authority of an absolute http(s) URL of len bytes. On success writes the
 * normalised origin "scheme://host:port" (lower case, default port made explicit) to out, stores
 * the offset of the first byte after the authority in *rest and returns 1. Returns 0 when s is
 * not an absolute http or https URL, has user information, an empty host or a bad port, and -1
 * when memory runs out. */
int campaign_url_origin(const char *s, size_t len, campaign_buf *out, size_t *rest);

/* 1 when s starts like an absolute URL ("scheme://"). */
int campaign_url_is_absolute(const char *s, size_t len);

/* Builds the URL of a request into out (NUL-terminated):
 *   path relative  -> root .. encoded path [?verbatim query]
 *   path absolute  -> accepted only when its origin equals `origin`; query kept verbatim
 * then appends the query table at query_idx (0 = none): keys sorted, each value a string,
 * number or boolean, or a list of them (the key repeats). fname prefixes error messages.
 * Raises on misuse. [-0, +0, e] */
void campaign_url_build(lua_State *L, const char *fname, const char *root, const char *origin,
                        const char *path, size_t path_len, int query_idx, campaign_buf *out);

#endif /* CAMPAIGN_URL_H */
