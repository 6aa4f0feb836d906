/*
 * core.c - campaign._core: the request core as Lua sees it, for a driver that runs its own I/O
 * (campaign.ngx). It owns no rule of its own: it validates settings with options.c, requests
 * with exchange.c (url.c, json_encode.c), decides with exchange.c's campaign_exchange_next
 * (retry.c's rules, the 401 rule), and makes results and error objects with result.c, reading
 * the transport's answer as a campaign_outcome (outcome.h). It does no I/O and calls no Lua
 * function: the driver calls the token provider, sleeps, emits the events it is handed and
 * runs the transport, so that all of those may yield (cosockets, ngx.sleep).
 *
 *   core = campaign._core(settings, fname[, share_headers])
 *   core:url(fname, path[, opts])                  -> url
 *   core:token(pcall(provider, force))             -> token, expires_in | nil, err
 *   x = core:request(fname, method, path, body, opts[, allow_body[, level]])
 *                      raises on misuse, positioned at `level` (1: the caller; as error())
 *   req, ev = x:attempt(token[, index])            the transport's request table
 *   step, ev, a, b = x:outcome(transport(req))     "done", ev, body|nil, res|err
 *                                                  "retry", ev, wait, retry_ev
 *                                                  "refresh", ev   (a 401: a new token, resend)
 *   concurrency, limiter = core:batch_options(fname, requests, opts[, level])
 *                      (also campaign._batch_options(fname, requests, opts[, level]), no core)
 *                      batch's arguments by batch_options.c (limiter: "auto"'s, else nil)
 *   nil, err = x:refused(message)                  the budget refused the attempt
 *   outcome, rtt = x:lesson()                      the last attempt's load lesson ("auto")
 *   nil, err = x:token_failed(err)                 the token provider failed
 *   campaign._url_split(url)                       -> scheme, host, port, authority, rest
 * ev: the event table for on_event (nil when the settings have no on_event).
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#include "batch_options.h"
#include "client_state.h"
#include "limiter_lua.h"
#include "error.h"
#include "exchange.h"
#include "options.h"
#include "limiter.h"
#include "outcome.h"
#include "result.h"
#include "url.h"
#include "retry.h"

#define CORE_MT "campaign.Core"
#define EXCHANGE_MT "campaign.Exchange"

typedef struct core {
  campaign_client c; /* its options, retry PRNG and URL buffer: no libcurl handle */
  int share_headers; /* one header table per token for requests without extra headers */
} core;

typedef struct exchange {
  campaign_exchange x;
  double started, t0; /* campaign_now() of the first attempt, of this attempt */
  int index;          /* batch position for events, 0: none */
  campaign_limiter_outcome lesson; /* what the last attempt said about the load */
  double lesson_rtt;               /* and how long it took (seconds) */
} exchange;

/* Exchange user value slots: 1..3 the request's strings (campaign_request_prepare's anchor). */
#define X_CORE 4  /* the core: its options outlive the exchange */
#define X_TOKEN 5 /* the token this attempt went out with (a secret to redact) */

static core *check_core(lua_State *L) {
  return luaL_checkudata(L, 1, CORE_MT);
}

static int core_gc(lua_State *L) {
  core *k = luaL_checkudata(L, 1, CORE_MT);
  campaign_options_free(&k->c.opt);
  campaign_buf_free(&k->c.url);
  campaign_secret_free(k->c.token);
  k->c.token = NULL;
  return 0;
}

/* campaign._core(settings, fname[, share_headers]) */
static int core_new(lua_State *L) {
  const char *fname = luaL_optstring(L, 2, "campaign.new");
  core *k;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  k = campaign_newuserdata(L, sizeof *k);
  memset(k, 0, sizeof *k);
  campaign_setmetatable(L, CORE_MT);
  lua_newtable(L); /* user value: what options.c keeps (provider, on_event); the header cache */
  lua_pushvalue(L, -1);
  campaign_setuservalue(L, 4);
  k->share_headers = lua_toboolean(L, 3);
  campaign_options_parse_as(L, 1, 5, &k->c.opt, &k->c.token, fname);
  /* the token provider and on_event are the driver's to call: not kept here */
  lua_pushnil(L);
  lua_setfield(L, 5, "token");
  lua_pushnil(L);
  lua_setfield(L, 5, "on_event");
  k->c.rng = campaign_rng_seed(k);
  k->c.open = 1;
  lua_settop(L, 4);
  return 1;
}

