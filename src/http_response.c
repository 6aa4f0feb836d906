/*
 * http_response.c - campaign._http_response: an incremental HTTP/1.1 response parser for the
 * cosocket transport of campaign.ngx (docs/openresty.md "The cosocket transport"). It does no
 * I/O: the transport feeds it the bytes it read and asks :need() how much to read next, so it
 * never reads past the end of a response on a keep-alive connection. It owns the framing
 * rules (RFC 9112): status line, header fields, Content-Length, chunked coding with
 * extensions and trailers, a body that ends with the connection, no body for HEAD/204/304,
 * 1xx answers skipped; and the limits: the head's size (max_head) and the body's (max_body).
 * Every byte it keeps is in C buffers owned by the userdata (freed by __gc); parsing raises
 * no Lua error: a bad response is a returned (nil, kind, message).
 */
#include <string.h>

#include "buf.h"
#include "http_response.h"

#define MT "campaign.http_response"
#define CHUNK_LINE_MAX 4096 /* a chunk-size line with its extensions */
#define CLOSE_READ 65536    /* bytes asked for at a time when the body ends with the connection */

enum state {
  S_STATUS, S_HEADER, S_BODY_LENGTH, S_BODY_CLOSE, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_END,
  S_TRAILER, S_DONE, S_ERROR
};

typedef struct parser {
  enum state state;
  campaign_buf line;    /* the current, incomplete line */
  campaign_buf fields;  /* the head's fields: lower-case name NUL value NUL, in order */
  campaign_buf body;
  size_t head_bytes, max_head, max_body;
  unsigned long long remaining; /* of the Content-Length body, or of the current chunk */
  unsigned long long length;
  int status, minor, head_request;
  int has_length, chunked, te_other, conn_close, conn_keepalive, extra;
  const char *err_kind;
  char err_msg[160];
} parser;

static int fail(parser *p, const char *kind, const char *msg) {
  p->state = S_ERROR;
  p->err_kind = kind;
  strncpy(p->err_msg, msg, sizeof p->err_msg - 1);
  p->err_msg[sizeof p->err_msg - 1] = '\0';
  return 0;
}

static int no_memory(parser *p) { return fail(p, "memory", "out of memory while reading the response"); }

static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
    || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* True when the comma-separated list s[0..n) holds token tok (case-insensitive). */
static int has_token(const char *s, size_t n, const char *tok) {
  size_t tl = strlen(tok), i = 0;
  while (i < n) {
    size_t a, b;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
    a = i;
    while (i < n && s[i] != ',') i++;
    b = i;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    if (b - a == tl) {
      size_t k;
      for (k = 0; k < tl; k++) {
        char c = s[a + k];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != tok[k]) break;
      }
      if (k == tl) return 1;
    }
  }
  return 0;
}

/* The last coding of a Transfer-Encoding list is chunked (then the body is chunked). */
static int last_is_chunked(const char *s, size_t n) {
  size_t b = n, a;
  while (b > 0 && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
  a = b;
  while (a > 0 && s[a - 1] != ',') a--;
  while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
  return b - a == 7 && has_token(s + a, 7, "chunked");
}

/* Content-Length: digits, or a list of equal values ("5, 5"); returns 0 when malformed. */
static int parse_length(const char *s, size_t n, unsigned long long *out) {
  size_t i = 0;
  int seen = 0;
  unsigned long long first = 0;
  while (i < n) {
    unsigned long long v = 0;
    size_t digits = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (v > (~0ULL - 9) / 10) return 0;
      v = v * 10 + (unsigned long long)(s[i] - '0');
      i++;
      digits++;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (digits == 0 || (i < n && s[i] != ',')) return 0;
    if (seen && v != first) return 0;
    first = v;
    seen = 1;
    if (i < n) i++;
  }
  if (!seen) return 0;
  *out = first;
  return 1;
}

static int status_line(parser *p, const char *s, size_t n) {
  if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' '
      || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9'
      || (n > 12 && s[12] != ' '))
    return fail(p, "protocol", "malformed status line (an HTTP/1.x server was expected)");
  p->minor = s[7] - '0';
  p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (p->status == 101) return fail(p, "protocol", "unexpected 101 Switching Protocols");
  p->state = S_HEADER;
  return 1;
}

