/*
 * url.c - request URLs (see url.h).
 *
 * Path segments keep RFC 3986 unreserved characters, `@` (PKeys start with it), `:` and the
 * sub-delimiters other than `+` (which some servers read as a space); everything else is
 * percent-encoded, a space as %20. A valid %XX escape already in a path is kept as is, so an
 * href taken from a response goes out unchanged. What the server would read as structure is
 * refused, since nginx (and ACS's gateway) decode %XX before resolving the path and the request
 * could leave the addressed resource, or the API: segments `.` and `..` (also written with %2E),
 * an encoded separator (%2F, %5C) or a backslash in a segment, and a '#' anywhere. A '?' starts
 * the path's own query (an href's `?_lineStart=...`); keys are encoded by campaign.api.
 */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char HEX[] = "0123456789ABCDEF";

static int is_alpha(unsigned char ch) { return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'; }
static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }
static int is_hex(unsigned char ch) {
  return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}
static int is_unreserved(unsigned char ch) {
  return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}
static int is_control(unsigned char ch) { return ch < 0x20 || ch == 0x7f; }

/* Characters kept verbatim in a path segment. */
static int keep_in_segment(unsigned char ch) {
  if (is_unreserved(ch)) return 1;
  switch (ch) { /* a switch, not strchr: this runs for every byte of every path */
    case '@': case ':': case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case ',': case ';': case '=':
      return 1;
    default:
      return 0;
  }
}
/* Characters kept verbatim in a query key or value from a query table. */
static int keep_in_query_value(unsigned char ch) {
  return is_unreserved(ch) || ch == '@' || ch == ':' || ch == '/' || ch == ',';
}
/* Characters kept in a query string given verbatim (an href's own query). */
static int keep_in_verbatim_query(unsigned char ch) {
  return ch > 0x20 && ch < 0x7f && strchr("\"<>\\^`{|}#", ch) == NULL;
}

int campaign_url_is_absolute(const char *s, size_t len) {
  size_t i = 0;
  if (len == 0 || !is_alpha((unsigned char)s[0])) return 0;
  while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                     s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  return i + 2 < len && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/';
}

int campaign_url_origin(const char *s, size_t len, campaign_buf *out, size_t *rest) {
  size_t i, start, host_start, host_end, end;
  long port = -1;
  int https;
  char portbuf[16];
  if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
    https = 0;
    start = 7;
  } else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
    https = 1;
    start = 8;
  } else {
    return 0;
  }
  end = start;
  while (end < len && s[end] != '/' && s[end] != '?' && s[end] != '#') end++;
  for (i = start; i < end; i++) {
    if (s[i] == '@' || is_control((unsigned char)s[i]) || s[i] == ' ') return 0;
  }
  host_start = start;
  if (host_start < end && s[host_start] == '[') {
    host_end = host_start;
    while (host_end < end && s[host_end] != ']') host_end++;
    if (host_end == end) return 0;
    host_end++; /* keep the bracket */
  } else {
    host_end = host_start;
    while (host_end < end && s[host_end] != ':') host_end++;
  }
  if (host_end == host_start) return 0;
  if (host_end < end) {
    if (s[host_end] != ':') return 0;
    port = 0;
    for (i = host_end + 1; i < end; i++) {
      if (!is_digit((unsigned char)s[i]) || port > 65535) return 0;
      port = port * 10 + (s[i] - '0');
    }
    if (host_end + 1 == end) port = -1; /* "host:" means the default port */
    else if (port < 1 || port > 65535) return 0;
  }
  if (port < 0) port = https ? 443 : 80;
  campaign_buf_clear(out);
  if (!campaign_buf_adds(out, https ? "https://" : "http://")) return -1;
  for (i = host_start; i < host_end; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
    if (!campaign_buf_addc(out, ch)) return -1;
  }
  snprintf(portbuf, sizeof portbuf, ":%ld", port);
  if (!campaign_buf_adds(out, portbuf) || !campaign_buf_terminate(out)) return -1;
  *rest = end;
  return 1;
}

/* Raises "<fname>: <what>" after the out buffer is left as is (the client owns it). */
static int url_fail(lua_State *L, const char *fname, const char *what) {
  return luaL_error(L, "%s: %s", fname, what);
}

static void add_or_raise(lua_State *L, campaign_buf *out, const void *p, size_t n) {
  if (!campaign_buf_add(out, p, n)) luaL_error(L, "not enough memory");
}

static void add_escaped(lua_State *L, campaign_buf *out, unsigned char ch) {
  char e[3];
  e[0] = '%';
  e[1] = HEX[ch >> 4];
  e[2] = HEX[ch & 15];
  add_or_raise(L, out, e, 3);
}

