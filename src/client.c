/*
 * client.c - the "campaign.Client" userdata: campaign.new, close/__gc/__close, __tostring,
 * request validation, the token provider, events, and the single-call retry loop
 * (get/patch/post/delete/request). batch lives in batch.c.
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
#include <strings.h>

#include "error.h"
#include "json.h"
#include "pacing.h"
#include "retry.h"
#include "interrupt.h"
#include "url.h"


/* ---- lifetime --------------------------------------------------------------------------- */

static void wipe_free(char *s) {
  if (s != NULL) {
    volatile char *p = s;
    while (*p) *p++ = 0;
    free(s);
  }
}

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
  wipe_free(c->token);
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

/* ---- requests ----------------------------------------------------------------------------- */

static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                                      NULL};

/* The canonical (static, upper-case) method name for the string at idx; raises otherwise. */
const char *campaign_check_method(lua_State *L, int idx, const char *fname) {
  size_t len;
  const char *m;
  int i;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_error(L, "%s: method must be a string", fname);
  m = lua_tolstring(L, idx, &len);
  for (i = 0; METHODS[i] != NULL; i++) {
    if (strlen(METHODS[i]) == len && strncasecmp(m, METHODS[i], len) == 0) return METHODS[i];
  }
  luaL_error(L, "%s: unsupported method '%s'", fname, m);
  return NULL; /* not reached: luaL_error does not return */
}

static const char *const REFUSED_HEADERS[] = {"authorization", "x-api-key", "host",
                                              "content-length", "transfer-encoding", NULL};

/* Builds the "Name: value\n..." block of opts.headers (table at idx) into c->url and pushes it. */
static void push_extra_headers(lua_State *L, campaign_client *c, const char *fname, int idx) {
  campaign_buf *b = &c->url;
  campaign_buf_clear(b);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t nlen, vlen;
    const char *name, *value;
    int i;
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: header names must be strings", fname);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: header values must be strings", fname);
    name = lua_tolstring(L, -2, &nlen);
    if (!campaign_header_name_ok(name, nlen)) luaL_error(L, "%s: invalid header name", fname);
    for (i = 0; REFUSED_HEADERS[i] != NULL; i++) {
      if (strlen(REFUSED_HEADERS[i]) == nlen && strncasecmp(name, REFUSED_HEADERS[i], nlen) == 0)
        luaL_error(L, "%s: header '%s' is set by the client and cannot be given", fname, name);
    }
    lua_pushvalue(L, -1); /* tolstring on a copy: never convert a number in place */
    value = lua_tolstring(L, -1, &vlen);
    if (!campaign_header_value_ok(value, vlen) || strlen(value) != vlen)
      luaL_error(L, "%s: header '%s' has control characters (CR, LF, ...) in its value", fname, name);
    {
      /* libcurl drops a "Name:" line with nothing after the colon (and with it a default of
       * that name); "Name;" is its form for a header sent with an empty value */
      size_t k = 0;
      int blank;
      while (k < vlen && (value[k] == ' ' || value[k] == '\t')) k++;
      blank = k == vlen;
      if ((b->len > 0 && !campaign_buf_addc(b, '\n')) || !campaign_buf_add(b, name, nlen) ||
          !(blank ? campaign_buf_addc(b, ';')
                  : campaign_buf_add(b, ": ", 2) && campaign_buf_add(b, value, vlen)))
        luaL_error(L, "not enough memory");
    }
    lua_pop(L, 2);
  }
  lua_pushlstring(L, b->data ? b->data : "", b->len);
}

