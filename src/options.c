/* options.c - campaign.new's options (see options.h and docs/client.md "Options"). */
#include "options.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "url.h"

static const char *const OPTION_NAMES[] = {
  "org", "api_key", "token", "base_url", "timeout", "connect_timeout", "retries",
  "retry_base", "retry_max", "cafile", "insecure", "proxy", "user_agent", "max_body",
  "http2", "on_event", "allow_http", "rate", "burst", "budget", NULL};

int campaign_header_value_ok(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
  }
  return 1;
}

int campaign_header_name_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0) return 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch) != NULL) return 0;
  }
  return 1;
}

static int option_fail(lua_State *L, const char *fn, const char *name, const char *what) {
  return luaL_error(L, "%s: option '%s' %s", fn, name, what);
}

static char *copy_string(lua_State *L, const char *s, size_t len) {
  char *p = malloc(len + 1);
  if (p == NULL) luaL_error(L, "not enough memory");
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

/* Pushes opts[name]; returns its type. */
static int get_option(lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  return lua_type(L, -1);
}

/* A string option with no control characters; required ones raise when missing. */
static const char *string_option(lua_State *L, const char *fn, int idx, const char *name,
                                 int required,
                                 size_t *len) {
  int t = get_option(L, idx, name);
  const char *s;
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    if (required) option_fail(L, fn, name, "is required");
    return NULL;
  }
  if (t != LUA_TSTRING) option_fail(L, fn, name, "must be a string");
  s = lua_tolstring(L, -1, len);
  if (*len == 0) option_fail(L, fn, name, "must not be empty");
  if (!campaign_header_value_ok(s, *len) || strchr(s, '\t') != NULL || strlen(s) != *len)
    option_fail(L, fn, name, "must not contain control characters");
  lua_pop(L, 1); /* the string stays in the option table, so s remains valid */
  return s;
}

static double number_option(lua_State *L, const char *fn, int idx, const char *name, double dflt,
                            int positive) {
  double d;
  int t = get_option(L, idx, name);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TNUMBER) option_fail(L, fn, name, positive ? "must be a positive number (seconds)"
                                                      : "must be a non-negative number (seconds)");
  d = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(d == d) || d - d != 0 || d < 0 || (positive && d == 0))
    option_fail(L, fn, name, positive ? "must be a positive number (seconds)"
                                  : "must be a non-negative number (seconds)");
  return d;
}

static long long integer_option(lua_State *L, const char *fn, int idx, const char *name,
                                long long dflt,
                                long long min, long long max, const char *what) {
  double d;
  int t = get_option(L, idx, name);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TNUMBER) option_fail(L, fn, name, what);
  d = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(d == d) || d != floor(d) || d < (double)min || d > (double)max)
    option_fail(L, fn, name, what);
  return (long long)d;
}

static int boolean_option(lua_State *L, const char *fn, int idx, const char *name, int dflt) {
  int t = get_option(L, idx, name), v;
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TBOOLEAN) option_fail(L, fn, name, "must be a boolean");
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void check_names(lua_State *L, const char *fn, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *name;
    int i, known = 0;
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: option names must be strings", fn);
    name = lua_tostring(L, -2);
    for (i = 0; OPTION_NAMES[i] != NULL; i++) {
      if (strcmp(name, OPTION_NAMES[i]) == 0) {
        known = 1;
        break;
      }
    }
    if (!known) luaL_error(L, "%s: unknown option '%s'", fn, name);
    lua_pop(L, 1);
  }
}

/* The org is one URL segment: a tenant id such as acme or acme-mkt-stage1. */
static void check_org(lua_State *L, const char *fn, const char *org, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)org[i];
    if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') && !(ch >= '0' && ch <= '9') &&
        ch != '-' && ch != '_' && ch != '.')
      option_fail(L, fn, "org", "must be a tenant id (letters, digits, '-', '_', '.')");
  }
  if (strcmp(org, ".") == 0 || strcmp(org, "..") == 0)
    option_fail(L, fn, "org", "must be a tenant id (letters, digits, '-', '_', '.')");
}

