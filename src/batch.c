/*
 * batch.c - client:batch(requests, {concurrency = 16, on_result = fn}) on libcurl multi.
 *
 * `requests` is a list or a source function. A list: every request is validated and encoded
 * before the first transfer starts (a misuse raises and nothing is sent), the results come back
 * as a list. A source: it is called, protected and between libcurl calls, each time a slot is
 * free (and pacing allows); it returns the next request, nil at the end, or false ("nothing
 * ready until one in flight settles"). Its results go only to on_result (nothing is collected,
 * so memory stays flat however long the stream) and at most STREAM_LIVE x concurrency items
 * are held at once (in flight or waiting for a retry). Up to `concurrency` transfers run at once, each on a pooled easy handle
 * kept in the client (connections stay alive across batches). A transfer waiting for its retry
 * holds no slot: it is scheduled at a time and the loop sleeps in curl_multi_poll until then or
 * until a transfer finishes. Token refreshes, events and on_result run between libcurl calls,
 * never inside its callbacks.
 *
 * The batch driver of exchange.c's attempt cycle (the single call in client.c is the other):
 * each item is a campaign_exchange; exchange.c prepares its attempts and decides what follows
 * each one, this file schedules them on the multi handle. It calls nothing in client.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_options.h"
#include "error.h"
#include "exchange.h"
#include "interrupt.h"
#include "limiter.h"
#include "limiter_lua.h"
#include "pacing.h"
#include "result.h"
#include "retry.h"

enum { ITEM_WAITING, ITEM_RUNNING, ITEM_DONE, ITEM_FREE }; /* WAITING is 0: memset's state */
enum { SOURCE_OPEN, SOURCE_BLOCKED, SOURCE_END };

/* A source's items live in a table of STREAM_LIVE x concurrency slots: those in flight and
 * those waiting for a retry (which hold no transfer) */
#define STREAM_LIVE 2

typedef struct batch_item {
  campaign_exchange x; /* the request and its attempts */
  int state;
  int seq;             /* the index on_result and events get (1-based) */
  double next_at;      /* a scheduled retry may start at this time */
  double started;
  double attempt_at;   /* when its current attempt started (the limiter's latency) */
} batch_item;

void campaign_batch_reset(campaign_client *c) {
  int i;
  for (i = 0; i < c->pool_size; i++) {
    if (c->pool[i]->item >= 0 && c->multi != NULL) curl_multi_remove_handle(c->multi, c->pool[i]->easy);
    c->pool[i]->item = -1;
    campaign_transfer_release(c->pool[i]);
  }
}

