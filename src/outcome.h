/*
 * outcome.h - what an attempt ended with, whatever transport ran it: a response (status,
 * body bytes, a header lookup) or a transport failure (kind, message, transient, never sent).
 * The libcurl drivers build one from their transfer (result.c, campaign_outcome_of_transfer),
 * campaign._core from what campaign.ngx's transport returned (core.c); the decision
 * (exchange.c, campaign_exchange_next) and the result (result.c, campaign_outcome_push) read
 * only this. Types only.
 */
#ifndef CAMPAIGN_OUTCOME_H
#define CAMPAIGN_OUTCOME_H

#include <stddef.h>

#include "compat.h"

typedef struct campaign_outcome {
  const char *kind;       /* NULL: a response came back; else "network", "timeout", "tls",
                             "too_large" or "interrupted" */
  const char *message;    /* a failure's message */
  int transient;          /* a failure that may be retried: a connection failure, a timeout */
  int never_sent;         /* a failure before any byte of the request left the machine */
  long long curl_code;    /* libcurl's code of a failure, or -1 (another transport) */
  long status;            /* a response's status */
  const char *body;       /* a response's body bytes (NULL: none) */
  size_t body_len;
  /* The value of a response header (lower-case name; the first one), or NULL; and the headers
   * as a Lua table (lower-case names, repeats joined by ", "). ctx is theirs. */
  const char *(*header)(const void *ctx, const char *name, size_t *len);
  void (*push_headers)(lua_State *L, const void *ctx);
  const void *ctx;
  long new_connections;   /* res.new_connections of a 2xx, or -1: unknown */
  const char *http_version; /* res.http_version of a 2xx, or NULL: unknown */
} campaign_outcome;

#endif /* CAMPAIGN_OUTCOME_H */