/* core:url(fname, path[, opts]) -> the URL a request would use. */
static int core_url(lua_State *L) {
  core *k = check_core(L);
  const char *fname = luaL_checkstring(L, 2);
  campaign_request r;
  lua_settop(L, 4);
  lua_newtable(L);
  campaign_request_prepare(L, &k->c, fname, "GET", 3, 0, 4, 0, 5, 0, &r);
  lua_rawgeti(L, 5, 1);
  return 1;
}

/* core:token(ok, token_or_err, extra) -> token, expires_in | nil, err: a provider's answer
 * (the results of pcall(provider, force)) read by the rules of the C client. */
static int core_token(lua_State *L) {
  const char *tok = NULL;
  size_t len = 0;
  double expires_in;
  int ok;
  check_core(L);
  ok = lua_toboolean(L, 2);
  lua_settop(L, ok ? 4 : 3);
  if (!campaign_token_read(L, ok, &tok, &len, &expires_in)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushlstring(L, tok, len);
  if (expires_in > 0) lua_pushnumber(L, expires_in);
  else lua_pushnil(L);
  return 2;
}

/* core:request(fname, method, path, body, opts[, allow_body]) -> exchange. Raises on misuse. */
/* campaign_request_prepare's arguments, for request_prepare_protected. */
typedef struct request_args {
  core *k;
  const char *fname, *method;
  int allow_body;
  exchange *e;
} request_args;

/* Stack: 1 the request_args, 2 path, 3 body, 4 opts, 5 the anchor table, 6 the method. Called
 * by lua_pcall from core_request, so that luaL_error's position names core_request (a C
 * function: none). */
static int request_prepare_protected(lua_State *L) {
  request_args *a = lua_touserdata(L, 1);
  a->method = campaign_check_method(L, 6, a->fname);
  campaign_request_prepare(L, &a->k->c, a->fname, a->method, 2, 3, 4, a->allow_body, 5, 0,
                           &a->e->x.r);
  return 0;
}

/* After a failed lua_pcall of a misuse check: the raise made again at `level` (the driver's
 * caller: the user's line), not at the driver's own line that luaL_error would name. */
static int raise_at(lua_State *L, int level) {
  if (lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, level);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* Stack: 1 fname, 2 requests, 3 opts; pushes concurrency and the limiter (or nil). */
static int batch_options_protected(lua_State *L) {
  campaign_batch_options o;
  campaign_batch_options_parse(L, lua_tostring(L, 1), 2, 3, &o);
  lua_pushinteger(L, o.concurrency);
  if (o.adaptive) campaign_limiter_push(L, o.limit_start, 1, o.limit_max);
  else lua_pushnil(L);
  return 2;
}

/* Stack from `first`: fname, requests, opts[, level]; -> concurrency, limiter|nil. */
static int batch_options_from(lua_State *L, int first) {
  int level;
  luaL_checkstring(L, first);
  level = (int)luaL_optinteger(L, first + 3, 1);
  lua_settop(L, first + 2);
  lua_pushcfunction(L, batch_options_protected);
  lua_pushvalue(L, first);
  lua_pushvalue(L, first + 1);
  lua_pushvalue(L, first + 2);
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) return raise_at(L, level);
  return 2;
}

/* core:batch_options(fname, requests, opts[, level]) -> concurrency, limiter|nil. */
static int core_batch_options(lua_State *L) {
  check_core(L);
  return batch_options_from(L, 2);
}

/* campaign._batch_options(fname, requests, opts[, level]): the same rules without a client, for
 * the workflows, which check a batch's options before they read any input. */
static int module_batch_options(lua_State *L) {
  return batch_options_from(L, 1);
}

static int core_request(lua_State *L) {
  core *k = check_core(L);
  const char *fname = luaL_checkstring(L, 2);
  int level = (int)luaL_optinteger(L, 8, 1);
  request_args a;
  exchange *e;
  lua_settop(L, 8);
  e = campaign_newuserdata(L, sizeof *e); /* 9 */
  memset(e, 0, sizeof *e);
  campaign_setmetatable(L, EXCHANGE_MT);
  lua_createtable(L, 5, 0); /* 10: anchor of the request's strings */
  lua_pushvalue(L, 1);
  lua_rawseti(L, 10, X_CORE);
  a.k = k;
  a.fname = fname;
  a.allow_body = lua_toboolean(L, 7);
  a.e = e;
  lua_pushcfunction(L, request_prepare_protected);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_pushvalue(L, 6);
  lua_pushvalue(L, 10);
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 6, 0, 0) != LUA_OK) return raise_at(L, level);
  lua_pushvalue(L, 10);
  campaign_setuservalue(L, 9);
  lua_pushvalue(L, 9);
  return 1;
}

