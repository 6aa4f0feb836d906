/*
 * client.c - the "campaign.Client" userdata: campaign.new, close/__gc/__close, __tostring,
 * stats, url, the method table, the busy guard, and the single-call driver
 * (get/patch/post/delete/request) of exchange.c's attempt cycle. batch is batch.c's, which
 * drives the same cycle on libcurl multi; client.c calls its entry point, never the reverse.
 *
 * Every call runs under a guard (client_guarded): the client is marked busy, the work runs in a
 * protected call, and a Lua error (misuse, memory) is re-raised only after the client is
 * consistent again. libcurl runs with no Lua frame of ours inside it: its callbacks only
 * fill C buffers (http.c).
 */
#include "client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "exchange.h"
#include "interrupt.h"
#include "pacing.h"
#include "result.h"
#include "retry.h"

/* ---- lifetime --------------------------------------------------------------------------- */


/* Frees everything the client owns; safe on a half-built or already closed client. */
static void client_release(campaign_client *c) {
  int i;
  campaign_transfer_free(&c->single);
  for (i = 0; i < c->pool_size; i++) {
    if (c->multi != NULL && c->pool[i]->easy != NULL)
      curl_multi_remove_handle(c->multi, c->pool[i]->easy);
    campaign_transfer_free(c->pool[i]);
    free(c->pool[i]);
  }
  free(c->pool);
  c->pool = NULL;
  c->pool_size = 0;
  if (c->multi != NULL) curl_multi_cleanup(c->multi);
  c->multi = NULL;
  campaign_secret_free(c->token);
  c->token = NULL;
  free(c->user_agent);
  c->user_agent = NULL;
  campaign_options_free(&c->opt);
  campaign_buf_free(&c->url);
  c->open = 0;
}

static campaign_client *check_client(lua_State *L, int idx, const char *fname) {
  campaign_client *c = luaL_checkudata(L, idx, CAMPAIGN_CLIENT_MT);
  if (!c->open) luaL_error(L, "%s: client is closed", fname);
  if (c->busy)
    luaL_error(L, "%s: client is busy (a callback or token provider cannot use its own client)",
               fname);
  return c;
}

static int client_gc(lua_State *L) {
  campaign_client *c = luaL_checkudata(L, 1, CAMPAIGN_CLIENT_MT);
  client_release(c);
  return 0;
}

/* client:close(): frees the handles now; idempotent. Raises when called from inside one of the
 * client's own callbacks (the transfer in progress still needs them). */
static int client_close(lua_State *L) {
  campaign_client *c = luaL_checkudata(L, 1, CAMPAIGN_CLIENT_MT);
  if (c->busy) luaL_error(L, "campaign.close: client is busy (called from its own callback)");
  if (c->open) {
    client_release(c);
    lua_newtable(L); /* drop the provider and on_event references */
    campaign_setuservalue(L, 1);
  }
  return 0;
}

#if CAMPAIGN_HAVE_CLOSE
static int client_toclose(lua_State *L) {
  campaign_client *c = luaL_checkudata(L, 1, CAMPAIGN_CLIENT_MT);
  if (!c->busy) client_release(c);
  return 0;
}
#endif

static int client_tostring(lua_State *L) {
  campaign_client *c = luaL_checkudata(L, 1, CAMPAIGN_CLIENT_MT);
  if (c->open) lua_pushfstring(L, "campaign.Client(%s)", c->opt.org);
  else lua_pushliteral(L, "campaign.Client(closed)");
  return 1;
}

/* campaign.new(opts) -> client. Raises on bad options. */
static int client_new(lua_State *L) {
  campaign_client *c;
  const curl_version_info_data *cv;
  size_t n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  c = campaign_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->single.item = -1;
  campaign_setmetatable(L, CAMPAIGN_CLIENT_MT); /* from here __gc frees what is set below */
  lua_newtable(L);
  lua_pushvalue(L, -1);
  campaign_setuservalue(L, 2);
  campaign_options_parse(L, 1, 3, &c->opt, &c->token);
  if (c->opt.user_agent != NULL) {
    n = strlen(c->opt.user_agent) + 1;
    c->user_agent = malloc(n);
    if (c->user_agent != NULL) memcpy(c->user_agent, c->opt.user_agent, n);
  } else {
    cv = curl_version_info(CURLVERSION_NOW);
    n = sizeof "lua-campaign/ libcurl/ " + strlen(CAMPAIGN_VERSION) + strlen(cv->version) +
        strlen(CAMPAIGN_LUA_RELEASE);
    c->user_agent = malloc(n);
    if (c->user_agent != NULL)
      snprintf(c->user_agent, n, "lua-campaign/%s libcurl/%s %s", CAMPAIGN_VERSION, cv->version,
               CAMPAIGN_LUA_RELEASE);
  }
  if (c->user_agent == NULL) luaL_error(L, "not enough memory");
  if (!campaign_transfer_init(&c->single, &c->opt, c->user_agent))
    luaL_error(L, "campaign.new: libcurl could not create a handle");
  c->rng = campaign_rng_seed(c);
  c->budget_left = c->opt.budget;
  c->open = 1;
  lua_settop(L, 2);
  return 1;
}


