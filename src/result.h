/*
 * result.h - a finished transfer as what a call returns (src/result.c): `body, res` or
 * `nil, err`, and the wait before a retry (Retry-After, backoff). Used by exchange.c.
 */
#ifndef CAMPAIGN_RESULT_H
#define CAMPAIGN_RESULT_H

#include "client_state.h"

/* After the final attempt: pushes body, res and returns 1, or pushes nil, err and returns 0. */
int campaign_result_push(lua_State *L, campaign_client *c, campaign_transfer *t,
                         const campaign_request *r, int attempts, double elapsed);
/* Pushes the response headers of t as a table (lower-case names, repeats joined by ", "). */
void campaign_result_headers(lua_State *L, const campaign_transfer *t);
/* Sets method, url, path and attempts on the error object at idx. */
void campaign_result_locate(lua_State *L, int idx, campaign_client *c, const campaign_request *r,
                            int attempts);

/* Seconds to wait before retry n, honouring Retry-After of the last response. */
double campaign_client_wait(campaign_client *c, const campaign_transfer *t, int n);

#endif /* CAMPAIGN_RESULT_H */
