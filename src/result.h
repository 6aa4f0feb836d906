/*
 * result.h - a finished transfer as what a call returns (src/result.c): `body, res` or
 * `nil, err`, and the wait before a retry (Retry-After, backoff). Used by exchange.c.
 */
#ifndef CAMPAIGN_RESULT_H
#define CAMPAIGN_RESULT_H

#include "client_state.h"
#include "outcome.h"

/* After the final attempt: pushes body, res and returns 1, or pushes nil, err and returns 0. */
int campaign_result_push(lua_State *L, campaign_client *c, campaign_transfer *t,
                         const campaign_request *r, int attempts, double elapsed);
/* Pushes the response headers of t as a table (lower-case names, repeats joined by ", "). */
void campaign_result_headers(lua_State *L, const campaign_transfer *t);
/* Sets method, url, path and attempts on the error object at idx. */
void campaign_result_locate(lua_State *L, int idx, campaign_client *c, const campaign_request *r,
                            int attempts);

/* The transport-neutral outcome of a finished transfer (o points into t). */
void campaign_outcome_of_transfer(const campaign_transfer *t, campaign_outcome *o);
/* campaign_result_push for any transport: token is the one the request went out with (a
 * secret to redact from what is copied of the answer), or NULL. */
int campaign_outcome_push(lua_State *L, campaign_client *c, const char *token,
                          const campaign_outcome *o, const campaign_request *r, int attempts,
                          double elapsed);
/* campaign_client_wait for any transport. */
double campaign_outcome_wait(campaign_client *c, const campaign_outcome *o, int n);

/* Seconds to wait before retry n, honouring Retry-After of the last response. */
double campaign_client_wait(campaign_client *c, const campaign_transfer *t, int n);

#endif /* CAMPAIGN_RESULT_H */