/* 1 when the host of a normalised origin ("http://host:port", host lower case, IPv6 in
 * brackets) is a loopback one: 127.0.0.0/8, ::1 or localhost (the emulator, a local proxy). */
static int loopback_origin(const char *origin) {
  const char *host = strstr(origin, "://"), *colon = strrchr(origin, ':');
  char text[64];
  size_t len;
  if (host == NULL || colon == NULL) return 0;
  host += 3;
  len = (size_t)(colon - host);
  if (len == 0 || len >= sizeof text) return 0;
  memcpy(text, host, len);
  text[len] = '\0';
  if (strcmp(text, "localhost") == 0) return 1;
  if (text[0] == '[' && text[len - 1] == ']') {
    struct in6_addr a6;
    text[len - 1] = '\0';
    return inet_pton(AF_INET6, text + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    struct in_addr a4; /* inet_pton takes the dotted quad only: "127.1" is not loopback here */
    return inet_pton(AF_INET, text, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
  }
}

/* base_url: http(s)://host[:port][/prefix], no query, fragment or user information; plain
 * http only to a loopback host unless allow_http (the token and API key go in every request). */
static void parse_base_url(lua_State *L, const char *fn, const char *s, size_t len,
                           campaign_options *o,
                           int allow_http) {
  campaign_buf origin = {NULL, 0, 0};
  size_t rest = 0, i;
  int r;
  while (len > 0 && s[len - 1] == '/') len--; /* no trailing slash */
  r = campaign_url_origin(s, len, &origin, &rest);
  if (r > 0 && (o->origin = malloc(origin.len + 1)) != NULL)
    memcpy(o->origin, origin.data, origin.len + 1); /* origin.data is NUL-terminated */
  campaign_buf_free(&origin);
  if (r < 0 || (r > 0 && o->origin == NULL)) luaL_error(L, "not enough memory");
  if (r == 0)
    option_fail(L, fn, "base_url", "must be an http:// or https:// URL without user information");
  for (i = rest; i < len; i++) {
    if (s[i] == '?' || s[i] == '#' || s[i] == ' ')
      option_fail(L, fn, "base_url", "must not have a query, a fragment or spaces");
  }
  if (!allow_http && strncmp(o->origin, "http://", 7) == 0 && !loopback_origin(o->origin))
    option_fail(L, fn, "base_url", "is plain http:// to a host that is not loopback (127.0.0.0/8, "
                "::1, localhost): the token and API key would travel in cleartext; use "
                "https://, or set allow_http = true");
  o->base_url = copy_string(L, s, len);
}

static void parse_pacing(lua_State *L, const char *fn, int idx, int uv_idx, campaign_options *o);

void campaign_options_parse(lua_State *L, int idx, int uv_idx, campaign_options *o, char **token) {
  campaign_options_parse_as(L, idx, uv_idx, o, token, "campaign.new");
}

void campaign_options_parse_as(lua_State *L, int idx, int uv_idx, campaign_options *o,
                               char **token, const char *fn) {
  const char *s;
  size_t len;
  int t;
  idx = campaign_absindex(L, idx);
  uv_idx = campaign_absindex(L, uv_idx);
  check_names(L, fn, idx);

  s = string_option(L, fn, idx, "org", 1, &len);
  check_org(L, fn, s, len);
  o->org = copy_string(L, s, len);
  s = string_option(L, fn, idx, "api_key", 1, &len);
  o->api_key = copy_string(L, s, len);

  t = get_option(L, idx, "token");
  if (t == LUA_TFUNCTION) {
    lua_setfield(L, uv_idx, "token");
    o->has_provider = 1;
  } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    lua_pop(L, 1); /* token = false: no Authorization header (the IMS token endpoint itself) */
  } else {
    lua_pop(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNIL)
      option_fail(L, fn, "token", "must be a string, a function(force_refresh) -> token, or false");
    s = string_option(L, fn, idx, "token", 1, &len);
    if (memchr(s, ' ', len) != NULL) option_fail(L, fn, "token", "must not contain spaces");
    *token = copy_string(L, s, len);
  }

  s = string_option(L, fn, idx, "base_url", 0, &len);
  if (s == NULL) {
    s = CAMPAIGN_DEFAULT_BASE_URL;
    len = strlen(s);
  }
  parse_base_url(L, fn, s, len, o, boolean_option(L, fn, idx, "allow_http", 0));
  {
    size_t blen = strlen(o->base_url), olen = strlen(o->org);
    o->root = malloc(blen + olen + sizeof "//campaign/");
    if (o->root == NULL) luaL_error(L, "not enough memory");
    memcpy(o->root, o->base_url, blen);
    o->root[blen] = '/';
    memcpy(o->root + blen + 1, o->org, olen);
    memcpy(o->root + blen + 1 + olen, "/campaign/", sizeof "/campaign/");
  }

  o->timeout = number_option(L, fn, idx, "timeout", 30, 1);
  o->connect_timeout = number_option(L, fn, idx, "connect_timeout", 10, 1);
  o->retries = (long)integer_option(L, fn, idx, "retries", 3, 0, 100,
                                    "must be a non-negative integer (at most 100)");
  o->retry_base = number_option(L, fn, idx, "retry_base", 0.5, 0);
  o->retry_max = number_option(L, fn, idx, "retry_max", 30, 0);
  o->max_body = integer_option(L, fn, idx, "max_body", 64LL * 1024 * 1024, 1, 1LL << 50,
                               "must be a positive integer (bytes)");
  o->insecure = boolean_option(L, fn, idx, "insecure", 0);
  o->http2 = boolean_option(L, fn, idx, "http2", 1);

  s = string_option(L, fn, idx, "cafile", 0, &len);
  if (s != NULL) o->cafile = copy_string(L, s, len);
  s = string_option(L, fn, idx, "proxy", 0, &len);
  if (s != NULL) o->proxy = copy_string(L, s, len);
  s = string_option(L, fn, idx, "user_agent", 0, &len);
  if (s != NULL) o->user_agent = copy_string(L, s, len);

  parse_pacing(L, fn, idx, uv_idx, o);

  t = get_option(L, idx, "on_event");
  if (t == LUA_TFUNCTION) {
    lua_setfield(L, uv_idx, "on_event");
    o->has_on_event = 1;
  } else {
    lua_pop(L, 1);
    if (t != LUA_TNIL) option_fail(L, fn, "on_event", "must be a function(event)");
  }
}

/* rate, burst and budget (docs/client.md "Pacing and budget"). */
static void parse_pacing(lua_State *L, const char *fn, int idx, int uv_idx, campaign_options *o) {
  int t = get_option(L, idx, "rate");
  double d;
  if (t != LUA_TNIL) {
    d = t == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -1;
    if (!(d > 0) || d - d != 0 || d > 1e6)
      option_fail(L, fn, "rate", "must be a positive number (requests per second, at most 1e6)");
    o->rate = d;
  }
  lua_pop(L, 1);
  o->burst = (double)integer_option(L, fn, idx, "burst", 1, 1, 1000000,
                                    "must be a positive integer (requests at once)");
  lua_getfield(L, idx, "burst");
  if (!lua_isnil(L, -1) && o->rate == 0) option_fail(L, fn, "burst", "needs the option 'rate'");
  lua_pop(L, 1);
  t = get_option(L, idx, "budget");
  if (t == LUA_TTABLE) {
    /* the rolling form keeps its count in a file: that I/O lives in Lua (campaign.budget),
     * which validates the table and returns the hook called before every attempt */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "campaign.budget");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "hook");
    lua_remove(L, -2);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_setfield(L, uv_idx, "budget");
    o->has_budget = 2;
    return;
  }
  lua_pop(L, 1);
  if (t != LUA_TNIL) {
    o->budget = integer_option(L, fn, idx, "budget", 0, 1, 1LL << 53,
                               "must be a positive integer (calls) or a table {calls = n, "
                               "per = \"day\", file = path}");
    o->budget_total = o->budget;
    o->has_budget = 1;
  }
}

void campaign_options_free(campaign_options *o) {
  free(o->org);
  free(o->api_key);
  free(o->base_url);
  free(o->user_agent);
  free(o->cafile);
  free(o->proxy);
  free(o->origin);
  free(o->root);
  memset(o, 0, sizeof *o);
}