/* ---- single calls --------------------------------------------------------------------------- */

typedef struct call_spec {
  const char *fname;
  const char *method;  /* NULL: taken from the arguments (request) */
  int has_body_arg;    /* patch/post: fields argument */
  int allow_body_opt;  /* request: opts.body */
} call_spec;


/* Stack: 1 spec, 2 self, 3 method, 4 path, 5 body, 6 opts. Returns body, res or nil, err.
 * The single-call driver of exchange.c: one easy handle, curl_easy_perform, waits by sleeping. */
static int call_impl(lua_State *L) {
  const call_spec *spec = lua_touserdata(L, 1);
  campaign_client *c = lua_touserdata(L, 2);
  campaign_transfer *t = &c->single;
  campaign_exchange x;
  const char *method = spec->method ? spec->method : campaign_check_method(L, 3, spec->fname);
  int sig;
  double start, t0;
  lua_settop(L, 6);
  luaL_checkstack(L, 40, spec->fname); /* request_prepare, events, results: about 20 slots */
  lua_newtable(L); /* 7: anchor */
  memset(&x, 0, sizeof x);
  campaign_request_prepare(L, c, spec->fname, method, 4, spec->has_body_arg ? 5 : 0, 6,
                           spec->allow_body_opt, 7, 0, &x.r);
  start = campaign_now();
  /* interrupted before it started: nothing is sent, the token provider is not asked */
  if ((sig = campaign_signal_pending()) != 0) {
    campaign_client_interrupted(L, c, &x.r, sig, 0, 0);
    return 2;
  }
  if (!campaign_client_token(L, c, 2, 0)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    campaign_result_locate(L, -1, c, &x.r, 0);
    return 2;
  }
  for (;;) {
    CURLcode code;
    campaign_next next;
    /* a signal caught while the provider or a hook ran, or during the retry wait */
    if ((sig = campaign_signal_pending()) != 0) break;
    /* every attempt (a retry, the resend after a 401) takes a budget call, then a pacing
     * slot (a refused call takes none) */
    if (!campaign_client_budget(L, c, 2, &x.r, x.attempts)) {
      lua_pushnil(L);
      lua_insert(L, -2);
      campaign_transfer_release(t);
      return 2;
    }
    if (c->opt.rate > 0) {
      double wait = campaign_pacing_take(&c->tat, campaign_now(), c->opt.rate, c->opt.burst);
      if (wait > 0 && (sig = campaign_signal_sleep(wait)) != 0) break;
    }
    campaign_exchange_prepare(L, c, &x, t);
    campaign_exchange_event(L, c, 2, &x, "request", NULL, 0, -1, -1);
    t0 = campaign_now();
    code = curl_easy_perform(t->easy);
    campaign_exchange_finish(&x, t, code);
    campaign_exchange_event(L, c, 2, &x, code == CURLE_OK && !t->too_large ? "response" : "error",
                            t, 0, campaign_now() - t0, -1);
    next = campaign_exchange_decide(L, c, 2, &x, t);
    if (next == CAMPAIGN_NEXT_FAILED) {
      campaign_transfer_release(t);
      return 2;
    }
    if (next == CAMPAIGN_NEXT_RESEND) continue;
    if (next == CAMPAIGN_NEXT_INTERRUPTED) { /* aborted in flight by the progress callback */
      sig = t->interrupted;
      break;
    }
    if (next == CAMPAIGN_NEXT_DONE) break;
    x.retries_done++;
    {
      double wait = campaign_client_wait(c, t, x.retries_done);
      campaign_exchange_event(L, c, 2, &x, "retry", t, 0, -1, wait);
      if ((sig = campaign_signal_sleep(wait)) != 0) break; /* the wait is cut short */
    }
  }
  if (sig != 0) campaign_client_interrupted(L, c, &x.r, sig, x.attempts, x.sent);
  else campaign_result_push(L, c, t, &x.r, x.attempts, campaign_now() - start);
  campaign_transfer_release(t); /* the answer is in Lua now */
  return 2;
}

/* Runs impl(spec, self, args...) protected while the client is marked busy; re-raises its
 * error after the client is consistent again. nargs: arguments of the method, self included. */
static int client_guarded(lua_State *L, lua_CFunction impl, const call_spec *spec, int nargs) {
  campaign_client *c = check_client(L, 1, spec->fname);
  int status;
  lua_settop(L, nargs);
  lua_pushcfunction(L, impl);
  lua_insert(L, 1);
  lua_pushlightuserdata(L, (void *)(uintptr_t)spec); /* read-only: impl takes it as const */
  lua_insert(L, 2);
  c->busy = 1;
  status = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  c->busy = 0;
  if (status != LUA_OK) {
    campaign_batch_reset(c);
    campaign_transfer_release(&c->single);
    return lua_error(L);
  }
  return lua_gettop(L);
}