void campaign_request_prepare(lua_State *L, campaign_client *c, const char *fname,
                              const char *method, int path_idx, int body_idx, int opts_idx,
                              int allow_body, int anchor_idx, int slot, campaign_request *r) {
  const char *path;
  size_t path_len;
  int query_idx = 0, top = lua_gettop(L);
  anchor_idx = campaign_absindex(L, anchor_idx);
  path_idx = campaign_absindex(L, path_idx);
  if (body_idx) body_idx = campaign_absindex(L, body_idx);
  if (opts_idx) opts_idx = campaign_absindex(L, opts_idx);
  memset(r, 0, sizeof *r);
  r->method = method;
  r->extra_headers = "";
  if (lua_type(L, path_idx) != LUA_TSTRING) luaL_error(L, "%s: path must be a string", fname);
  path = lua_tolstring(L, path_idx, &path_len);
  if (opts_idx && !lua_isnil(L, opts_idx)) {
    if (!lua_istable(L, opts_idx)) luaL_error(L, "%s: options must be a table", fname);
    lua_pushnil(L);
    while (lua_next(L, opts_idx)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (k == NULL || (strcmp(k, "query") != 0 && strcmp(k, "headers") != 0 &&
                        strcmp(k, "raw") != 0 && !(allow_body && strcmp(k, "body") == 0)))
        luaL_error(L, "%s: unknown option '%s'", fname, k ? k : "?");
      lua_pop(L, 1);
    }
    lua_getfield(L, opts_idx, "query");
    query_idx = lua_gettop(L);
    if (allow_body) {
      lua_getfield(L, opts_idx, "body");
      body_idx = lua_gettop(L);
    }
    lua_getfield(L, opts_idx, "raw");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
      luaL_error(L, "%s: option 'raw' must be a boolean", fname);
    r->raw = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  /* URL */
  campaign_url_build(L, fname, c->opt.root, c->opt.origin, path, path_len, query_idx, &c->url);
  lua_pushlstring(L, c->url.data, c->url.len);
  r->url = lua_tostring(L, -1);
  lua_rawseti(L, anchor_idx, slot * 3 + 1); /* the anchor keeps r->url alive */
  /* body: a table is encoded; a string is sent as is (already JSON) */
  if (body_idx && !lua_isnil(L, body_idx)) {
    if (lua_type(L, body_idx) == LUA_TTABLE) {
      campaign_json_encode(L, body_idx);
    } else if (lua_type(L, body_idx) == LUA_TSTRING) {
      lua_pushvalue(L, body_idx);
    } else {
      luaL_error(L, "%s: body must be a table (encoded as JSON) or a string (sent as is)", fname);
    }
    r->body = lua_tolstring(L, -1, &r->body_len);
    lua_rawseti(L, anchor_idx, slot * 3 + 2);
  }
  /* extra headers */
  if (opts_idx && !lua_isnil(L, opts_idx)) {
    lua_getfield(L, opts_idx, "headers");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1)) luaL_error(L, "%s: option 'headers' must be a table", fname);
      push_extra_headers(L, c, fname, lua_gettop(L));
      r->extra_headers = lua_tostring(L, -1);
      lua_rawseti(L, anchor_idx, slot * 3 + 3);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* ---- token and events ---------------------------------------------------------------------- */

static int token_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0 || strlen(s) != len) return 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch == 0x7f) return 0;
  }
  return 1;
}

int campaign_client_token(lua_State *L, campaign_client *c, int self_idx, int force) {
  int top = lua_gettop(L);
  size_t len;
  const char *tok;
  if (!c->opt.has_provider) return 1;
  /* the provider said how long its token lasts: no call into Lua until then (a 401 forces) */
  if (!force && c->token != NULL && c->token_valid_until > 0 && campaign_now() < c->token_valid_until)
    return 1;
  c->token_valid_until = 0; /* asked again next time unless this answer says otherwise */
  self_idx = campaign_absindex(L, self_idx);
  campaign_getuservalue(L, self_idx);
  lua_getfield(L, -1, "token");
  lua_remove(L, -2);
  lua_pushboolean(L, force);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    if (campaign_is_error(L, -1)) return 0; /* it raised an error object: returned as is */
    lua_pushfstring(L, "token provider failed: %s",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
    campaign_error_new(L, "auth", lua_tostring(L, -1));
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
  }
  tok = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
  if (tok != NULL && token_ok(tok, len)) {
    if (c->token == NULL || strcmp(c->token, tok) != 0) {
      char *copy = malloc(len + 1);
      if (copy == NULL) luaL_error(L, "not enough memory");
      memcpy(copy, tok, len + 1);
      wipe_free(c->token);
      c->token = copy;
      c->token_gen++;
    }
    c->token_valid_until = 0;
    if (lua_type(L, -1) == LUA_TNUMBER || (lua_type(L, -1) == LUA_TSTRING && lua_isnumber(L, -1))) {
      double expires_in = (double)lua_tonumber(L, -1);
      /* the legacy JWT exchange gave milliseconds (86399992): no token lives 115 days, so
       * above 10^7 it is milliseconds (as campaign.auth.normalize_expires_in reads it) */
      if (expires_in > 1e7) expires_in /= 1000;
      if (expires_in > 0 && expires_in < 1e12) c->token_valid_until = campaign_now() + expires_in;
    }
    lua_settop(L, top);
    return 1;
  }
  if (campaign_is_error(L, -1)) { /* nil, err from a provider built on campaign.error */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
  }
  if (tok != NULL) lua_pushliteral(L, "token provider returned an invalid token (empty or with "
                                      "spaces or control characters)");
  else if (lua_isstring(L, -1)) lua_pushfstring(L, "token provider failed: %s", lua_tostring(L, -1));
  else lua_pushliteral(L, "token provider returned no token");
  campaign_error_new(L, "auth", lua_tostring(L, -1));
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 0;
}