static exchange *check_exchange(lua_State *L, core **k) {
  exchange *e = luaL_checkudata(L, 1, EXCHANGE_MT);
  campaign_getuservalue(L, 1);
  lua_rawgeti(L, -1, X_CORE);
  *k = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return e;
}

/* Pushes the header table of a request: Authorization (token: NULL for none), X-Api-Key, the
 * defaults (http.c's list) and User-Agent unless an extra header names them, then the extra
 * headers ("Name: value" or "Name;" lines). */
static void push_headers(lua_State *L, const campaign_options *o, const char *token,
                         const char *extra) {
  const campaign_header_default *d;
  lua_createtable(L, 0, 8);
  if (token != NULL) {
    lua_pushfstring(L, "Bearer %s", token);
    lua_setfield(L, -2, "Authorization");
  }
  lua_pushstring(L, o->api_key);
  lua_setfield(L, -2, "X-Api-Key");
  for (d = CAMPAIGN_DEFAULT_HEADERS; d->name != NULL; d++) {
    if (campaign_extra_has(extra, d->name)) continue;
    lua_pushstring(L, d->value);
    lua_setfield(L, -2, d->name);
  }
  if (o->user_agent != NULL && !campaign_extra_has(extra, "User-Agent")) {
    lua_pushstring(L, o->user_agent);
    lua_setfield(L, -2, "User-Agent");
  }
  while (*extra != '\0') {
    const char *end = strchr(extra, '\n'), *sep;
    size_t n = end ? (size_t)(end - extra) : strlen(extra);
    sep = memchr(extra, ':', n);
    if (sep == NULL) { /* "Name;": an empty value */
      lua_pushlstring(L, extra, n > 0 ? n - 1 : 0);
      lua_pushliteral(L, "");
    } else {
      const char *v = sep + 1;
      while (v < extra + n && *v == ' ') v++;
      lua_pushlstring(L, extra, (size_t)(sep - extra));
      lua_pushlstring(L, v, (size_t)(extra + n - v));
    }
    lua_rawset(L, -3);
    extra += n + (end ? 1 : 0);
  }
}

/* x:attempt(token[, index]) -> req, ev: counts the attempt; req is the transport's table
 * {method, url, headers, body, timeout, connect_timeout, max_body}. */
static int exchange_attempt(lua_State *L) {
  core *k;
  exchange *e = check_exchange(L, &k);
  const campaign_request *r = &e->x.r;
  const char *token = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  int uv;
  lua_settop(L, 3);
  e->index = (int)luaL_optinteger(L, 3, 0);
  e->x.attempts++;
  e->t0 = campaign_now();
  if (e->started == 0) e->started = e->t0;
  campaign_getuservalue(L, 1);
  uv = lua_gettop(L); /* 4 */
  lua_pushvalue(L, 2);
  lua_rawseti(L, uv, X_TOKEN);
  lua_createtable(L, 0, 7); /* 5 */
  lua_pushstring(L, r->method);
  lua_setfield(L, 5, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, 5, "url");
  if (k->share_headers && r->extra_headers[0] == '\0') {
    /* the transport only reads it: one table per token serves every such request */
    lua_rawgeti(L, uv, X_CORE);
    campaign_getuservalue(L, -1); /* the core's user value */
    lua_getfield(L, -1, "headers_token");
    lua_getfield(L, -2, "headers");
    if (!lua_isnil(L, -1) && lua_rawequal(L, -2, 2)) {
      lua_replace(L, -2);
    } else {
      lua_pop(L, 1);
      push_headers(L, &k->c.opt, token, "");
      lua_pushvalue(L, 2);
      lua_setfield(L, -4, "headers_token");
      lua_pushvalue(L, -1);
      lua_setfield(L, -4, "headers");
    }
    lua_replace(L, 6);
    lua_settop(L, 6);
  } else {
    push_headers(L, &k->c.opt, token, r->extra_headers);
  }
  lua_setfield(L, 5, "headers");
  if (r->body != NULL) {
    lua_pushlstring(L, r->body, r->body_len);
    lua_setfield(L, 5, "body");
  }
  lua_pushnumber(L, k->c.opt.timeout);
  lua_setfield(L, 5, "timeout");
  lua_pushnumber(L, k->c.opt.connect_timeout);
  lua_setfield(L, 5, "connect_timeout");
  lua_pushinteger(L, (lua_Integer)k->c.opt.max_body);
  lua_setfield(L, 5, "max_body");
  if (k->c.opt.has_on_event) {
    campaign_event ev;
    campaign_outcome_event(&ev, &e->x, "request", NULL, e->index, -1, -1);
    campaign_event_push(L, &ev);
    return 2;
  }
  return 1;
}