/* Splits a field line into name (lower-cased in place) and value (OWS trimmed). */
static int split_field(char *s, size_t n, size_t *name_len, const char **value, size_t *value_len) {
  size_t i = 0, a, b;
  while (i < n && is_tchar((unsigned char)s[i])) {
    if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
    i++;
  }
  if (i == 0 || i >= n || s[i] != ':') return 0;
  *name_len = i;
  a = i + 1;
  b = n;
  while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
  for (i = a; i < b; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  *value = s + a;
  *value_len = b - a;
  return 1;
}

static int end_of_head(parser *p) {
  if (p->status < 200) { /* 1xx: an interim answer; the real one follows */
    campaign_buf_clear(&p->fields);
    p->has_length = p->chunked = p->te_other = p->conn_close = p->conn_keepalive = 0;
    p->state = S_STATUS;
    return 1;
  }
  if (p->head_request || p->status == 204 || p->status == 304) {
    p->state = S_DONE;
  } else if (p->chunked) {
    p->state = S_CHUNK_SIZE;
  } else if (p->te_other) {
    p->state = S_BODY_CLOSE;
  } else if (p->has_length) {
    if (p->length > p->max_body) return fail(p, "too_large", "the response body (Content-Length) is larger than max_body");
    p->remaining = p->length;
    p->state = p->length == 0 ? S_DONE : S_BODY_LENGTH;
  } else {
    p->state = S_BODY_CLOSE;
  }
  return 1;
}

static int header_line(parser *p, char *s, size_t n, int trailer) {
  size_t name_len, value_len;
  const char *value;
  if (n == 0) {
    if (trailer) {
      p->state = S_DONE;
      return 1;
    }
    return end_of_head(p);
  }
  if (s[0] == ' ' || s[0] == '\t') return fail(p, "protocol", "obsolete line folding in a response header");
  if (!split_field(s, n, &name_len, &value, &value_len))
    return fail(p, "protocol", trailer ? "malformed trailer field" : "malformed response header line");
  if (trailer) return 1; /* trailers are checked, not kept: the API sends none that matter */
  if (name_len == 14 && memcmp(s, "content-length", 14) == 0) {
    unsigned long long v;
    if (!parse_length(value, value_len, &v) || (p->has_length && v != p->length))
      return fail(p, "protocol", "malformed or conflicting Content-Length");
    p->has_length = 1;
    p->length = v;
  } else if (name_len == 17 && memcmp(s, "transfer-encoding", 17) == 0) {
    if (last_is_chunked(value, value_len)) {
      p->chunked = 1;
      p->te_other = 0;
    } else {
      p->chunked = 0;
      p->te_other = 1;
    }
  } else if (name_len == 10 && memcmp(s, "connection", 10) == 0) {
    if (has_token(value, value_len, "close")) p->conn_close = 1;
    if (has_token(value, value_len, "keep-alive")) p->conn_keepalive = 1;
  }
  if (!campaign_buf_add(&p->fields, s, name_len) || !campaign_buf_addc(&p->fields, '\0')
      || !campaign_buf_add(&p->fields, value, value_len) || !campaign_buf_addc(&p->fields, '\0'))
    return no_memory(p);
  return 1;
}

static int chunk_size_line(parser *p, const char *s, size_t n) {
  size_t i = 0;
  unsigned long long v = 0;
  int h;
  while (i < n && (h = hexval((unsigned char)s[i])) >= 0) {
    if (v > (~0ULL >> 4)) return fail(p, "protocol", "chunk size overflows");
    v = (v << 4) | (unsigned long long)h;
    i++;
  }
  if (i == 0) return fail(p, "protocol", "malformed chunk size");
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  if (i < n && s[i] != ';') return fail(p, "protocol", "malformed chunk size");
  if (v > p->max_body || p->body.len + v > p->max_body)
    return fail(p, "too_large", "the response body (chunked) is larger than max_body");
  if (v == 0) {
    p->state = S_TRAILER;
  } else {
    p->remaining = v;
    p->state = S_CHUNK_DATA;
  }
  return 1;
}

/* One complete line (its LF and an optional CR before it removed). */
static int line(parser *p, char *s, size_t n) {
  switch (p->state) {
  case S_STATUS: return status_line(p, s, n);
  case S_HEADER: return header_line(p, s, n, 0);
  case S_TRAILER: return header_line(p, s, n, 1);
  case S_CHUNK_SIZE: return chunk_size_line(p, s, n);
  case S_CHUNK_END:
    if (n != 0) return fail(p, "protocol", "chunk data longer than its size");
    p->state = S_CHUNK_SIZE;
    return 1;
  default: return fail(p, "protocol", "internal state error");
  }
}

static int is_line_state(enum state s) {
  return s == S_STATUS || s == S_HEADER || s == S_TRAILER || s == S_CHUNK_SIZE || s == S_CHUNK_END;
}

static void feed(parser *p, const char *data, size_t len) {
  size_t pos = 0;
  while (pos < len && p->state != S_ERROR) {
    if (p->state == S_DONE) { /* more than the framing said: never reuse this connection */
      p->extra = 1;
      return;
    }
    if (is_line_state(p->state)) {
      const char *nl = memchr(data + pos, '\n', len - pos);
      size_t take = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
      int head = p->state == S_STATUS || p->state == S_HEADER || p->state == S_TRAILER;
      if (head) {
        p->head_bytes += take;
        if (p->head_bytes > p->max_head) {
          fail(p, "too_large", "the response head is larger than max_head");
          return;
        }
      } else if (p->line.len + take > CHUNK_LINE_MAX) {
        fail(p, "protocol", "chunk size line too long");
        return;
      }
      if (!campaign_buf_add(&p->line, data + pos, take)) {
        no_memory(p);
        return;
      }
      pos += take;
      if (nl) {
        size_t n = p->line.len - 1;
        if (n > 0 && p->line.data[n - 1] == '\r') n--;
        line(p, p->line.data, n);
        campaign_buf_clear(&p->line);
      }
    } else if (p->state == S_BODY_CLOSE) {
      if (p->body.len + (len - pos) > p->max_body) {
        fail(p, "too_large", "the response body is larger than max_body");
        return;
      }
      if (!campaign_buf_add(&p->body, data + pos, len - pos)) {
        no_memory(p);
        return;
      }
      pos = len;
    } else { /* S_BODY_LENGTH, S_CHUNK_DATA */
      size_t take = len - pos;
      if ((unsigned long long)take > p->remaining) take = (size_t)p->remaining;
      if (!campaign_buf_add(&p->body, data + pos, take)) {
        no_memory(p);
        return;
      }
      pos += take;
      p->remaining -= take;
      if (p->remaining == 0) p->state = p->state == S_BODY_LENGTH ? S_DONE : S_CHUNK_END;
    }
  }
}

static parser *check(lua_State *L) { return (parser *)luaL_checkudata(L, 1, MT); }

static const char *state_name(enum state s) {
  switch (s) {
  case S_STATUS: case S_HEADER: return "head";
  case S_DONE: return "done";
  default: return "body";
  }
}

static int push_state(lua_State *L, parser *p) {
  if (p->state == S_ERROR) {
    lua_pushnil(L);
    lua_pushstring(L, p->err_kind);
    lua_pushstring(L, p->err_msg);
    return 3;
  }
  lua_pushstring(L, state_name(p->state));
  return 1;
}

/* p:feed(bytes) -> "head" | "body" | "done" | nil, kind, message; p:feed(nil): the
 * connection closed (ends a body read until close, else an error). */
static int l_feed(lua_State *L) {
  parser *p = check(L);
  if (lua_isnoneornil(L, 2)) {
    if (p->state == S_BODY_CLOSE) p->state = S_DONE;
    else if (p->state != S_DONE && p->state != S_ERROR)
      fail(p, "protocol", p->state == S_STATUS && p->head_bytes == 0 && p->status == 0
        ? "the connection closed before any response" : "the connection closed before the end of the response");
  } else {
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    feed(p, data, len);
  }
  return push_state(L, p);
}

/* p:need() -> "line" | n (bytes), [ "close" when the body ends with the connection ] | nil */
static int l_need(lua_State *L) {
  parser *p = check(L);
  if (is_line_state(p->state)) {
    lua_pushliteral(L, "line");
    return 1;
  }
  switch (p->state) {
  case S_BODY_LENGTH: lua_pushnumber(L, (lua_Number)p->remaining); return 1;
  case S_CHUNK_DATA: lua_pushnumber(L, (lua_Number)p->remaining + 2); return 1; /* + CRLF */
  case S_BODY_CLOSE: {
    size_t room = p->max_body - p->body.len + 1; /* one more than allowed: over max_body shows */
    lua_pushnumber(L, (lua_Number)(room < CLOSE_READ ? room : CLOSE_READ));
    lua_pushliteral(L, "close");
    return 2;
  }
  default: lua_pushnil(L); return 1;
  }
}

static int l_status(lua_State *L) {
  parser *p = check(L);
  if (p->status >= 200) lua_pushinteger(L, p->status);
  else lua_pushnil(L);
  return 1;
}

/* p:headers() -> {lower-case name = value}; a repeated field's values joined with ", " */
static int l_headers(lua_State *L) {
  parser *p = check(L);
  size_t i = 0;
  lua_newtable(L);
  while (i < p->fields.len) {
    const char *name = p->fields.data + i;
    size_t nl = strlen(name);
    const char *value = name + nl + 1;
    size_t vl = strlen(value);
    i += nl + vl + 2;
    lua_pushlstring(L, name, nl);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isstring(L, -1)) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, vl);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value, vl);
    }
    lua_rawset(L, -3);
  }
  return 1;
}