void campaign_client_event(lua_State *L, campaign_client *c, int self_idx, const campaign_event *ev) {
  int top = lua_gettop(L);
  if (!c->opt.has_on_event) return;
  self_idx = campaign_absindex(L, self_idx);
  campaign_getuservalue(L, self_idx);
  lua_getfield(L, -1, "on_event");
  lua_createtable(L, 0, 10);
  lua_pushstring(L, ev->type);
  lua_setfield(L, -2, "type");
  lua_pushstring(L, ev->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, ev->url);
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, ev->attempt);
  lua_setfield(L, -2, "attempt");
  if (ev->status > 0) {
    lua_pushinteger(L, ev->status);
    lua_setfield(L, -2, "status");
  }
  if (ev->elapsed >= 0) {
    lua_pushnumber(L, ev->elapsed);
    lua_setfield(L, -2, "elapsed");
  }
  if (ev->wait >= 0) {
    lua_pushnumber(L, ev->wait);
    lua_setfield(L, -2, "wait");
  }
  if (ev->kind != NULL) {
    lua_pushstring(L, ev->kind);
    lua_setfield(L, -2, "kind");
  }
  if (ev->message != NULL) {
    lua_pushstring(L, ev->message);
    lua_setfield(L, -2, "message");
  }
  if (ev->index > 0) {
    lua_pushinteger(L, ev->index);
    lua_setfield(L, -2, "index");
  }
  (void)lua_pcall(L, 1, 0, 0); /* a failing hook must not fail the request: error ignored */
  lua_settop(L, top);
}

int campaign_client_budget(lua_State *L, campaign_client *c, int self_idx,
                           const campaign_request *r, int attempts) {
  int top = lua_gettop(L), err;
  if (c->opt.has_budget == 0) return 1;
  if (c->opt.has_budget == 1) {
    if (c->budget_left > 0) {
      c->budget_left--;
      return 1;
    }
    char text[128];
    snprintf(text, sizeof text, "budget spent: this client may send %lld calls and sent them all "
             "(option 'budget')", c->opt.budget_total);
    lua_pushstring(L, text);
  } else {
    campaign_getuservalue(L, self_idx);
    lua_getfield(L, -1, "budget");
    lua_remove(L, -2);
    if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
      lua_pushfstring(L, "budget not checked, so not sent: %s",
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error is not a string)");
    } else if (lua_toboolean(L, -2)) {
      lua_settop(L, top);
      return 1;
    } else {
      lua_pushstring(L, lua_isstring(L, -1) ? lua_tostring(L, -1) : "budget spent");
    }
  }
  campaign_error_new(L, "budget", lua_tostring(L, -1));
  err = lua_gettop(L);
  campaign_result_locate(L, err, c, r, attempts);
  lua_pushboolean(L, 0);
  lua_setfield(L, err, "sent");
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 0;
}

/* ---- single calls --------------------------------------------------------------------------- */

typedef struct call_spec {
  const char *fname;
  const char *method;  /* NULL: taken from the arguments (request) */
  int has_body_arg;    /* patch/post: fields argument */
  int allow_body_opt;  /* request: opts.body */
} call_spec;

void campaign_client_headers(lua_State *L, campaign_client *c, campaign_transfer *t,
                             const campaign_request *r) {
  unsigned want = r->extra_headers[0] == '\0' ? c->token_gen * 2u + 1u : 0;
  if (want != 0 && want == t->headers_key) return; /* same headers as last time: keep the list */
  if (!campaign_transfer_headers(t, &c->opt, c->token, r->extra_headers))
    luaL_error(L, "not enough memory");
  t->headers_key = want;
}

void campaign_client_interrupted(lua_State *L, campaign_client *c, const campaign_request *r,
                                 int sig, int attempts, int sent) {
  int err;
  lua_pushnil(L);
  campaign_error_new(L, "interrupted", campaign_signal_message(sig));
  err = lua_gettop(L);
  campaign_result_locate(L, err, c, r, attempts);
  lua_pushboolean(L, sent);
  lua_setfield(L, err, "sent");
  lua_pushinteger(L, sig);
  lua_setfield(L, err, "signal");
  campaign_error_set_codes(L, err);
}

