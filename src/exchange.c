/*
 * exchange.c - one request's exchange with the server, shared by the two libcurl drivers: the
 * single call (client.c) and batch (batch.c). It owns
 *  - the request: method check, option checks, URL (url.c), body (json_encode.c), extra headers;
 *  - the token provider, the on_event hook and the budget, all called between libcurl calls;
 *  - the attempt cycle: prepare an attempt (headers, http.c's transfer), finish it, and decide
 *    what comes next by retry.c's rules (done, retry, resend after a 401, fail). The decision
 *    itself (campaign_exchange_next) reads a transport-neutral campaign_outcome (outcome.h):
 *    core.c, campaign.ngx's face of the core, calls it too.
 * The drivers own running the transfer, pacing and waiting; result.c makes the answer.
 * Nothing here calls into client.c or batch.c.
 */
#include "exchange.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "json.h"
#include "outcome.h"
#include "interrupt.h"
#include "result.h"
#include "retry.h"
#include "url.h"

/* ---- the request: method, URL, body, extra headers ------------------------------------------ */

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

/* ---- token, events, budget --------------------------------------------------------------- */

/* The token is a secret: its bytes are wiped before the memory is given back. */
void campaign_secret_free(char *s) {
  if (s != NULL) {
    volatile char *p = s;
    while (*p) *p++ = 0;
    free(s);
  }
}

static int token_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0 || strlen(s) != len) return 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch == 0x7f) return 0;
  }
  return 1;
}

int campaign_token_read(lua_State *L, int ok, const char **tok, size_t *len,
                        double *expires_in) {
  int top = lua_gettop(L);
  *expires_in = 0;
  if (!ok) {
    if (campaign_is_error(L, -1)) { /* it raised an error object: returned as is */
      lua_pushvalue(L, -1);
      return 0;
    }
    lua_pushfstring(L, "token provider failed: %s",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
    campaign_error_new(L, "auth", lua_tostring(L, -1));
    return 0;
  }
  *tok = lua_type(L, top - 1) == LUA_TSTRING ? lua_tolstring(L, top - 1, len) : NULL;
  if (*tok != NULL && token_ok(*tok, *len)) {
    if (lua_type(L, top) == LUA_TNUMBER || (lua_type(L, top) == LUA_TSTRING && lua_isnumber(L, top))) {
      double e = (double)lua_tonumber(L, top);
      /* the legacy JWT exchange gave milliseconds (86399992): no token lives 115 days, so
       * above 10^7 it is milliseconds (as campaign.auth.normalize_expires_in reads it) */
      if (e > 1e7) e /= 1000;
      if (e > 0 && e < 1e12) *expires_in = e;
    }
    return 1;
  }
  if (campaign_is_error(L, top)) { /* nil, err from a provider built on campaign.error */
    lua_pushvalue(L, top);
    return 0;
  }
  if (*tok != NULL) lua_pushliteral(L, "token provider returned an invalid token (empty or with "
                                       "spaces or control characters)");
  else if (lua_isstring(L, top)) lua_pushfstring(L, "token provider failed: %s", lua_tostring(L, top));
  else lua_pushliteral(L, "token provider returned no token");
  campaign_error_new(L, "auth", lua_tostring(L, -1));
  return 0;
}

int campaign_client_token(lua_State *L, campaign_client *c, int self_idx, int force) {
  int top = lua_gettop(L), ok;
  size_t len = 0;
  const char *tok = NULL;
  double expires_in;
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
  ok = lua_pcall(L, 1, 2, 0) == LUA_OK;
  if (!campaign_token_read(L, ok, &tok, &len, &expires_in)) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
  }
  if (c->token == NULL || strcmp(c->token, tok) != 0) {
    char *copy = malloc(len + 1);
    if (copy == NULL) luaL_error(L, "not enough memory");
    memcpy(copy, tok, len + 1);
    campaign_secret_free(c->token);
    c->token = copy;
    c->token_gen++;
  }
  c->token_valid_until = expires_in > 0 ? campaign_now() + expires_in : 0;
  lua_settop(L, top);
  return 1;
}

void campaign_event_push(lua_State *L, const campaign_event *ev) {
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
}