static const call_spec SPEC_GET = {"campaign.get", "GET", 0, 0};
static const call_spec SPEC_DELETE = {"campaign.delete", "DELETE", 0, 0};
static const call_spec SPEC_PATCH = {"campaign.patch", "PATCH", 1, 0};
static const call_spec SPEC_POST = {"campaign.post", "POST", 1, 0};
static const call_spec SPEC_REQUEST = {"campaign.request", NULL, 0, 1};
static const call_spec SPEC_BATCH = {"campaign.batch", NULL, 0, 0};

/* The verbs: (self, path[, fields], opts) becomes call_impl's (self, method, path, body, opts);
 * the method comes from the spec, the body slot stays nil for GET and DELETE. */
static int client_verb(lua_State *L, const call_spec *spec) {
  lua_settop(L, spec->has_body_arg ? 4 : 3);
  lua_pushnil(L);
  lua_insert(L, 2); /* method slot */
  if (!spec->has_body_arg) {
    lua_pushnil(L);
    lua_insert(L, 4); /* body slot */
  }
  return client_guarded(L, call_impl, spec, 5);
}

/* client:get(path[, opts]) */
static int client_get(lua_State *L) { return client_verb(L, &SPEC_GET); }
/* client:delete(path[, opts]) */
static int client_delete(lua_State *L) { return client_verb(L, &SPEC_DELETE); }
/* client:patch(path, fields[, opts]) */
static int client_patch(lua_State *L) { return client_verb(L, &SPEC_PATCH); }
/* client:post(path, fields[, opts]) */
static int client_post(lua_State *L) { return client_verb(L, &SPEC_POST); }

/* client:request(method, path[, opts]) with opts.body */
static int client_request(lua_State *L) {
  lua_settop(L, 4);
  lua_pushnil(L);
  lua_insert(L, 4); /* body slot (opts.body is used) */
  return client_guarded(L, call_impl, &SPEC_REQUEST, 5);
}

/* client:batch(requests[, opts]) */
static int client_batch(lua_State *L) { return client_guarded(L, campaign_batch_run, &SPEC_BATCH, 3); }

/* client:url(path[, opts]) -> the URL a request would use (query included). Raises like a
 * request on a bad path. */
static int client_url(lua_State *L) {
  campaign_client *c = check_client(L, 1, "campaign.url");
  campaign_request r;
  lua_settop(L, 3);
  lua_newtable(L);
  campaign_request_prepare(L, c, "campaign.url", "GET", 2, 0, 3, 0, 4, 0, &r);
  lua_rawgeti(L, 4, 1);
  return 1;
}

/* client:stats() -> {buffered = bytes, transfers = n}: the C memory the client holds for
 * response bodies and headers (allocated capacity, every transfer: the single one and batch's
 * pool), and how many transfers (easy handles) it has. Raises like the other methods on a
 * closed client. */
static int client_stats(lua_State *L) {
  campaign_client *c = luaL_checkudata(L, 1, CAMPAIGN_CLIENT_MT);
  size_t bytes = c->single.body.cap + c->single.head.cap;
  int i;
  if (!c->open) luaL_error(L, "campaign.stats: client is closed");
  for (i = 0; i < c->pool_size; i++) bytes += c->pool[i]->body.cap + c->pool[i]->head.cap;
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_setfield(L, -2, "buffered");
  lua_pushinteger(L, 1 + c->pool_size);
  lua_setfield(L, -2, "transfers");
  return 1;
}

static const luaL_Reg CLIENT_METHODS[] = {
  {"new", client_new},       {"get", client_get},         {"patch", client_patch},
  {"post", client_post},     {"delete", client_delete},   {"request", client_request},
  {"batch", client_batch},   {"close", client_close},     {"url", client_url},
  {"stats", client_stats},   {NULL, NULL}};

void campaign_client_register(lua_State *L, int module_idx) {
  module_idx = campaign_absindex(L, module_idx);
  lua_pushvalue(L, module_idx);
  campaign_setfuncs(L, CLIENT_METHODS, 0);
  lua_pop(L, 1);
  luaL_newmetatable(L, CAMPAIGN_CLIENT_MT);
  lua_pushvalue(L, module_idx);
  lua_setfield(L, -2, "__index"); /* campaign.get(client, p) == client:get(p) */
  lua_pushcfunction(L, client_gc);
  lua_setfield(L, -2, "__gc");
#if CAMPAIGN_HAVE_CLOSE
  lua_pushcfunction(L, client_toclose);
  lua_setfield(L, -2, "__close");
#endif
  lua_pushcfunction(L, client_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, CAMPAIGN_CLIENT_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