/* The header lookup of an outcome read from a Lua table of lower-case names. */
typedef struct lua_headers {
  lua_State *L;
  int idx; /* the table (absolute), or 0: none */
} lua_headers;

static const char *table_header(const void *ctx, const char *name, size_t *len) {
  const lua_headers *h = ctx;
  const char *v = NULL;
  if (h->idx == 0) return NULL;
  lua_getfield(h->L, h->idx, name);
  /* the string stays alive in the table after the pop */
  if (lua_type(h->L, -1) == LUA_TSTRING) v = lua_tolstring(h->L, -1, len);
  lua_pop(h->L, 1);
  return v;
}

static void table_push_headers(lua_State *L, const void *ctx) {
  const lua_headers *h = ctx;
  if (h->idx != 0) lua_pushvalue(L, h->idx);
  else lua_newtable(L);
}

/* x:outcome(response | nil, kind, message, sent) -> step, ev, a, b: what the transport returned
 * (response = {status, headers, body}; or nil, a failure kind, its message and whether the
 * request may have gone out: nil counts as true) read as a campaign_outcome, then decided. */
static int exchange_outcome(lua_State *L) {
  core *k;
  exchange *e = check_exchange(L, &k);
  campaign_client *c = &k->c;
  campaign_outcome o;
  lua_headers h = {L, 0};
  const char *token;
  double elapsed;
  campaign_step step;
  lua_settop(L, 5);
  elapsed = campaign_now() - e->t0;
  memset(&o, 0, sizeof o);
  o.curl_code = -1;
  o.new_connections = -1;
  o.header = table_header;
  o.push_headers = table_push_headers;
  o.ctx = &h;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "status"); /* 6 */
    o.status = (long)lua_tointeger(L, 6);
    lua_getfield(L, 2, "headers"); /* 7 */
    if (lua_istable(L, 7)) h.idx = 7;
    lua_getfield(L, 2, "body"); /* 8 */
    if (lua_type(L, 8) == LUA_TSTRING) o.body = lua_tolstring(L, 8, &o.body_len);
    else o.body = "";
    if ((long long)o.body_len > c->opt.max_body) {
      o.kind = "too_large";
      o.message = "the response body is larger than max_body";
    }
  } else {
    lua_settop(L, 5);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushnil(L); /* 6..8 as above */
    o.kind = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "network";
    o.message = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : o.kind;
    /* unknown counts as sent: a POST is not repeated */
    o.never_sent = lua_type(L, 5) == LUA_TBOOLEAN && !lua_toboolean(L, 5);
    o.transient = strcmp(o.kind, "network") == 0 || strcmp(o.kind, "timeout") == 0;
  }
  campaign_getuservalue(L, 1); /* 9 */
  lua_rawgeti(L, 9, X_TOKEN);  /* 10 */
  token = lua_type(L, 10) == LUA_TSTRING ? lua_tostring(L, 10) : NULL;
  lua_settop(L, 10);
  e->lesson = campaign_limiter_classify(o.kind, o.status);
  e->lesson_rtt = elapsed;
  step = campaign_exchange_next(c, &e->x, &o);
  lua_pushstring(L, step == CAMPAIGN_STEP_REFRESH ? "refresh"
                    : step == CAMPAIGN_STEP_RETRY ? "retry" : "done");
  if (c->opt.has_on_event) {
    campaign_event ev;
    campaign_outcome_event(&ev, &e->x, o.kind == NULL ? "response" : "error", &o, e->index,
                           elapsed, -1);
    campaign_event_push(L, &ev);
  } else {
    lua_pushnil(L);
  }
  if (step == CAMPAIGN_STEP_RETRY) {
    double wait;
    e->x.retries_done++;
    wait = campaign_outcome_wait(c, &o, e->x.retries_done);
    lua_pushnumber(L, wait);
    if (c->opt.has_on_event) {
      campaign_event ev;
      campaign_outcome_event(&ev, &e->x, "retry", &o, e->index, -1, wait);
      campaign_event_push(L, &ev);
    } else {
      lua_pushnil(L);
    }
  } else if (step == CAMPAIGN_STEP_REFRESH) {
    lua_pushnil(L);
    lua_pushnil(L);
  } else {
    campaign_outcome_push(L, c, token, &o, &e->x.r, e->x.attempts, campaign_now() - e->started);
  }
  return 4;
}