void campaign_client_event(lua_State *L, campaign_client *c, int self_idx, const campaign_event *ev) {
  int top = lua_gettop(L);
  if (!c->opt.has_on_event) return;
  self_idx = campaign_absindex(L, self_idx);
  campaign_getuservalue(L, self_idx);
  lua_getfield(L, -1, "on_event");
  campaign_event_push(L, ev);
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

/* ---- the attempt cycle ---------------------------------------------------------------------- */

void campaign_exchange_prepare(lua_State *L, campaign_client *c, campaign_exchange *x,
                               campaign_transfer *t) {
  x->attempts++;
  campaign_client_headers(L, c, t, &x->r);
  campaign_transfer_prepare(t, x->r.method, x->r.url, x->r.body, x->r.body_len);
  x->token_gen = c->token_gen;
}

void campaign_exchange_finish(campaign_exchange *x, campaign_transfer *t, CURLcode code) {
  campaign_transfer_done(t, code);
  x->attempts += campaign_transfer_resends(t);
  if (campaign_transfer_maybe_sent(t)) x->sent = 1;
}

void campaign_outcome_event(campaign_event *ev, const campaign_exchange *x, const char *type,
                            const campaign_outcome *o, int index, double elapsed, double wait) {
  memset(ev, 0, sizeof *ev);
  ev->type = type;
  ev->method = x->r.method;
  ev->url = x->r.url;
  ev->attempt = x->attempts;
  ev->index = index;
  ev->elapsed = elapsed;
  ev->wait = wait;
  /* a status when the attempt got a response; the failure for an error, or a retry after one */
  if (o != NULL && o->kind == NULL) ev->status = o->status;
  if (o != NULL && (strcmp(type, "error") == 0 || o->kind != NULL)) {
    ev->kind = o->kind;
    ev->message = o->message;
  }
}

void campaign_exchange_event(lua_State *L, campaign_client *c, int self_idx,
                             const campaign_exchange *x, const char *type,
                             const campaign_transfer *t, int index, double elapsed, double wait) {
  campaign_event ev;
  campaign_outcome o;
  if (!c->opt.has_on_event) return;
  if (t != NULL) campaign_outcome_of_transfer(t, &o);
  campaign_outcome_event(&ev, x, type, t != NULL ? &o : NULL, index, elapsed, wait);
  campaign_client_event(L, c, self_idx, &ev);
}

campaign_step campaign_exchange_next(const campaign_client *c, campaign_exchange *x,
                                     const campaign_outcome *o) {
  if (o->kind == NULL) {
    if (o->status == 401 && c->opt.has_provider && !x->refreshed) {
      x->refreshed = 1; /* one new token and one more try per call */
      return CAMPAIGN_STEP_REFRESH;
    }
    if (!(campaign_retry_status(o->status) && campaign_retry_method(x->r.method, 0)))
      return CAMPAIGN_STEP_DONE;
  } else if (!(o->transient && campaign_retry_method(x->r.method, o->never_sent))) {
    return CAMPAIGN_STEP_DONE;
  }
  return x->retries_done < c->opt.retries ? CAMPAIGN_STEP_RETRY : CAMPAIGN_STEP_DONE;
}

campaign_next campaign_exchange_decide(lua_State *L, campaign_client *c, int self_idx,
                                       campaign_exchange *x, const campaign_transfer *t) {
  campaign_outcome o;
  if (t->interrupted) return CAMPAIGN_NEXT_INTERRUPTED;
  campaign_outcome_of_transfer(t, &o);
  switch (campaign_exchange_next(c, x, &o)) {
    case CAMPAIGN_STEP_REFRESH:
      /* the first 401 sent with the current token refreshes it (in a batch the others that
       * went out with the same token just resend) */
      if (x->token_gen == c->token_gen && !campaign_client_token(L, c, self_idx, 1)) {
        lua_pushnil(L);
        lua_insert(L, -2);
        campaign_result_locate(L, -1, c, &x->r, x->attempts);
        lua_pushinteger(L, 401);
        lua_setfield(L, -2, "status");
        return CAMPAIGN_NEXT_FAILED;
      }
      return CAMPAIGN_NEXT_RESEND;
    case CAMPAIGN_STEP_RETRY:
      return CAMPAIGN_NEXT_RETRY;
    default:
      return CAMPAIGN_NEXT_DONE;
  }
}