static int l_body(lua_State *L) {
  parser *p = check(L);
  lua_pushlstring(L, p->body.data ? p->body.data : "", p->body.len);
  return 1;
}

/* True when the response ended where its framing said and the connection may carry another
 * request (HTTP/1.1 without Connection: close, or 1.0 with keep-alive). */
static int may_keep_alive(const parser *p) {
  return p->state == S_DONE && !p->extra && !p->conn_close && !(p->chunked && p->has_length)
    && !p->te_other && (p->head_request || p->status == 204 || p->status == 304 || p->chunked
      || p->has_length)
    && (p->minor >= 1 || p->conn_keepalive);
}

/* p:keepalive() -> boolean: may_keep_alive */
static int l_keepalive(lua_State *L) {
  lua_pushboolean(L, may_keep_alive(check(L)));
  return 1;
}

/* p:response() -> keepalive, {status, headers, body}: a finished response in one call (the
 * transport's table), as the four calls would give it; the cosocket transport's hot path. */
static int l_response(lua_State *L) {
  parser *p = check(L);
  lua_pushboolean(L, may_keep_alive(p));
  lua_createtable(L, 0, 3);
  l_status(L);
  lua_setfield(L, -2, "status");
  lua_settop(L, 3);
  l_headers(L);
  lua_setfield(L, 3, "headers");
  l_body(L);
  lua_setfield(L, 3, "body");
  return 2;
}