/* 1 when the segment is `.` or `..`, also spelled with %2E. */
static int is_dot_segment(const char *s, size_t len) {
  size_t i = 0;
  int dots = 0;
  while (i < len) {
    if (s[i] == '.') {
      i++;
    } else if (i + 2 < len && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') {
      i += 3;
    } else {
      return 0;
    }
    dots++;
  }
  return dots == 1 || dots == 2;
}

/* Why a segment would be read as structure once the server decodes it, or NULL. The order of
 * the checks is campaign.ngx's too, so both clients name the same problem. */
static const char *segment_problem(const char *s, size_t len) {
  size_t i;
  if (is_dot_segment(s, len)) return "path segments '.' and '..' are refused";
  if (memchr(s, '\\', len) != NULL) return "backslashes are refused in paths";
  for (i = 0; i + 2 < len; i++) {
    if (s[i] == '%' && ((s[i + 1] == '2' && (s[i + 2] | 0x20) == 'f') ||
                        (s[i + 1] == '5' && (s[i + 2] | 0x20) == 'c')))
      return "encoded '/' and '\\' (%2F, %5C) are refused in paths (no ACS key contains one)";
  }
  return NULL;
}

/* Appends the path part (segments separated by '/'), encoding each segment. */
static void add_path(lua_State *L, const char *fname, const char *p, size_t len, campaign_buf *out) {
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    const char *problem;
    while (j < len && p[j] != '/') j++;
    problem = segment_problem(p + i, j - i);
    if (problem != NULL) url_fail(L, fname, problem);
    for (; i < j; i++) {
      unsigned char ch = (unsigned char)p[i];
      size_t run = i;
      /* a run of bytes kept as they are is copied at once (most paths are nothing else) */
      while (run < j && keep_in_segment((unsigned char)p[run])) run++;
      if (run > i) {
        add_or_raise(L, out, p + i, run - i);
        i = run - 1;
        continue;
      }
      if (is_control(ch)) url_fail(L, fname, "control characters (CR, LF, ...) are refused in paths");
      if (ch == '%' && i + 2 < len && is_hex((unsigned char)p[i + 1]) &&
          is_hex((unsigned char)p[i + 2])) {
        add_or_raise(L, out, &p[i], 3); /* an escape already made: kept, never encoded twice */
        i += 2;
      } else {
        add_escaped(L, out, ch);
      }
    }
    if (j < len) add_or_raise(L, out, "/", 1);
    i = j + 1;
  }
}

/* Appends a query string given verbatim (an href's own), fixing only what may not appear raw. */
static void add_verbatim_query(lua_State *L, const char *fname, const char *q, size_t len,
                               campaign_buf *out) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)q[i];
    if (is_control(ch)) url_fail(L, fname, "control characters (CR, LF, ...) are refused in queries");
    if (ch == '%') {
      if (i + 2 < len && is_hex((unsigned char)q[i + 1]) && is_hex((unsigned char)q[i + 2])) {
        add_or_raise(L, out, &q[i], 3);
        i += 2;
      } else {
        add_escaped(L, out, ch);
      }
    } else if (keep_in_verbatim_query(ch)) {
      add_or_raise(L, out, &q[i], 1);
    } else {
      add_escaped(L, out, ch);
    }
  }
}

static void add_query_text(lua_State *L, const char *fname, const char *s, size_t len,
                           campaign_buf *out) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (is_control(ch)) url_fail(L, fname, "control characters (CR, LF, ...) are refused in queries");
    if (keep_in_query_value(ch)) add_or_raise(L, out, &s[i], 1);
    else add_escaped(L, out, ch);
  }
}

/* Appends the scalar at idx as a query value. */
static void add_query_scalar(lua_State *L, const char *fname, const char *key, int idx,
                             campaign_buf *out) {
  char num[64];
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      add_query_text(L, fname, s, len, out);
      return;
    case LUA_TBOOLEAN:
      s = lua_toboolean(L, idx) ? "true" : "false";
      add_or_raise(L, out, s, strlen(s));
      return;
    case LUA_TNUMBER:
      if (campaign_isinteger(L, idx)) {
        snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
      } else {
        double d = (double)lua_tonumber(L, idx);
        if (d != d || d - d != 0)
          luaL_error(L, "%s: query value '%s' is not a finite number", fname, key);
        /* range first: converting an out-of-range double to an integer is undefined */
        if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d)
          snprintf(num, sizeof num, "%lld", (long long)d);
        else {
          snprintf(num, sizeof num, "%.15g", d);
          if (strtod(num, NULL) != d) snprintf(num, sizeof num, "%.17g", d);
        }
      }
      add_query_text(L, fname, num, strlen(num), out); /* 1e+300: a raw + would read as a space */
      return;
    default:
      luaL_error(L, "%s: query value '%s' must be a string, number, boolean or a list of them",
                 fname, key);
  }
}

typedef struct {
  const char *s;
  size_t len;
} key_ref;

