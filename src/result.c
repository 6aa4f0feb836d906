/*
 * result.c - turns a finished transfer into what a call returns: `body, res` for a 2xx, or
 * `nil, err` with the error object of design.md (kinds http, json, network, timeout, tls,
 * too_large). Runs after libcurl has returned, so raising (memory errors only) is safe.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "result.h"
#include "error.h"
#include "json.h"
#include "retry.h"

#define BODY_EXCERPT 4096
#define MESSAGE_MAX 1024 /* room for an ACS message chaining several codes */

/* JSON's whitespace, also what is trimmed around a text message. */
static int is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *transfer_header(const void *ctx, const char *name, size_t *len) {
  return campaign_transfer_header(ctx, name, len);
}

static void transfer_push_headers(lua_State *L, const void *ctx) {
  campaign_result_headers(L, ctx);
}

void campaign_outcome_of_transfer(const campaign_transfer *t, campaign_outcome *o) {
  memset(o, 0, sizeof *o);
  o->curl_code = (long long)t->code;
  o->new_connections = -1;
  if (t->code != CURLE_OK || t->too_large) {
    o->kind = campaign_transfer_kind(t);
    o->message = campaign_transfer_message(t);
    o->transient = campaign_transfer_transient(t);
    o->never_sent = campaign_transfer_never_sent(t);
    return;
  }
  o->status = t->status;
  o->body = t->body.data ? t->body.data : "";
  o->body_len = t->body.len;
  o->header = transfer_header;
  o->push_headers = transfer_push_headers;
  o->ctx = t;
  if (t->status >= 200 && t->status < 300) {
    long v = 0;
    o->new_connections = 0; /* 0 when the last attempt reused a kept-alive connection */
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &o->new_connections);
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &v);
    o->http_version = v == CURL_HTTP_VERSION_2_0 ? "2" : v == CURL_HTTP_VERSION_1_0 ? "1.0"
                      : v == CURL_HTTP_VERSION_3 ? "3" : "1.1";
  }
}