/* Grows the pool to n transfers; raises on failure (the pool stays consistent). */
static void ensure_pool(lua_State *L, campaign_client *c, int n) {
  if (c->multi == NULL && (c->multi = curl_multi_init()) == NULL)
    luaL_error(L, "campaign.batch: libcurl could not create a multi handle");
  if (n <= c->pool_size) return;
  {
    campaign_transfer **p = realloc(c->pool, (size_t)n * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    c->pool = p;
  }
  while (c->pool_size < n) {
    campaign_transfer *t = calloc(1, sizeof *t);
    if (t == NULL) luaL_error(L, "not enough memory");
    if (!campaign_transfer_init(t, &c->opt, c->user_agent)) {
      campaign_transfer_free(t);
      free(t);
      luaL_error(L, "campaign.batch: libcurl could not create a handle");
    }
    c->pool[c->pool_size++] = t;
  }
}

typedef struct batch_state {
  lua_State *L;
  campaign_client *c;
  batch_item *items;
  int n;                        /* a list: its length; a source: the items taken so far */
  int cap;                      /* slots in `items` (a list: n) */
  int done, inflight;
  int concurrency;              /* the limit now: fixed, or the limiter's */
  int adaptive;                 /* concurrency = "auto" */
  int most;                     /* the most the limit may be: the pool size */
  campaign_limiter limiter;
  int *retry_list, retry_count; /* items waiting for a scheduled retry */
  int next_new;                 /* a list: first item never started */
  int stream, source;           /* a source function at index 3; its SOURCE_* state */
  int *free_list, free_count;   /* a source: slots of `items` not in use */
  int live;                     /* a source: items taken and not settled */
  int ok, failed;               /* a source: the summary batch returns */
  int results_idx, on_result_idx;
  int token_err_idx;            /* the token provider failed: every item fails with this */
  int sig;                      /* the signal that interrupted the batch, else 0 */
} batch_state;

static void emit(batch_state *b, const char *type, int i, campaign_transfer *t, double wait) {
  campaign_exchange_event(b->L, b->c, 2, &b->items[i].x, type, t, b->items[i].seq, -1, wait);
}

/* Drops every transfer in flight (their connections close; the pool stays usable). */
static void abort_inflight(batch_state *b) {
  campaign_batch_reset(b->c);
  b->inflight = 0;
}

/* Stores result i from the values on top of the stack (body, res) or (nil, err), then calls
 * on_result(i, result). Pops the two values. An error in on_result stops the batch: the
 * transfers in flight are aborted and the callback's error is raised as it is (the stack is
 * restored first: nothing is left behind however many items there are). */
static void finish(batch_state *b, int i, int ok) {
  lua_State *L = b->L;
  int top = lua_gettop(L) - 2;
  if (ok) {
    /* res already holds status, headers, attempts, elapsed and new_connections: it becomes
     * the result (body added, http_version dropped) instead of being copied field by field */
    lua_pushvalue(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "body");
    lua_pushnil(L);
    lua_setfield(L, -2, "http_version");
  } else {
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "err");
    lua_getfield(L, -2, "status");
    lua_setfield(L, -2, "status");
    lua_getfield(L, -2, "headers");
    lua_setfield(L, -2, "headers");
    lua_pushinteger(L, b->items[i].x.attempts);
    lua_setfield(L, -2, "attempts");
  }
  if (b->stream) {
    int k;
    /* the slot is given back before on_result runs (which may let the source go on); its
     * anchors go with it, so a long stream keeps no body of a settled item */
    b->items[i].state = ITEM_FREE;
    b->free_list[b->free_count++] = i;
    b->live--;
    if (ok) b->ok++;
    else b->failed++;
    if (b->source == SOURCE_BLOCKED) b->source = SOURCE_OPEN;
    for (k = 1; k <= 3; k++) {
      lua_pushnil(L);
      lua_rawseti(L, 7, i * 3 + k);
    }
  } else {
    lua_pushvalue(L, -1);
    lua_rawseti(L, b->results_idx, i + 1);
    b->items[i].state = ITEM_DONE;
  }
  b->done++;
  if (b->on_result_idx) {
    lua_pushvalue(L, b->on_result_idx);
    lua_pushinteger(L, b->items[i].seq);
    lua_pushvalue(L, -3);
    lua_pushinteger(L, b->concurrency); /* the limit now (it moves with "auto") */
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
      abort_inflight(b);
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      lua_error(L); /* between libcurl calls: no libcurl frame is unwound */
    }
  }
  lua_settop(L, top);
}

/* The batch is interrupted: the transfers in flight are aborted, then every unfinished item,
 * started or not, gets its `interrupted` result and its on_result call, in index order. */
