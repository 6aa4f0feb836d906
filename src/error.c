/*
 * error.c - the error object (see error.h and docs/errors.md).
 * __tostring gives one line:
 *   campaign: PATCH profileAndServices/profile/@x -> 404 Not Found: <first line of message>
 *   campaign: GET profileAndServices/profile -> timeout: <libcurl's message>
 *   campaign: auth: <message>                  (no request attached)
 */
#include "error.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

const char *campaign_reason_phrase(long status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

/* Pushes t[k] as a string, or NULL when it is not a string or number (nothing pushed). */
static const char *field_string(lua_State *L, int idx, const char *k, size_t *len) {
  lua_getfield(L, idx, k);
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
    return lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return NULL;
}

/* Adds ": " and the message on one line: ACS chains its codes on several lines
 * ("RST-360011 An error has occurred...\nXTK-170036 Unable to parse..."), and the later lines
 * hold the cause, so every non-blank line is kept, joined with " / ". */
static void add_message_lines(luaL_Buffer *b, const char *message, size_t mlen) {
  size_t i = 0;
  int first = 1;
  while (i < mlen) {
    size_t start = i, end;
    while (i < mlen && message[i] != '\n' && message[i] != '\r') i++;
    end = i;
    while (start < end && (message[start] == ' ' || message[start] == '\t')) start++;
    while (end > start && (message[end - 1] == ' ' || message[end - 1] == '\t')) end--;
    if (end > start) {
      luaL_addstring(b, first ? ": " : " / ");
      luaL_addlstring(b, message + start, end - start);
      first = 0;
    }
    while (i < mlen && (message[i] == '\n' || message[i] == '\r')) i++;
  }
}

static int error_tostring(lua_State *L) {
  size_t mlen = 0, len;
  const char *kind, *method, *path, *message;
  long status;
  luaL_Buffer b;
  int top = lua_gettop(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field_string(L, 1, "kind", &len);
  method = field_string(L, 1, "method", &len);
  path = field_string(L, 1, "path", &len);
  if (path == NULL) path = field_string(L, 1, "url", &len);
  message = field_string(L, 1, "message", &mlen);
  if (kind == NULL) kind = "error";
  lua_getfield(L, 1, "status");
  status = lua_type(L, -1) == LUA_TNUMBER ? (long)lua_tonumber(L, -1) : -1;
  lua_pop(L, 1);
  /* every field string stays on the stack below the buffer */
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "campaign: ");
  if (method != NULL && path != NULL) {
    luaL_addstring(&b, method);
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, path);
    luaL_addstring(&b, " -> ");
    if (strcmp(kind, "http") == 0 && status >= 0) {
      const char *reason = campaign_reason_phrase(status);
      char num[24];
      snprintf(num, sizeof num, "%ld", status);
      luaL_addstring(&b, num);
      if (*reason) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, reason);
      }
    } else {
      luaL_addstring(&b, kind);
    }
  } else {
    luaL_addstring(&b, kind);
  }
  if (message != NULL) add_message_lines(&b, message, mlen);
  luaL_pushresult(&b);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

/* ---- text from the server ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 when there is none
 * (overlong forms, UTF-16 surrogates and code points above U+10FFFF are not well formed). */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t k, len;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) len = 3;
  else if (c >= 0xF0 && c <= 0xF4) len = 4;
  else return 0;
  if (n < len) return 0;
  if (c == 0xE0) lo = 0xA0;
  else if (c == 0xED) hi = 0x9F;
  else if (c == 0xF0) lo = 0x90;
  else if (c == 0xF4) hi = 0x8F;
  if (s[1] < lo || s[1] > hi) return 0;
  for (k = 2; k < len; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return len;
}

size_t campaign_utf8_cut(const char *s, size_t n, size_t max) {
  const unsigned char *u = (const unsigned char *)s;
  size_t j = max;
  if (n <= max) return n;
  while (j > 0 && max - j < 3) {
    j--;
    if ((u[j] & 0xC0) != 0x80) { /* the lead byte before the edge */
      size_t k = utf8_sequence(u + j, n - j);
      return k > 0 && j + k > max ? j : max;
    }
  }
  return max;
}

#define MAX_SECRETS 8

/* Bytes of a secret that start at s (n bytes left): a whole secret, or the longest run of at
 * least CAMPAIGN_SECRET_PREFIX bytes that a (longer) secret starts with; 0 when none. */
static size_t secret_at(const char *s, size_t n, const char *const *sec, const size_t *len,
                        int count) {
  size_t best = 0;
  int i;
  for (i = 0; i < count; i++) {
    size_t k;
    if (s[0] != sec[i][0]) continue;
    if (len[i] < CAMPAIGN_SECRET_PREFIX) {
      if (n >= len[i] && len[i] > best && memcmp(s, sec[i], len[i]) == 0) best = len[i];
      continue;
    }
    if (n < CAMPAIGN_SECRET_PREFIX || memcmp(s, sec[i], CAMPAIGN_SECRET_PREFIX) != 0) continue;
    for (k = CAMPAIGN_SECRET_PREFIX; k < len[i] && k < n && s[k] == sec[i][k]; k++) {}
    if (k > best) best = k;
  }
  return best;
}

