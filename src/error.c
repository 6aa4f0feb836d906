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
}