static void interrupt_rest(batch_state *b) {
  lua_State *L = b->L;
  campaign_client *c = b->c;
  int i, s;
  for (s = 0; s < c->pool_size; s++) {
    campaign_transfer *t = c->pool[s];
    if (t->item < 0) continue;
    i = t->item;
    if (campaign_transfer_maybe_sent(t)) b->items[i].x.sent = 1;
    t->interrupted = b->sig;
    curl_multi_remove_handle(c->multi, t->easy);
    t->item = -1;
    emit(b, "error", i, t, -1);
    campaign_transfer_release(t);
  }
  b->inflight = 0;
  b->retry_count = 0;
  b->next_new = b->n;
  if (b->stream) b->source = SOURCE_END; /* a source is not asked again */
  for (i = 0; !b->stream && i < b->n; i++) {
    if (b->items[i].state == ITEM_DONE) continue;
    campaign_client_interrupted(L, c, &b->items[i].x.r, b->sig, b->items[i].x.attempts,
                                b->items[i].x.sent);
    finish(b, i, 0);
  }
  while (b->stream) { /* in index order, which a source's slots are not: smallest first */
    int k;
    i = -1;
    for (k = 0; k < b->cap; k++) {
      int st = b->items[k].state;
      if (st != ITEM_DONE && st != ITEM_FREE && (i < 0 || b->items[k].seq < b->items[i].seq)) i = k;
    }
    if (i < 0) break;
    campaign_client_interrupted(L, c, &b->items[i].x.r, b->sig, b->items[i].x.attempts,
                                b->items[i].x.sent);
    finish(b, i, 0);
  }
}

static void schedule_retry(batch_state *b, int i, campaign_transfer *t) {
  batch_item *it = &b->items[i];
  double wait;
  it->x.retries_done++;
  wait = campaign_client_wait(b->c, t, it->x.retries_done);
  emit(b, "retry", i, t, wait);
  it->state = ITEM_WAITING;
  it->next_at = campaign_now() + wait;
  b->retry_list[b->retry_count++] = i;
}