void campaign_result_headers(lua_State *L, const campaign_transfer *t) {
  const char *h = t->head.data, *stop = h + t->head.len, *line, *eol;
  lua_createtable(L, 0, 12); /* sized for a usual response: no rehash while filling */
  if (h == NULL) return;
  /* skip the status line; memchr finds line ends and colons without a byte loop of our own */
  line = memchr(h, '\n', t->head.len);
  line = line ? line + 1 : stop;
  for (; line < stop; line = eol + 1) {
    const char *colon, *v, *ve;
    char name[128];
    size_t k, name_len;
    eol = memchr(line, '\n', (size_t)(stop - line));
    if (eol == NULL) eol = stop;
    colon = memchr(line, ':', (size_t)(eol - line));
    if (colon == NULL || colon == line || (size_t)(colon - line) >= sizeof name) continue;
    name_len = (size_t)(colon - line);
    for (k = 0; k < name_len; k++) {
      char ch = line[k];
      name[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    v = colon + 1;
    ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    lua_pushlstring(L, name, name_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (!lua_isnil(L, -1)) { /* a repeated header: joined as HTTP allows */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, v, (size_t)(ve - v));
    }
    lua_rawset(L, -3);
  }
}

/* Pushes the path of the URL relative to the client's campaign root (without the query), or
 * the whole URL without its query when it lies elsewhere. */
static void push_relative_path(lua_State *L, campaign_client *c, const char *url) {
  size_t rlen = strlen(c->opt.root);
  const char *q;
  if (strncmp(url, c->opt.root, rlen) == 0) url += rlen;
  q = strchr(url, '?');
  lua_pushlstring(L, url, q ? (size_t)(q - url) : strlen(url));
}

void campaign_result_locate(lua_State *L, int idx, campaign_client *c, const campaign_request *r,
                            int attempts) {
  idx = campaign_absindex(L, idx);
  lua_pushstring(L, r->method);
  lua_setfield(L, idx, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, idx, "url");
  push_relative_path(L, c, r->url);
  lua_setfield(L, idx, "path");
  lua_pushinteger(L, attempts);
  lua_setfield(L, idx, "attempts");
}

/* Retry-After of a response (seconds >= 0), or -1. */
static double retry_after(const campaign_outcome *o) {
  size_t len;
  const char *v = o->kind == NULL && o->header ? o->header(o->ctx, "retry-after", &len) : NULL;
  return v != NULL ? campaign_retry_after_parse(v, len, (long long)time(NULL)) : -1;
}

double campaign_outcome_wait(campaign_client *c, const campaign_outcome *o, int n) {
  return campaign_retry_wait(&c->rng, n, c->opt.retry_base, c->opt.retry_max, retry_after(o));
}

double campaign_client_wait(campaign_client *c, const campaign_transfer *t, int n) {
  campaign_outcome o;
  campaign_outcome_of_transfer(t, &o);
  return campaign_outcome_wait(c, &o, n);
}

/* The client's secrets, for what an error copies from the server's answer (a gateway may echo
 * the request's headers): the API key and the current token. */
static void client_secrets(const campaign_client *c, const char *token, const char *out[3]) {
  int n = 0;
  if (c->opt.api_key != NULL) out[n++] = c->opt.api_key;
  if (token != NULL) out[n++] = token;
  out[n] = NULL;
}

/* Pushes the start of a body as err.body: at most BODY_EXCERPT bytes, secrets redacted before
 * the cut (a bit more than the excerpt is searched, so a secret across the edge goes whole). */
static void push_body_excerpt(lua_State *L, const char *body, size_t len,
                              const char *const *secrets) {
  size_t k, more = 0;
  for (k = 0; secrets[k] != NULL; k++) {
    size_t l = strlen(secrets[k]);
    if (l > more) more = l;
  }
  if (len > BODY_EXCERPT + more) len = BODY_EXCERPT + more;
  campaign_error_push_text(L, body, len, BODY_EXCERPT, 0, secrets);
}

/* Replaces the string err[key] (err at idx) by its cleaned text (campaign_error_push_text). */
static void clean_field(lua_State *L, int idx, const char *key, const char *const *secrets) {
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *v = lua_tolstring(L, -1, &len);
    campaign_error_push_text(L, v, len, 0, 1, secrets);
    lua_setfield(L, idx, key);
  }
  lua_pop(L, 1);
}

/* A readable message from a body that is not a JSON error: an HTML page's <title>, else the
 * first line of text; pushes it, secrets redacted, valid UTF-8, at most MESSAGE_MAX bytes. */
static void push_text_message(lua_State *L, const char *body, size_t len, long status,
                              const char *const *secrets) {
  size_t i = 0, end;
  const char *title = NULL;
  if (len > BODY_EXCERPT) len = campaign_utf8_cut(body, len, BODY_EXCERPT);
  for (i = 0; i + 7 <= len; i++) {
    if (strncasecmp(body + i, "<title>", 7) == 0) {
      title = body + i + 7;
      break;
    }
  }
  if (title != NULL) {
    size_t tlen = 0, rest = len - (size_t)(title - body);
    while (tlen < rest && title[tlen] != '<') tlen++;
    while (tlen > 0 && is_space(*title)) {
      title++;
      tlen--;
    }
    while (tlen > 0 && is_space(title[tlen - 1])) tlen--;
    if (tlen > 0) {
      campaign_error_push_text(L, title, tlen, MESSAGE_MAX, 1, secrets);
      return;
    }
  }
  if (len > 0 && body[0] != '<') {
    /* plain text (ACS may send its chained RST/XTK/PGS lines so): all of it, trimmed, so the
     * cause and every code stay (tostring puts the lines on one line) */
    i = 0;
    while (i < len && is_space(body[i])) i++;
    end = len;
    while (end > i && is_space(body[end - 1])) end--;
    if (end > i) {
      campaign_error_push_text(L, body + i, end - i, MESSAGE_MAX, 1, secrets);
      return;
    }
  }
  {
    const char *reason = campaign_reason_phrase(status);
    if (*reason) lua_pushfstring(L, "%d %s", (int)status, reason);
    else lua_pushfstring(L, "HTTP status %d", (int)status);
  }
}

/* Sets err[key] (err at err_idx) to the first of `fields` in the table on top of the stack that
 * is a string (or, with numbers_too, a number). Returns 1 when one was found. */
static int copy_first_field(lua_State *L, int err_idx, const char *key, const char *const *fields,
                            int numbers_too) {
  int k;
  for (k = 0; fields[k] != NULL; k++) {
    int type;
    lua_getfield(L, -1, fields[k]);
    type = lua_type(L, -1);
    if (type == LUA_TSTRING || (numbers_too && type == LUA_TNUMBER)) {
      lua_setfield(L, err_idx, key);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Fills code/message/body of the http error at idx from the response body. */
static void describe_http_error(lua_State *L, int idx, const campaign_outcome *t,
                                const char *const *secrets) {
  char errbuf[256];
  size_t offset = 0;
  int decoded = 0;
  idx = campaign_absindex(L, idx);
  {
    size_t i = 0; /* JSON only when it looks like JSON: an object, an array or a string */
    while (i < t->body_len && is_space(t->body[i])) i++;
    if (i < t->body_len && (t->body[i] == '{' || t->body[i] == '[' || t->body[i] == '"'))
      decoded = campaign_json_decode(L, t->body, t->body_len, errbuf, sizeof errbuf, &offset);
  }
  if (decoded) {
    int have_message = 0;
    if (lua_type(L, -1) == LUA_TSTRING && campaign_rawlen(L, -1) > 0) { /* a JSON string: the text */
      lua_pushvalue(L, -1);
      lua_setfield(L, idx, "message");
      have_message = 1;
    }
    if (lua_istable(L, -1)) {
      static const char *const CODE_FIELDS[] = {"error_code", "code", NULL};
      static const char *const MESSAGE_FIELDS[] = {"message", "error_description", "detail",
                                                   "title", "error", NULL};
      static const char *const NESTED_CODE[] = {"code", NULL};
      static const char *const NESTED_MESSAGE[] = {"message", NULL};
      int have_code = copy_first_field(L, idx, "code", CODE_FIELDS, 1);
      if (!have_message) have_message = copy_first_field(L, idx, "message", MESSAGE_FIELDS, 0);
      /* {"error": {"code": ..., "message": ...}}, as other Adobe APIs answer */
      lua_getfield(L, -1, "error");
      if (lua_istable(L, -1)) {
        if (!have_code) copy_first_field(L, idx, "code", NESTED_CODE, 1);
        if (!have_message) have_message = copy_first_field(L, idx, "message", NESTED_MESSAGE, 0);
      }
      lua_pop(L, 1);
    }
    lua_setfield(L, idx, "body");
    if (!have_message) {
      push_text_message(L, "", 0, t->status, secrets);
      lua_setfield(L, idx, "message");
    }
    /* decoded JSON is valid UTF-8 already; a gateway may still have echoed a secret */
    clean_field(L, idx, "message", secrets);
    clean_field(L, idx, "code", secrets);
  } else {
    if (t->body_len > 0) {
      push_body_excerpt(L, t->body, t->body_len, secrets);
      lua_setfield(L, idx, "body");
    }
    push_text_message(L, t->body ? t->body : "", t->body_len, t->status, secrets);
    lua_setfield(L, idx, "message");
  }
}

static void set_request_id(lua_State *L, int idx, const campaign_outcome *t,
                           const char *const *secrets) {
  static const char *const NAMES[] = {"x-request-id", "x-adobe-request-id", "x-correlation-id",
                                      "request-id", NULL};
  int k;
  for (k = 0; NAMES[k] != NULL; k++) {
    size_t len;
    const char *v = t->header(t->ctx, NAMES[k], &len);
    if (v != NULL && len > 0) {
      campaign_error_push_text(L, v, len, 0, 1, secrets);
      lua_setfield(L, idx, "request_id");
      return;
    }
  }
}

int campaign_result_push(lua_State *L, campaign_client *c, campaign_transfer *t,
                         const campaign_request *r, int attempts, double elapsed) {
  campaign_outcome o;
  campaign_outcome_of_transfer(t, &o);
  return campaign_outcome_push(L, c, c->token, &o, r, attempts, elapsed);
}

int campaign_outcome_push(lua_State *L, campaign_client *c, const char *token,
                          const campaign_outcome *t, const campaign_request *r, int attempts,
                          double elapsed) {
  int err_idx;
  const char *secrets[3];
  client_secrets(c, token, secrets);
  if (t->kind != NULL) {
    int too_large = strcmp(t->kind, "too_large") == 0;
    lua_pushnil(L);
    campaign_error_new(L, t->kind, t->message ? t->message : t->kind);
    err_idx = lua_gettop(L);
    campaign_result_locate(L, err_idx, c, r, attempts);
    if (too_large) {
      lua_pushinteger(L, (lua_Integer)c->opt.max_body);
      lua_setfield(L, err_idx, "max_body");
    } else {
      /* false: certainly never reached the server; true: it may have acted on it */
      lua_pushboolean(L, !t->never_sent);
      lua_setfield(L, err_idx, "sent");
    }
    if (t->curl_code >= 0) {
      lua_pushinteger(L, (lua_Integer)t->curl_code);
      lua_setfield(L, err_idx, "curl_code");
    }
    campaign_error_set_codes(L, err_idx);
    return 0;
  }
  if (t->status >= 200 && t->status < 300) {
    if (r->raw) {
      lua_pushlstring(L, t->body ? t->body : "", t->body_len);
    } else if (t->body_len == 0) {
      lua_newtable(L);
    } else {
      char errbuf[256];
      size_t offset = 0;
      errbuf[0] = '\0';
      if (!campaign_json_decode(L, t->body, t->body_len, errbuf, sizeof errbuf, &offset)) {
        lua_pushnil(L);
        campaign_error_new(L, "json", errbuf[0] ? errbuf : "the response is not valid JSON");
        err_idx = lua_gettop(L);
        campaign_result_locate(L, err_idx, c, r, attempts);
        lua_pushinteger(L, t->status);
        lua_setfield(L, err_idx, "status");
        lua_pushinteger(L, (lua_Integer)offset);
        lua_setfield(L, err_idx, "offset");
        push_body_excerpt(L, t->body, t->body_len, secrets);
        lua_setfield(L, err_idx, "body");
        t->push_headers(L, t->ctx);
        lua_setfield(L, err_idx, "headers");
        campaign_error_set_codes(L, err_idx);
        return 0;
      }
    }
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, t->status);
    lua_setfield(L, -2, "status");
    t->push_headers(L, t->ctx);
    lua_setfield(L, -2, "headers");
    lua_pushinteger(L, attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, elapsed);
    lua_setfield(L, -2, "elapsed");
    if (t->new_connections >= 0) {
      lua_pushinteger(L, t->new_connections);
      lua_setfield(L, -2, "new_connections");
    }
    if (t->http_version != NULL) {
      lua_pushstring(L, t->http_version);
      lua_setfield(L, -2, "http_version");
    }
    return 1;
  }
  /* any other status: kind "http" */
  lua_pushnil(L);
  campaign_error_new(L, "http", "");
  err_idx = lua_gettop(L);
  lua_pushinteger(L, t->status);
  lua_setfield(L, err_idx, "status");
  campaign_result_locate(L, err_idx, c, r, attempts);
  describe_http_error(L, err_idx, t, secrets);
  t->push_headers(L, t->ctx);
  lua_setfield(L, err_idx, "headers");
  set_request_id(L, err_idx, t, secrets);
  {
    double after = retry_after(t);
    if (after >= 0) {
      if (after == (double)(lua_Integer)after) lua_pushinteger(L, (lua_Integer)after);
      else lua_pushnumber(L, after);
      lua_setfield(L, err_idx, "retry_after");
    }
  }
  campaign_error_set_codes(L, err_idx);
  return 0;
}