void campaign_error_push_text(lua_State *L, const char *s, size_t n, size_t max, int utf8,
                              const char *const *secrets) {
  const char *sec[MAX_SECRETS];
  size_t len[MAX_SECRETS], i, run, rn, cut;
  const char *r;
  int count = 0;
  luaL_Buffer b;
  for (i = 0; secrets != NULL && secrets[i] != NULL && count < MAX_SECRETS; i++) {
    size_t l = strlen(secrets[i]);
    if (l >= CAMPAIGN_SECRET_MIN) {
      sec[count] = secrets[i];
      len[count++] = l;
    }
  }
  /* redacted first, on the whole text: a cut made before would hide a secret's end from it */
  luaL_buffinit(L, &b);
  for (i = 0, run = 0; i < n;) {
    size_t k = count > 0 ? secret_at(s + i, n - i, sec, len, count) : 0;
    if (k == 0) {
      i++;
      continue;
    }
    luaL_addlstring(&b, s + run, i - run);
    luaL_addstring(&b, "<redacted>");
    i += k;
    run = i;
  }
  luaL_addlstring(&b, s + run, n - run);
  luaL_pushresult(&b);
  r = lua_tolstring(L, -1, &rn);
  if (!utf8) {
    cut = max > 0 ? campaign_utf8_cut(r, rn, max) : rn;
    if (cut < rn) {
      lua_pushlstring(L, r, cut);
      lua_remove(L, -2);
    }
    return;
  }
  luaL_buffinit(L, &b);
  for (i = 0, run = 0, cut = 0; i < rn;) {
    size_t k = utf8_sequence((const unsigned char *)r + i, rn - i);
    size_t add = k > 0 ? k : 3; /* U+FFFD is 3 bytes */
    if (max > 0 && cut + add > max) break;
    cut += add;
    if (k > 0) {
      i += k;
      continue;
    }
    luaL_addlstring(&b, r + run, i - run);
    luaL_addstring(&b, "\xEF\xBF\xBD");
    run = ++i;
  }
  luaL_addlstring(&b, r + run, i - run);
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

static int is_upper(char ch) { return ch >= 'A' && ch <= 'Z'; }
static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_alnum(char ch) {
  return is_upper(ch) || is_digit(ch) || (ch >= 'a' && ch <= 'z');
}

void campaign_error_set_codes(lua_State *L, int idx) {
  size_t len = 0, i;
  int n = 0;
  const char *m;
  idx = campaign_absindex(L, idx);
  lua_newtable(L);
  luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
  if (lua_istable(L, -1)) lua_setmetatable(L, -2); /* encodes as [] even when empty */
  else lua_pop(L, 1);
  lua_getfield(L, idx, "message");
  m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  for (i = 0; m != NULL && i + 10 <= len; i++) {
    int j, ok = (i == 0 || !is_alnum(m[i - 1])) && is_upper(m[i]) && is_upper(m[i + 1]) &&
                is_upper(m[i + 2]) && m[i + 3] == '-';
    for (j = 4; ok && j < 10; j++) ok = is_digit(m[i + j]);
    if (ok && (i + 10 == len || !is_alnum(m[i + 10]))) {
      lua_pushlstring(L, m + i, 10);
      lua_rawseti(L, -3, ++n);
      i += 9;
    }
  }
  lua_pop(L, 1); /* message */
  lua_setfield(L, idx, "codes");
}

void campaign_error_new(lua_State *L, const char *kind, const char *message) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  campaign_setmetatable(L, CAMPAIGN_ERROR_MT);
}

int campaign_is_error(lua_State *L, int idx) {
  int yes;
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, CAMPAIGN_ERROR_MT);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/* campaign.error(fields) -> fields, now an error object. Raises unless fields.kind is a
 * string. Sets codes from the message when the table has none. */
static int error_make(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "kind");
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "campaign.error: field 'kind' must be a string");
  lua_pop(L, 1);
  lua_getfield(L, 1, "message");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "campaign.error: field 'message' must be a string");
  lua_pop(L, 1);
  lua_getfield(L, 1, "codes");
  if (lua_isnil(L, -1)) campaign_error_set_codes(L, 1);
  lua_pop(L, 1);
  campaign_setmetatable(L, CAMPAIGN_ERROR_MT);
  return 1;
}

/* campaign._error_text(text[, max[, secrets[, raw]]]) -> text made fit for an error field by
 * campaign_error_push_text: the rule campaign.ngx and campaign.auth share with the C client.
 * secrets: a list (non-strings skipped). Internal: docs/errors.md "Text from the server". */
static int error_text(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer max = luaL_optinteger(L, 2, 0);
  const char *secrets[MAX_SECRETS + 1];
  int n = 0, i;
  if (max < 0) luaL_argerror(L, 2, "non-negative byte count expected");
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    for (i = 1; n < MAX_SECRETS; i++) {
      lua_rawgeti(L, 3, i);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      /* the strings stay alive in the table for the call */
      if (lua_type(L, -1) == LUA_TSTRING) secrets[n++] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  secrets[n] = NULL;
  campaign_error_push_text(L, s, len, (size_t)max, !lua_toboolean(L, 4), secrets);
  return 1;
}

static int error_check(lua_State *L) {
  lua_pushboolean(L, campaign_is_error(L, 1));
  return 1;
}

void campaign_error_register(lua_State *L, int module_idx) {
  module_idx = campaign_absindex(L, module_idx);
  luaL_newmetatable(L, CAMPAIGN_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "campaign.Error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, error_make);
  lua_setfield(L, module_idx, "error");
  lua_pushcfunction(L, error_check);
  lua_setfield(L, module_idx, "is_error");
  lua_pushcfunction(L, error_text);
  lua_setfield(L, module_idx, "_error_text");
}