/* A transfer finished: retry it, refresh the token and resend it, or record its result. */
static void complete(batch_state *b, campaign_transfer *t, CURLcode code) {
  lua_State *L = b->L;
  campaign_client *c = b->c;
  int i = t->item;
  batch_item *it = &b->items[i];
  double elapsed;
  int ok;
  campaign_exchange_finish(&it->x, t, code);
  if (b->adaptive && !t->interrupted) {
    double now = campaign_now();
    campaign_limiter_outcome o = campaign_limiter_classify(
      code == CURLE_OK ? NULL : code == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network", t->status);
    campaign_limiter_sample(&b->limiter, now, now - it->attempt_at, o, b->inflight);
    b->concurrency = campaign_limiter_limit(&b->limiter);
  }
  t->item = -1;
  b->inflight--;
  curl_multi_remove_handle(c->multi, t->easy);
  elapsed = campaign_now() - it->started;
  if (t->interrupted) { /* aborted by the progress callback: the loop sweeps it with the rest */
    emit(b, "error", i, t, -1);
    if (!b->sig) b->sig = t->interrupted;
    it->state = ITEM_WAITING;
    campaign_transfer_release(t);
    return;
  }
  emit(b, code == CURLE_OK && !t->too_large ? "response" : "error", i, t, -1);
  switch (campaign_exchange_decide(L, c, 2, &it->x, t)) {
    case CAMPAIGN_NEXT_FAILED: /* nil, err on the stack */
      campaign_transfer_release(t);
      finish(b, i, 0);
      return;
    case CAMPAIGN_NEXT_RESEND:
      it->state = ITEM_WAITING;
      it->next_at = 0;
      b->retry_list[b->retry_count++] = i;
      campaign_transfer_release(t);
      return;
    case CAMPAIGN_NEXT_RETRY:
      schedule_retry(b, i, t);
      campaign_transfer_release(t);
      return;
    case CAMPAIGN_NEXT_DONE:
    case CAMPAIGN_NEXT_INTERRUPTED: /* not here: t->interrupted was handled above */
      break;
  }
  ok = campaign_result_push(L, c, t, &it->x.r, it->x.attempts, elapsed);
  campaign_transfer_release(t); /* the answer is in Lua now: a large body is not kept */
  finish(b, i, ok);
}

/* Validates and encodes the request at the top of the stack into item slot i (the request is
 * popped). Stack: 7 the anchors, 9 the encoded bodies by body table. Raises on misuse. */
static void prepare_item(batch_state *b, int i, int seq) {
  static const char *const request_fields[4] = {"method", "path", "body", "opts"};
  lua_State *L = b->L;
  int k;
  /* the name errors start with: formatted in C, not as a Lua string for every request */
  char fname[48];
  const char *method;
  int base = lua_gettop(L) - 1;
  snprintf(fname, sizeof fname, "campaign.batch: request %d", seq);
  if (!lua_istable(L, -1))
    luaL_error(L, "%s must be a table {method, path, body_or_nil, opts_or_nil}", fname);
  /* base + 2..5: method, path, body, options; positional, or named as campaign.ngx accepts */
  for (k = 0; k < 4; k++) {
    lua_rawgeti(L, base + 1, k + 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushstring(L, request_fields[k]);
      lua_rawget(L, base + 1);
    }
  }
  method = campaign_check_method(L, base + 2, fname);
  /* one body table sent to many records (a bulk change) is encoded once */
  lua_pushvalue(L, base + 4); /* base + 6: the body as given */
  if (lua_istable(L, base + 4)) {
    lua_pushvalue(L, base + 4);
    lua_rawget(L, 9);
    if (lua_type(L, -1) == LUA_TSTRING) lua_replace(L, base + 4);
    else lua_pop(L, 1);
  }
  memset(&b->items[i], 0, sizeof b->items[i]);
  b->items[i].seq = seq;
  campaign_request_prepare(L, b->c, fname, method, base + 3, base + 4, base + 5, 0, 7, i,
                           &b->items[i].x.r);
  if (lua_istable(L, base + 4)) { /* encoded now: remember it */
    lua_pushvalue(L, base + 6);
    lua_rawgeti(L, 7, i * 3 + 2);
    lua_rawset(L, 9);
  }
  lua_settop(L, base);
}

/* Asks the source (index 3) for its next request, protected. Returns the slot it was prepared
 * in, or -1 (the source ended, or has nothing ready: b->source says which). Its error stops
 * the batch as one of on_result does: the transfers in flight are aborted, the error raised. */
static int pull(batch_state *b) {
  lua_State *L = b->L;
  int i;
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    abort_inflight(b);
    lua_error(L); /* between libcurl calls: no libcurl frame is unwound */
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    b->source = SOURCE_END;
    return -1;
  }
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    if (b->live == 0) {
      abort_inflight(b);
      luaL_error(L, "campaign.batch: the source returned false (wait for a result) with no request "
                    "in flight or waiting for a retry: it would wait forever");
    }
    b->source = SOURCE_BLOCKED;
    return -1;
  }
  if (!lua_istable(L, -1)) {
    const char *tn = luaL_typename(L, -1);
    abort_inflight(b);
    luaL_error(L, "campaign.batch: the source returned a %s (a request table, false for \"not yet\", "
                  "or nil at the end)", tn);
  }
  i = b->free_list[--b->free_count];
  b->n++;
  b->live++;
  prepare_item(b, i, b->n);
  return i;
}

/* The next item allowed to start now, or -1. Scheduled retries first (they are older); then
 * a list's next item, or the source's (only while a slot of the live table is free). */
static int next_ready(batch_state *b, double now) {
  int k;
  for (k = 0; k < b->retry_count; k++) {
    int i = b->retry_list[k];
    if (b->items[i].next_at <= now) {
      b->retry_list[k] = b->retry_list[--b->retry_count];
      return i;
    }
  }
  if (b->stream) {
    if (b->source == SOURCE_OPEN && b->free_count > 0) return pull(b);
    return -1;
  }
  if (b->next_new < b->n) return b->next_new++;
  return -1;
}

/* More items may come: a list's never started, or a source not ended nor blocked. */
static int more_to_start(const batch_state *b) {
  return b->stream ? b->source == SOURCE_OPEN && b->free_count > 0 : b->next_new < b->n;
}

