/*
 * url_fuzz.c - the request URL builder (src/url.c) on arbitrary paths and query tables.
 * Input: NUL-separated parts; the first is the path, each later one a query entry "key=value"
 * whose value may hold several items separated by \x01 (a list: the key repeats).
 * The builder may refuse (raise a usage error); when it accepts, the URL must:
 *   - start with the client's root (a relative path) or its origin followed by "/" (absolute);
 *   - hold only printable ASCII without spaces (0x21..0x7e) and no '#';
 *   - have a valid %XX after every '%';
 *   - have no path segment that is "." or ".." once percent-decoded (the request could leave
 *     the API).
 * A violation aborts (libFuzzer saves the input); crashes and sanitizer reports are findings.
 */
#include "fuzz_lua.h"
#include "url.h"

static lua_State *L;
static campaign_buf out; /* reused; a raise leaves it reachable here, never leaked */

static const char ROOT[] = "http://127.0.0.1:8080/acme/campaign/";
static const char ORIGIN[] = "http://127.0.0.1:8080";

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

static void finding(const char *what, const char *url) {
  fprintf(stderr, "FUZZ-BUG %s: %s\n", what, url);
  abort();
}

/* [path, query-or-nil] -> builds into `out`; raises on refusal. */
static int build(lua_State *S) {
  size_t len;
  const char *path = lua_tolstring(S, 1, &len);
  campaign_url_build(S, "fuzz", ROOT, ORIGIN, path, len, lua_isnil(S, 2) ? 0 : 2, &out);
  return 0;
}

static void check_segment(const char *seg, size_t len, const char *url) {
  char decoded[4];
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    char c = seg[i];
    if (c == '%' && i + 2 < len && hexval(seg[i + 1]) >= 0 && hexval(seg[i + 2]) >= 0) {
      c = (char)(hexval(seg[i + 1]) * 16 + hexval(seg[i + 2]));
      i += 2;
    }
    if (n < sizeof decoded) decoded[n] = c;
    n++;
  }
  if ((n == 1 && decoded[0] == '.') || (n == 2 && decoded[0] == '.' && decoded[1] == '.'))
    finding("dot segment in the built URL", url);
}

static void check_url(const char *url, size_t len, int absolute) {
  size_t start, i;
  if (absolute) {
    /* the request must go to the client's own origin, whatever spelling the caller used */
    campaign_buf origin = {NULL, 0, 0};
    size_t rest = 0;
    int same = campaign_url_origin(url, len, &origin, &rest) == 1 && strcmp(origin.data, ORIGIN) == 0;
    campaign_buf_free(&origin);
    if (!same) finding("absolute URL sent to another origin", url);
    if (rest >= len || url[rest] != '/') finding("absolute URL without a path", url);
    start = rest + 1;
  } else {
    if (strncmp(url, ROOT, strlen(ROOT)) != 0) finding("relative path left the root", url);
    start = strlen(ROOT);
  }
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)url[i];
    if (c <= 0x20 || c >= 0x7f) finding("unsafe byte in the built URL", url);
    if (c == '#') finding("fragment in the built URL", url);
    if (c == '%' && (i + 2 >= len || hexval(url[i + 1]) < 0 || hexval(url[i + 2]) < 0))
      finding("bad percent escape in the built URL", url);
  }
  /* path segments, up to the query */
  i = start;
  while (i <= len && url[i] != '?') {
    size_t j = i;
    while (j < len && url[j] != '/' && url[j] != '?') j++;
    check_segment(url + i, j - i, url);
    if (j >= len || url[j] == '?') break;
    i = j + 1;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_new_state("return function() end");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *end = s + size;
  const char *nul = memchr(s, '\0', size);
  size_t path_len = nul ? (size_t)(nul - s) : size;
  int absolute = campaign_url_is_absolute(s, path_len);

  lua_settop(L, 0);
  lua_pushcfunction(L, build);
  lua_pushlstring(L, s, path_len);
  if (nul) {
    const char *p = nul + 1;
    lua_newtable(L);
    while (p < end) {
      const char *q = memchr(p, '\0', (size_t)(end - p));
      const char *stop = q ? q : end;
      const char *eq = memchr(p, '=', (size_t)(stop - p));
      const char *vstart = eq ? eq + 1 : stop;
      lua_pushlstring(L, p, (size_t)((eq ? eq : stop) - p));
      if (memchr(vstart, '\x01', (size_t)(stop - vstart))) {
        int n = 0;
        lua_newtable(L);
        while (vstart <= stop) {
          const char *sep = memchr(vstart, '\x01', (size_t)(stop - vstart));
          const char *vend = sep ? sep : stop;
          lua_pushlstring(L, vstart, (size_t)(vend - vstart));
          lua_rawseti(L, -2, ++n);
          vstart = vend + 1;
        }
      } else if (stop - vstart > 0 && stop - vstart < 24 && vstart[0] == '#') {
        /* "#<number>" gives a number value, so numeric formatting is fuzzed too */
        lua_pushlstring(L, vstart + 1, (size_t)(stop - vstart - 1));
        if (!lua_stringtonumber(L, lua_tostring(L, -1))) lua_pushboolean(L, stop - vstart > 1 && vstart[1] == 't');
        lua_remove(L, -2);
      } else {
        lua_pushlstring(L, vstart, (size_t)(stop - vstart));
      }
      lua_rawset(L, -3);
      p = stop + 1;
    }
  } else {
    lua_pushnil(L);
  }
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) check_url(out.data, out.len, absolute);
  lua_settop(L, 0);
  return 0;
}
