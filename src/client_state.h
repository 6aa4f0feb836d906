/*
 * client_state.h - the C state of a "campaign.Client" userdata: options, the easy handle kept
 * alive between calls, the multi handle and transfer pool of batch, the current token, the
 * retry PRNG, pacing and budget; and the validated request. Types and constants only:
 * client.c creates and frees the state; exchange.c, batch.c and result.c read and update it. Lua values (token provider, on_event)
 * live in the userdata's user value table.
 */
#ifndef CAMPAIGN_CLIENT_STATE_H
#define CAMPAIGN_CLIENT_STATE_H

#include <stdint.h>
#include <curl/curl.h>

#include "buf.h"
#include "compat.h"
#include "http.h"
#include "options.h"

/* The release comes from CMakeLists.txt's project(VERSION), as a -D: the one place it is
 * written. A build that bypasses cmake (the fuzz targets) names no release: 0.0.0. */
#ifndef CAMPAIGN_VERSION
#  define CAMPAIGN_VERSION "0.0.0"
#endif
#define CAMPAIGN_CLIENT_MT "campaign.Client"
#define CAMPAIGN_MAX_CONCURRENCY 256

typedef struct campaign_client {
  campaign_options opt;
  campaign_transfer single;  /* single calls: one easy handle, kept alive */
  CURLM *multi;              /* batch: created on first use */
  campaign_transfer **pool;  /* batch: one transfer per concurrent request, reused (each
                                malloc'd: libcurl keeps pointers to them) */
  int pool_size;
  char *token;               /* the current bearer token (wiped before it is freed) */
  unsigned token_gen;        /* bumped on every refresh, so a batch refreshes once per 401 wave */
  double token_valid_until;  /* campaign_now() until which the provider is not asked again;
                                0: ask before every call (the provider returned no expires_in) */
  char *user_agent;
  uint64_t rng;
  campaign_buf url;          /* scratch for URL building */
  int open;                  /* 0 after close() */
  int busy;                  /* 1 while a call runs: callbacks may not re-enter the client */
  long long budget_left;     /* budget (the in-memory form): calls left */
  double tat;                /* pacing: GCRA's theoretical arrival time (campaign_now clock) */
} campaign_client;

/* A validated request, ready to send (exchange.c's campaign_request_prepare makes it). Strings
 * are anchored in a Lua table by the caller. */
typedef struct campaign_request {
  const char *method;        /* upper case */
  const char *url;
  const char *body;          /* NULL: no body */
  size_t body_len;
  const char *extra_headers; /* "Name: value" or "Name;" (empty) lines joined with '\n', or "" */
  int raw;                   /* return the body string instead of decoding it */
} campaign_request;

#endif /* CAMPAIGN_CLIENT_STATE_H */