/* x:lesson() -> outcome, rtt: what the last x:outcome said about the load, by the libcurl
 * batch's rule (campaign_limiter_classify: "ok", "overload", "timeout" or "ignore"), and the
 * attempt's seconds; for the limiter of campaign.ngx's "auto", sampled per attempt as in C. */
static int exchange_lesson(lua_State *L) {
  static const char *const names[] = {"ok", "overload", "timeout", "ignore"};
  core *k;
  exchange *e = check_exchange(L, &k);
  (void)k;
  if (e->x.attempts == 0) return luaL_error(L, "campaign._core: x:lesson() before any attempt");
  lua_pushstring(L, names[e->lesson]);
  lua_pushnumber(L, e->lesson_rtt);
  return 2;
}

/* x:refused(message) -> nil, err: kind "budget", nothing sent by this attempt. */
static int exchange_refused(lua_State *L) {
  core *k;
  exchange *e = check_exchange(L, &k);
  int err;
  const char *message = luaL_checkstring(L, 2);
  lua_pushnil(L);
  campaign_error_new(L, "budget", message);
  err = lua_gettop(L);
  campaign_result_locate(L, err, &k->c, &e->x.r, e->x.attempts);
  lua_pushboolean(L, 0);
  lua_setfield(L, err, "sent");
  return 2;
}

/* x:token_failed(err) -> nil, err: the provider's error located (status 401 after a 401). */
static int exchange_token_failed(lua_State *L) {
  core *k;
  exchange *e = check_exchange(L, &k);
  lua_settop(L, 2);
  if (!campaign_is_error(L, 2)) {
    campaign_error_new(L, "auth",
                       lua_isstring(L, 2) ? lua_tostring(L, 2) : "token provider failed");
    lua_replace(L, 2);
  }
  campaign_result_locate(L, 2, &k->c, &e->x.r, e->x.attempts);
  if (e->x.refreshed) {
    lua_pushinteger(L, 401);
    lua_setfield(L, 2, "status");
  }
  lua_pushnil(L);
  lua_insert(L, 2);
  return 2;
}

/* campaign._url_split(url) -> scheme, host, port, authority, rest | nil: an absolute http(s)
 * URL by url.c's rules (scheme and host lower case, IPv6 in brackets, the default port made
 * explicit; authority as written; rest: path and query), for campaign.ngx's transports. */
static int core_url_split(lua_State *L) {
  size_t len, rest = 0;
  const char *s = luaL_checklstring(L, 1, &len), *sep, *colon;
  campaign_buf o = {NULL, 0, 0};
  int r = campaign_url_origin(s, len, &o, &rest);
  if (r <= 0) {
    campaign_buf_free(&o);
    if (r < 0) return luaL_error(L, "not enough memory");
    lua_pushnil(L);
    return 1;
  }
  sep = strstr(o.data, "://");
  colon = strrchr(o.data, ':');
  lua_pushlstring(L, o.data, (size_t)(sep - o.data));
  lua_pushlstring(L, sep + 3, (size_t)(colon - sep - 3));
  lua_pushinteger(L, (lua_Integer)strtol(colon + 1, NULL, 10));
  lua_pushlstring(L, s + (sep - o.data) + 3, rest - (size_t)(sep - o.data) - 3);
  lua_pushlstring(L, s + rest, len - rest);
  campaign_buf_free(&o);
  return 5;
}

static const luaL_Reg CORE_METHODS[] = {
  {"url", core_url}, {"token", core_token}, {"request", core_request},
  {"batch_options", core_batch_options}, {NULL, NULL}};
static const luaL_Reg EXCHANGE_METHODS[] = {
  {"attempt", exchange_attempt}, {"outcome", exchange_outcome}, {"refused", exchange_refused},
  {"token_failed", exchange_token_failed}, {"lesson", exchange_lesson}, {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  campaign_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  if (gc != NULL) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

void campaign_core_register(lua_State *L, int module_idx) {
  module_idx = campaign_absindex(L, module_idx);
  new_class(L, CORE_MT, CORE_METHODS, core_gc);
  new_class(L, EXCHANGE_MT, EXCHANGE_METHODS, NULL);
  lua_pushcfunction(L, core_new);
  lua_setfield(L, module_idx, "_core");
  lua_pushcfunction(L, core_url_split);
  lua_setfield(L, module_idx, "_url_split");
  lua_pushcfunction(L, module_batch_options);
  lua_setfield(L, module_idx, "_batch_options");
}