/* Stack: 1 spec, 2 self, 3 method, 4 path, 5 body, 6 opts. Returns body, res or nil, err. */
static int call_impl(lua_State *L) {
  const call_spec *spec = lua_touserdata(L, 1);
  campaign_client *c = lua_touserdata(L, 2);
  campaign_transfer *t = &c->single;
  campaign_request r;
  campaign_event ev;
  const char *method = spec->method ? spec->method : campaign_check_method(L, 3, spec->fname);
  int attempt = 0, retries_done = 0, refreshed = 0, sent = 0, sig;
  double start, t0;
  lua_settop(L, 6);
  luaL_checkstack(L, 40, spec->fname); /* request_prepare, events, results: about 20 slots */
  lua_newtable(L); /* 7: anchor */
  campaign_request_prepare(L, c, spec->fname, method, 4, spec->has_body_arg ? 5 : 0, 6,
                           spec->allow_body_opt, 7, 0, &r);
  start = campaign_now();
  /* interrupted before it started: nothing is sent, the token provider is not asked */
  if ((sig = campaign_signal_pending()) != 0) {
    campaign_client_interrupted(L, c, &r, sig, 0, 0);
    return 2;
  }
  if (!campaign_client_token(L, c, 2, 0)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    campaign_result_locate(L, -1, c, &r, 0);
    return 2;
  }
  memset(&ev, 0, sizeof ev);
  ev.method = method;
  ev.url = r.url;
  for (;;) {
    CURLcode code;
    /* a signal caught while the provider or a hook ran, or during the retry wait */
    if ((sig = campaign_signal_pending()) != 0) break;
    /* every attempt (a retry, the resend after a 401) takes a budget call, then a pacing
     * slot (a refused call takes none) */
    if (!campaign_client_budget(L, c, 2, &r, attempt)) {
      lua_pushnil(L);
      lua_insert(L, -2);
      campaign_transfer_release(t);
      return 2;
    }
    if (c->opt.rate > 0) {
      double wait = campaign_pacing_take(&c->tat, campaign_now(), c->opt.rate, c->opt.burst);
      if (wait > 0 && (sig = campaign_signal_sleep(wait)) != 0) break;
    }
    attempt++;
    campaign_client_headers(L, c, t, &r);
    campaign_transfer_prepare(t, method, r.url, r.body, r.body_len);
    ev.type = "request";
    ev.attempt = attempt;
    ev.status = 0;
    ev.elapsed = ev.wait = -1;
    ev.kind = ev.message = NULL;
    campaign_client_event(L, c, 2, &ev);
    t0 = campaign_now();
    code = curl_easy_perform(t->easy);
    campaign_transfer_done(t, code);
    attempt += campaign_transfer_resends(t);
    if (campaign_transfer_maybe_sent(t)) sent = 1;
    ev.attempt = attempt;
    ev.elapsed = campaign_now() - t0;
    if (code == CURLE_OK && !t->too_large) {
      ev.type = "response";
      ev.status = t->status;
      campaign_client_event(L, c, 2, &ev);
      if (t->status == 401 && c->opt.has_provider && !refreshed) {
        refreshed = 1; /* one new token and one more try per call */
        if (!campaign_client_token(L, c, 2, 1)) {
          lua_pushnil(L);
          lua_insert(L, -2);
          campaign_result_locate(L, -1, c, &r, attempt);
          lua_pushinteger(L, 401);
          lua_setfield(L, -2, "status");
          campaign_transfer_release(t);
          return 2;
        }
        continue;
      }
      if (!(campaign_retry_status(t->status) && campaign_retry_method(method, 0))) break;
    } else {
      ev.type = "error";
      ev.kind = campaign_transfer_kind(t);
      ev.message = campaign_transfer_message(t);
      campaign_client_event(L, c, 2, &ev);
      if ((sig = t->interrupted) != 0) break; /* aborted in flight by the progress callback */
      if (!(campaign_transfer_transient(t) &&
            campaign_retry_method(method, campaign_transfer_never_sent(t))))
        break;
    }
    if (retries_done >= c->opt.retries) break;
    retries_done++;
    ev.type = "retry";
    ev.wait = campaign_client_wait(c, t, retries_done);
    ev.elapsed = -1;
    campaign_client_event(L, c, 2, &ev);
    if ((sig = campaign_signal_sleep(ev.wait)) != 0) break; /* the wait is cut short */
  }
  if (sig != 0) campaign_client_interrupted(L, c, &r, sig, attempt, sent);
  else campaign_result_push(L, c, t, &r, attempt, campaign_now() - start);
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
