/*
 * exchange.h - one request's exchange with the server, for both drivers of libcurl: the single
 * call (client.c, curl_easy_perform) and batch (batch.c, curl_multi). src/exchange.c owns
 * validating a request, the token, events and the budget, and the attempt cycle: prepare an
 * attempt, finish it, decide what comes next (done, retry, resend with a new token, fail).
 * The drivers own how a transfer runs and how they wait (a sleep, or a scheduled retry).
 */
#ifndef CAMPAIGN_EXCHANGE_H
#define CAMPAIGN_EXCHANGE_H

#include "client_state.h"
#include "outcome.h"

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

/* ---- the request ---- */

/* The canonical method name (GET POST PUT PATCH DELETE HEAD OPTIONS, any case) of the string
 * at idx; raises "<fname>: ..." otherwise. */
const char *campaign_check_method(lua_State *L, int idx, const char *fname);

/* Validates one request (method, path at path_idx, body at body_idx or 0, per-request options
 * at opts_idx or 0; allow_body: opts may carry `body`) and fills r. The strings it makes are
 * stored in the table at anchor_idx under keys slot*3+1 .. slot*3+3. Raises on misuse. */
void campaign_request_prepare(lua_State *L, campaign_client *c, const char *fname,
                              const char *method, int path_idx, int body_idx, int opts_idx,
                              int allow_body, int anchor_idx, int slot, campaign_request *r);

/* ---- token, events, budget (self_idx: the client userdata) ---- */

/* Asks the provider (if any) for a token, protected. Returns 1 on success (c->token set), else
 * pushes an error object of kind "auth" (or the provider's own error object) and returns 0. */
int campaign_client_token(lua_State *L, campaign_client *c, int self_idx, int force);

/* Reads a token provider's answer. ok: its lua_pcall succeeded, and its two results are on top
 * (else its error is). Returns 1 with *tok (len bytes, in the stack's string) and *expires_in
 * (seconds the token lasts, 0: not said), or pushes the error object (the provider's own, or
 * kind "auth") on top and returns 0. [-0, +(0|1|2), m] */
int campaign_token_read(lua_State *L, int ok, const char **tok, size_t *len, double *expires_in);

/* Frees a secret (the token) after overwriting its bytes. NULL is a no-op. */
void campaign_secret_free(char *s);

/* Sets t's request headers for r with the current token (reusing the list when unchanged). */
void campaign_client_headers(lua_State *L, campaign_client *c, campaign_transfer *t,
                             const campaign_request *r);

/* Pushes the event table of ev (design.md's shape). [-0, +1, m] */
void campaign_event_push(lua_State *L, const campaign_event *ev);

/* Calls on_event(ev) if set, protected; an error in it is ignored. */
void campaign_client_event(lua_State *L, campaign_client *c, int self_idx, const campaign_event *ev);

/* Pushes nil and the error object of kind "interrupted" (message "interrupted by SIGINT", the
 * request located, attempts, sent, signal). sent: an attempt may have left the machine. */
void campaign_client_interrupted(lua_State *L, campaign_client *c, const campaign_request *r,
                                 int sig, int attempts, int sent);

/* Before an attempt goes out: takes one call of the budget (if any). Returns 1 when it may be
 * sent, else pushes the error object of kind "budget" (located, attempts, sent = false) and
 * returns 0. A budget hook (the rolling form) runs protected; its failure refuses the call. */
int campaign_client_budget(lua_State *L, campaign_client *c, int self_idx,
                           const campaign_request *r, int attempts);

/* ---- the attempt cycle ---- */

/* One request and its attempts so far, whichever driver runs them. */
typedef struct campaign_exchange {
  campaign_request r;
  int attempts;       /* attempts started, libcurl's own resends included */
  int retries_done;
  int refreshed;      /* the one token refresh after a 401 is spent */
  int sent;           /* an attempt may have left the machine (the `sent` of an interrupt) */
  unsigned token_gen; /* token generation its last attempt was sent with */
} campaign_exchange;

/* What follows a finished attempt. */
typedef enum {
  CAMPAIGN_NEXT_DONE,        /* final: campaign_result_push makes the answer */
  CAMPAIGN_NEXT_RETRY,       /* retry after campaign_client_wait(c, t, ++retries_done) */
  CAMPAIGN_NEXT_RESEND,      /* a 401: resend now (with the new token, if this one asked) */
  CAMPAIGN_NEXT_FAILED,      /* the token refresh failed: nil, err (status 401) are pushed */
  CAMPAIGN_NEXT_INTERRUPTED  /* aborted in flight by a signal (t->interrupted) */
} campaign_next;

/* The transport-neutral decision after an attempt (whichever driver ran it). */
typedef enum {
  CAMPAIGN_STEP_DONE,    /* final: campaign_outcome_push makes the answer */
  CAMPAIGN_STEP_RETRY,   /* retry after campaign_outcome_wait(c, o, ++retries_done) */
  CAMPAIGN_STEP_REFRESH  /* a 401 with a token provider: a new token, then resend (once) */
} campaign_step;

/* By the status or the transport failure, the method, the retries left and the 401 rule
 * (marks x->refreshed). Calls nothing: no I/O, no Lua. */
campaign_step campaign_exchange_next(const campaign_client *c, campaign_exchange *x,
                                     const campaign_outcome *o);
/* Fills ev for event `type` of x after outcome o (or NULL: a "request" event). */
void campaign_outcome_event(campaign_event *ev, const campaign_exchange *x, const char *type,
                            const campaign_outcome *o, int index, double elapsed, double wait);

/* Counts the attempt and readies t for it: headers with the current token, method, URL, body. */
void campaign_exchange_prepare(lua_State *L, campaign_client *c, campaign_exchange *x,
                               campaign_transfer *t);
/* Records libcurl's result of the attempt on t (its own resends, whether it may have gone out). */
void campaign_exchange_finish(campaign_exchange *x, campaign_transfer *t, CURLcode code);
/* Emits event `type` for x (t: the finished attempt, or NULL; index: batch's, else 0;
 * elapsed, wait: < 0 for none). */
void campaign_exchange_event(lua_State *L, campaign_client *c, int self_idx,
                             const campaign_exchange *x, const char *type,
                             const campaign_transfer *t, int index, double elapsed, double wait);
/* The decision after an attempt finished (and its response or error event went out): by the
 * status or the transport failure, the method, the retries left and the 401 rule. May call the
 * token provider (CAMPAIGN_NEXT_FAILED: nil, err pushed). */
campaign_next campaign_exchange_decide(lua_State *L, campaign_client *c, int self_idx,
                                       campaign_exchange *x, const campaign_transfer *t);

#endif /* CAMPAIGN_EXCHANGE_H */
