/*
 * client.h - the "campaign.Client" userdata: options, the easy handle kept alive between calls,
 * the multi handle and transfer pool of batch, the current token, the retry PRNG.
 * Lua values (token provider, on_event) live in the userdata's user value table.
 */
#ifndef CAMPAIGN_CLIENT_H
#define CAMPAIGN_CLIENT_H

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

/* A validated request, ready to send. Strings are anchored in a Lua table by the caller. */
typedef struct campaign_request {
  const char *method;        /* upper case */
  const char *url;
  const char *body;          /* NULL: no body */
  size_t body_len;
  const char *extra_headers; /* "Name: value" or "Name;" (empty) lines joined with '\n', or "" */
  int raw;                   /* return the body string instead of decoding it */
} campaign_request;

/* What an event reports (design.md: no header values, no secrets). */
typedef struct campaign_event {
  const char *type;          /* "request" | "response" | "retry" | "error" */
  const char *method, *url;
  long status;               /* 0: none */
  int attempt;
  double elapsed;            /* seconds: this attempt so far (response/error); < 0: none */
  double wait;               /* retry: seconds before the next attempt; < 0: none */
  const char *kind, *message;/* error/retry after a failed transfer, else NULL */
  int index;                 /* batch: request index (1-based); 0: none */
} campaign_event;

/* The canonical method name (GET POST PUT PATCH DELETE HEAD OPTIONS, any case) of the string
 * at idx; raises "<fname>: ..." otherwise. */
const char *campaign_check_method(lua_State *L, int idx, const char *fname);

/* Validates one request (method, path at path_idx, body at body_idx or 0, per-request options
 * at opts_idx or 0; allow_body: opts may carry `body`) and fills r. The strings it makes are
 * stored in the table at anchor_idx under keys slot*3+1 .. slot*3+3. Raises on misuse. */
void campaign_request_prepare(lua_State *L, campaign_client *c, const char *fname,
                              const char *method, int path_idx, int body_idx, int opts_idx,
                              int allow_body, int anchor_idx, int slot, campaign_request *r);

/* Asks the provider (if any) for a token, protected. Returns 1 on success (c->token set), else
 * pushes an error object of kind "auth" (or the provider's own error object) and returns 0.
 * self_idx: the client userdata. */
int campaign_client_token(lua_State *L, campaign_client *c, int self_idx, int force);

/* Sets t's request headers for r with the current token (reusing the list when unchanged). */
void campaign_client_headers(lua_State *L, campaign_client *c, campaign_transfer *t,
                             const campaign_request *r);

/* Calls on_event(ev) if set, protected; an error in it is ignored. */
void campaign_client_event(lua_State *L, campaign_client *c, int self_idx, const campaign_event *ev);

/* After the final attempt: pushes body, res and returns 1, or pushes nil, err and returns 0. */
int campaign_result_push(lua_State *L, campaign_client *c, campaign_transfer *t,
                         const campaign_request *r, int attempts, double elapsed);
/* Pushes the response headers of t as a table (lower-case names, repeats joined by ", "). */
void campaign_result_headers(lua_State *L, const campaign_transfer *t);
/* Sets method, url, path and attempts on the error object at idx. */
void campaign_result_locate(lua_State *L, int idx, campaign_client *c, const campaign_request *r,
                            int attempts);

/* Pushes nil and the error object of kind "interrupted" (message "interrupted by SIGINT", the
 * request located, attempts, sent, signal). sent: an attempt may have left the machine. */
void campaign_client_interrupted(lua_State *L, campaign_client *c, const campaign_request *r,
                                 int sig, int attempts, int sent);

/* Before an attempt goes out: takes one call of the budget (if any). Returns 1 when it may be
 * sent, else pushes the error object of kind "budget" (located, attempts, sent = false) and
 * returns 0. A budget hook (the rolling form) runs protected; its failure refuses the call. */
int campaign_client_budget(lua_State *L, campaign_client *c, int self_idx,
                           const campaign_request *r, int attempts);

/* Seconds to wait before retry n, honouring Retry-After of the last response. */
double campaign_client_wait(campaign_client *c, const campaign_transfer *t, int n);

/* Adds new, get, patch, post, delete, request, batch, close, url to the module table and
 * creates the client metatable (its __index is the module table). */
void campaign_client_register(lua_State *L, int module_idx);

/* client:batch(requests, opts) (src/batch.c); runs inside the client's busy guard. */
int campaign_batch_run(lua_State *L);
/* Detaches every pool transfer from the multi handle (after an error inside batch). */
void campaign_batch_reset(campaign_client *c);

#endif /* CAMPAIGN_CLIENT_H */