static int compare_keys(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Appends the query table at idx; first tells whether a '?' was already written. */
static void add_query_table(lua_State *L, const char *fname, int idx, int first, campaign_buf *out) {
  size_t n = 0, k;
  key_ref *keys;
  idx = campaign_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: query keys must be strings", fname);
    n++;
    lua_pop(L, 1);
  }
  if (n == 0) return;
  /* Lua owns the key array, so an error below cannot leak it. */
  keys = lua_newuserdata(L, n * sizeof *keys);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    keys[n].s = lua_tolstring(L, -2, &keys[n].len); /* the key stays in the table: pointer stable */
    n++;
    lua_pop(L, 1);
  }
  qsort(keys, n, sizeof *keys, compare_keys);
  for (k = 0; k < n; k++) {
    int vtype;
    lua_pushlstring(L, keys[k].s, keys[k].len);
    lua_rawget(L, idx);
    vtype = lua_type(L, -1);
    if (vtype == LUA_TTABLE) {
      size_t i, count = campaign_rawlen(L, -1), entries = 0;
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        entries++;
        lua_pop(L, 1);
      }
      if (entries != count)
        luaL_error(L, "%s: query value '%s' must be a string, number, boolean or a list of them",
                   fname, keys[k].s);
      for (i = 1; i <= count; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (lua_type(L, -1) == LUA_TTABLE || lua_isnil(L, -1))
          luaL_error(L, "%s: query value '%s' must be a string, number, boolean or a list of them",
                     fname, keys[k].s);
        add_or_raise(L, out, first ? "?" : "&", 1);
        first = 0;
        add_query_text(L, fname, keys[k].s, keys[k].len, out);
        add_or_raise(L, out, "=", 1);
        add_query_scalar(L, fname, keys[k].s, -1, out);
        lua_pop(L, 1);
      }
    } else {
      add_or_raise(L, out, first ? "?" : "&", 1);
      first = 0;
      add_query_text(L, fname, keys[k].s, keys[k].len, out);
      add_or_raise(L, out, "=", 1);
      add_query_scalar(L, fname, keys[k].s, -1, out);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* keys */
}

void campaign_url_build(lua_State *L, const char *fname, const char *root, const char *origin,
                        const char *path, size_t path_len, int query_idx, campaign_buf *out) {
  size_t path_end, i, rest = 0;
  int has_query = 0;
  if (query_idx) query_idx = campaign_absindex(L, query_idx);
  for (i = 0; i < path_len; i++) {
    if (is_control((unsigned char)path[i]))
      url_fail(L, fname, "control characters (CR, LF, ...) are refused in paths");
  }
  /* Dropping a fragment silently turned ".../profile/#" into the collection: refused instead. */
  if (memchr(path, '#', path_len) != NULL)
    url_fail(L, fname, "'#' is refused in paths (a fragment is never sent; encode it as %23)");
  campaign_buf_clear(out);
  if (campaign_url_is_absolute(path, path_len)) {
    int r = campaign_url_origin(path, path_len, out, &rest);
    if (r < 0) luaL_error(L, "not enough memory");
    if (r == 0) url_fail(L, fname, "only http and https URLs without user information are accepted");
    if (strcmp(out->data, origin) != 0)
      url_fail(L, fname, "an absolute URL must have the base_url's scheme, host and port "
                         "(credentials never go to another origin)");
    campaign_buf_clear(out);
    add_or_raise(L, out, path, rest); /* scheme and authority as given */
    path += rest;
    path_len -= rest;
    if (path_len == 0 || path[0] != '/') add_or_raise(L, out, "/", 1);
  } else {
    /* root's own path ("/acme/campaign/", after the authority): an href relative to the host
     * that starts with it names the same place, so it is not put under the root twice */
    const char *root_path = strstr(root, "://");
    size_t root_path_len;
    root_path = root_path != NULL ? strchr(root_path + 3, '/') : NULL;
    root_path_len = root_path != NULL ? strlen(root_path) : 0;
    if (root_path_len > 0 && path_len >= root_path_len &&
        memcmp(path, root_path, root_path_len) == 0) {
      path += root_path_len;
      path_len -= root_path_len;
    }
    add_or_raise(L, out, root, strlen(root));
    while (path_len > 0 && path[0] == '/') {
      path++;
      path_len--;
    }
  }
  path_end = 0;
  while (path_end < path_len && path[path_end] != '?') path_end++;
  add_path(L, fname, path, path_end, out);
  if (path_end + 1 < path_len) {
    add_or_raise(L, out, "?", 1);
    add_verbatim_query(L, fname, path + path_end + 1, path_len - path_end - 1, out);
    has_query = 1;
  }
  if (query_idx && !lua_isnil(L, query_idx)) {
    if (!lua_istable(L, query_idx)) url_fail(L, fname, "option 'query' must be a table");
    add_query_table(L, fname, query_idx, !has_query, out);
  }
  if (!campaign_buf_terminate(out)) luaL_error(L, "not enough memory");
}