static void start(batch_state *b, int i) {
  campaign_client *c = b->c;
  batch_item *it = &b->items[i];
  campaign_transfer *t = NULL;
  int s;
  for (s = 0; s < c->pool_size; s++) {
    if (c->pool[s]->item < 0) {
      t = c->pool[s];
      break;
    }
  }
  if (t == NULL) luaL_error(b->L, "campaign.batch: no free transfer (internal error)");
  campaign_exchange_prepare(b->L, c, &it->x, t);
  it->state = ITEM_RUNNING;
  it->attempt_at = campaign_now();
  if (it->x.attempts == 1) it->started = campaign_now();
  emit(b, "request", i, NULL, -1);
  t->item = i;
  if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
    t->item = -1;
    luaL_error(b->L, "campaign.batch: libcurl could not start a transfer");
  }
  b->inflight++;
}

/* The batch is over: a list's results, or a source's summary. */
static int batch_return(batch_state *b) {
  lua_State *L = b->L;
  lua_settop(L, 8);
  if (b->stream) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, b->n);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, b->ok);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, b->failed);
    lua_setfield(L, -2, "failed");
    if (b->sig) {
      lua_pushinteger(L, b->sig);
      lua_setfield(L, -2, "interrupted");
    }
  }
  return 1;
}

/* Stack: 1 spec, 2 self, 3 requests, 4 opts. Returns the results list. */
int campaign_batch_run(lua_State *L) {
  campaign_client *c = lua_touserdata(L, 2);
  batch_state b;
  int i, n;
  memset(&b, 0, sizeof b);
  b.L = L;
  b.c = c;
  b.concurrency = 16;
  lua_settop(L, 4);
  /* every per-item step below pops what it pushed; the deepest one (a request's query, headers
   * and URL while 9 fixed slots are held) needs about 22 slots: ask for them, do not rely on
   * LUA_MINSTACK */
  luaL_checkstack(L, 40, "campaign.batch");
  {
    campaign_batch_options o;
    campaign_batch_options_parse(L, "campaign.batch", 3, 4, &o);
    b.stream = o.stream;
    b.adaptive = o.adaptive;
    b.concurrency = o.concurrency;
    if (o.adaptive) {
      campaign_limiter_init(&b.limiter, o.limit_start, 1, o.limit_max);
      b.concurrency = campaign_limiter_limit(&b.limiter);
      b.most = o.limit_max;
    }
    if (o.has_on_result) lua_getfield(L, 4, "on_result");
    else lua_pushnil(L);
  }
  b.on_result_idx = lua_isnil(L, 5) ? 0 : 5; /* 5: on_result */
  n = b.stream ? 0 : (int)campaign_rawlen(L, 3);
  b.n = n;
  if (!b.adaptive) b.most = b.concurrency;
  b.cap = b.stream ? STREAM_LIVE * b.most : n;
  /* 6: items, the retry list and (a source) the free list, owned by Lua */
  {
    int cap = b.cap > 0 ? b.cap : 1;
    b.items = lua_newuserdata(L, (size_t)cap * (sizeof(batch_item) + 2 * sizeof(int)));
    b.retry_list = (int *)(void *)(b.items + cap);
    b.free_list = b.retry_list + cap;
    memset(b.items, 0, (size_t)cap * sizeof(batch_item));
  }
  if (b.stream) {
    for (i = 0; i < b.cap; i++) {
      b.items[i].state = ITEM_FREE;
      b.free_list[i] = b.cap - 1 - i; /* slot 0 first */
    }
    b.free_count = b.cap;
  }
  lua_newtable(L); /* 7: anchors of URLs, bodies, headers */
  lua_createtable(L, b.stream ? 0 : n, 0); /* 8: results (a source: unused) */
  b.results_idx = 8;
  lua_newtable(L); /* 9: encoded bodies by body table */
  if (b.stream) { /* weak keys: a body table no item uses any more is not kept */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    prepare_item(&b, i, i + 1);
  }
  if (!b.stream && n == 0) return batch_return(&b);
  if ((b.sig = campaign_signal_pending()) != 0) { /* nothing is sent, no token is asked for */
    interrupt_rest(&b);
    return batch_return(&b);
  }
  if (!b.stream && b.most > n) b.most = n;
  if (!b.stream && b.concurrency > n) b.concurrency = n;
  ensure_pool(L, c, b.most);
  if (!campaign_client_token(L, c, 2, 0)) /* no token: every request fails the same way */
    b.token_err_idx = lua_gettop(L);    /* 10: the error */
  for (;;) {
    double now = campaign_now();
    /* with the handlers installed, a poll wakes at least every 100 ms to look at the flag (a
     * signal delivered to another thread does not interrupt it) */
    int running = 0, queued = 0, timeout_ms = campaign_signal_trapped() ? 100 : 1000, k;
    double pace_due;
    CURLMsg *msg;
    if (b.stream ? b.source == SOURCE_END && b.live == 0 : b.done >= n) break;
    if (!b.sig) b.sig = campaign_signal_pending();
    if (b.sig) {
      interrupt_rest(&b);
      break;
    }
    pace_due = 0;
    while (b.inflight < b.concurrency && b.inflight < c->pool_size) {
      int next;
      if (b.token_err_idx) { /* every item fails with the provider's error, none is sent */
        if ((next = next_ready(&b, now)) < 0) break;
        b.items[next].x.attempts = 0;
        lua_pushnil(L);
        lua_pushvalue(L, b.token_err_idx);
        finish(&b, next, 0);
        continue;
      }
      /* no transfer starts without a pacing slot: the loop polls until the next one is due
       * (the transfers running meanwhile go on) */
      if (c->opt.rate > 0 &&
          (pace_due = campaign_pacing_due(c->tat, now, c->opt.rate, c->opt.burst)) > 0)
        break;
      if ((next = next_ready(&b, now)) < 0) break;
      /* a spent budget fails the item before sending, and takes no pacing slot */
      if (!campaign_client_budget(L, c, 2, &b.items[next].x.r, b.items[next].x.attempts)) {
        lua_pushnil(L);
        lua_insert(L, -2);
        finish(&b, next, 0);
        continue;
      }
      /* a signal caught while the source or a budget hook ran: this item does not start (the
       * sweep at the top of the loop answers it as never sent) */
      if ((b.sig = campaign_signal_pending()) != 0) break;
      if (c->opt.rate > 0) (void)campaign_pacing_take(&c->tat, now, c->opt.rate, c->opt.burst);
      start(&b, next);
    }
    if (b.stream ? b.source == SOURCE_END && b.live == 0 : b.done >= n) break;
    if (b.sig) continue; /* swept at the top of the loop */
    curl_multi_perform(c->multi, &running);
    while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
      if (msg->msg == CURLMSG_DONE) {
        campaign_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)(void *)&t);
        complete(&b, t, msg->data.result);
      }
    }
    if (b.stream ? b.source == SOURCE_END && b.live == 0 : b.done >= n) break;
    if (b.sig) continue; /* swept at the top of the loop, without waiting */
    /* a settle may have let the source go on: no sleep before asking it */
    if (b.stream && more_to_start(&b) && b.inflight < b.concurrency && c->opt.rate <= 0) continue;
    now = campaign_now();
    if (b.inflight < b.concurrency) {
      if (c->opt.rate > 0) pace_due = campaign_pacing_due(c->tat, now, c->opt.rate, c->opt.burst);
      if (more_to_start(&b) && pace_due * 1000 < timeout_ms)
        timeout_ms = pace_due <= 0 ? 0 : (int)(pace_due * 1000) + 1;
      for (k = 0; k < b.retry_count; k++) {
        double at = b.items[b.retry_list[k]].next_at, ms;
        if (at < now + pace_due) at = now + pace_due; /* a retry waits for its slot as well */
        ms = (at - now) * 1000;
        if (ms < timeout_ms) timeout_ms = ms <= 0 ? 0 : (int)ms + 1;
      }
    }
    if (timeout_ms > 0) curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
  }
  return batch_return(&b);
}