static int l_gc(lua_State *L) {
  parser *p = check(L);
  campaign_buf_free(&p->line);
  campaign_buf_free(&p->fields);
  campaign_buf_free(&p->body);
  return 0;
}

static size_t opt_size(lua_State *L, const char *name, size_t dflt) {
  lua_Number v;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  if (!lua_isnumber(L, -1)) luaL_error(L, "campaign._http_response: option '%s' must be a number", name);
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v >= 0 && v <= 9007199254740992.0)) luaL_error(L, "campaign._http_response: option '%s' must be a non-negative integer", name);
  return (size_t)v;
}

/* campaign._http_response([{max_head = 65536, max_body = 64 MiB, head = false}]) -> parser */
static int l_new(lua_State *L) {
  parser *p;
  size_t max_head = 65536, max_body = (size_t)64 * 1024 * 1024;
  int head = 0;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    max_head = opt_size(L, "max_head", max_head);
    max_body = opt_size(L, "max_body", max_body);
    lua_getfield(L, 1, "head");
    head = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  p = (parser *)campaign_newuserdata(L, sizeof *p);
  memset(p, 0, sizeof *p);
  p->state = S_STATUS;
  p->max_head = max_head;
  p->max_body = max_body;
  p->head_request = head;
  luaL_getmetatable(L, MT);
  lua_setmetatable(L, -2);
  return 1;
}

void campaign_http_response_register(lua_State *L, int m) {
  static const luaL_Reg methods[] = {
    {"feed", l_feed}, {"need", l_need}, {"status", l_status}, {"headers", l_headers},
    {"body", l_body}, {"keepalive", l_keepalive}, {"response", l_response}, {NULL, NULL}};
  m = campaign_absindex(L, m);
  if (luaL_newmetatable(L, MT)) {
    lua_newtable(L);
    campaign_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, m, "_http_response");
}
