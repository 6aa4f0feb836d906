/*
 * json_encode.c - Lua values to JSON text (campaign_json_encode, behind campaign.encode and
 * every request body): the output buffer, strings, numbers, arrays and objects (sorted keys and
 * indentation for {pretty}), and the usage errors that name the key path ("$.tags[2]"). The
 * UTF-8 and number rules it applies are json_utf8.c's and json_number.c's.
 *
 * The encoder writes into a C buffer (first on the C stack, then on the heap owned by a
 * userdata with __gc) because a luaL_Buffer cannot stay open across lua_next.
 */
#include "json.h"
#include "json_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps rarely used code (error messages, the slow paths) out of the frames of the recursive
 * encoder: at 1000 levels of nesting every byte of its frame counts 1000 times. */
#if defined(__GNUC__)
#  define COLD __attribute__((noinline, cold))
#else
#  define COLD
#endif

#define ENCODER_MT "campaign.json.encoder"

#define ENCODE_STACK_BUFFER 1024

/* The position of a value in the document, for error messages ("$.tags[2]"): a chain of
 * frames on the C stack from the value up to the root. */
typedef struct path {
  const struct path *up;
  const char *key;            /* object member name, or NULL for an array element */
  size_t keylen;
  lua_Integer index;          /* 1-based array index */
  const void *table;          /* the table at this position (for cycle reports) */
} path;

typedef struct {
  const char *s;
  size_t n;
  int slot;                   /* index of the key in the key list table */
} sort_key;

/* Heap memory of one encode call, owned by a userdata so that an error frees it. */
typedef struct {
  char *buf;
  sort_key *keys;
} encoder_box;

typedef struct {
  lua_State *L;
  char *buf;
  size_t len, cap;
  encoder_box *box;           /* NULL until heap memory is needed */
  int box_slot, mt_slot, flags;
  size_t nkeys, keys_cap;
  char stack_buffer[ENCODE_STACK_BUFFER];
} encoder;

static int encoder_gc(lua_State *L) {
  encoder_box *b = lua_touserdata(L, 1);
  free(b->buf);
  b->buf = NULL;
  free(b->keys);
  b->keys = NULL;
  return 0;
}

static encoder_box *encoder_box_get(encoder *e) {
  if (e->box == NULL) {
    encoder_box *b = campaign_newuserdata(e->L, sizeof *b);
    b->buf = NULL;
    b->keys = NULL;
    campaign_setmetatable(e->L, ENCODER_MT);
    lua_replace(e->L, e->box_slot);
    e->box = b;
  }
  return e->box;
}

static void encode_nomem(encoder *e) {
  luaL_error(e->L, "campaign.encode: not enough memory");
}

static void encoder_grow(encoder *e, size_t need) {
  size_t cap = e->cap;
  char *p;
  encoder_box *b = encoder_box_get(e);
  while (cap - e->len < need) {
    if (cap > SIZE_MAX / 2) encode_nomem(e);
    cap *= 2;
  }
  if (b->buf == NULL) {
    p = malloc(cap);
    if (p == NULL) encode_nomem(e);
    memcpy(p, e->buf, e->len);
  } else {
    p = realloc(b->buf, cap);
    if (p == NULL) encode_nomem(e);
  }
  b->buf = p;
  e->buf = p;
  e->cap = cap;
}

static inline void reserve(encoder *e, size_t n) {
  if (e->cap - e->len < n) encoder_grow(e, n);
}

static inline void put_char(encoder *e, char c) {
  reserve(e, 1);
  e->buf[e->len++] = c;
}

static void put_bytes(encoder *e, const char *s, size_t n) {
  reserve(e, n);
  memcpy(e->buf + e->len, s, n);
  e->len += n;
}

static void put_newline(encoder *e, int depth) {
  size_t n = 2 * (size_t)depth;
  reserve(e, n + 1);
  e->buf[e->len++] = '\n';
  memset(e->buf + e->len, ' ', n);
  e->len += n;
}

/* --- error messages with the key path --- */

static int is_identifier(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Adds ["key"] to b: quotes and backslashes escaped, bytes that are not UTF-8 as \xNN, long
 * keys cut after 60 bytes. */
static void add_quoted_key(luaL_Buffer *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  luaL_addstring(b, "[\"");
  while (i < n) {
    size_t k = json_utf8_sequence(u + i, n - i);
    if (i >= 60) { luaL_addstring(b, "..."); break; }
    if (k == 1 && u[i] >= 0x20 && u[i] != 0x7F) {
      if (u[i] == '"' || u[i] == '\\') luaL_addchar(b, '\\');
      luaL_addchar(b, (char)u[i]);
    } else if (k > 1) {
      luaL_addlstring(b, s + i, k);
    } else {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02X", u[i]);
      luaL_addstring(b, hex);
      k = 1;
    }
    i += k;
  }
  luaL_addstring(b, "\"]");
}

static void add_segment(luaL_Buffer *b, const path *p) {
  if (p->key) {
    if (is_identifier(p->key, p->keylen)) {
      luaL_addchar(b, '.');
      luaL_addlstring(b, p->key, p->keylen);
    } else {
      add_quoted_key(b, p->key, p->keylen);
    }
  } else {
    char num[32];
    snprintf(num, sizeof num, "[%lld]", (long long)p->index);
    luaL_addstring(b, num);
  }
}

/* Collects the frames of p root first into an array kept alive on the stack. [-0, +1, m] */
static const path **path_frames(lua_State *L, const path *p, size_t *count) {
  size_t n = 0;
  const path **frames;
  for (const path *q = p; q; q = q->up) n++;
  frames = lua_newuserdata(L, n * sizeof *frames);
  for (size_t i = n; i-- > 0; p = p->up) frames[i] = p;
  *count = n;
  return frames;
}

/* Pushes "$.a[2].b" for frames[0..n); paths of more than 40 steps lose their middle. */
static void push_path(lua_State *L, const path **frames, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '$');
  for (size_t i = 1; i < n; i++) {
    if (n > 41 && i == 21) {
      char gap[48];
      snprintf(gap, sizeof gap, "...(%lu more)...", (unsigned long)(n - 41));
      luaL_addstring(&b, gap);
      i = n - 20;
    }
    add_segment(&b, frames[i]);
  }
  luaL_pushresult(&b);
}

/* Raises "campaign.encode: <what> at <path>". Does not return. */
COLD static void encode_fail(encoder *e, const path *at, const char *what) {
  lua_State *L = e->L;
  size_t n;
  const path **frames = path_frames(L, at, &n);
  push_path(L, frames, n);
  lua_pushfstring(L, "campaign.encode: %s at %s", what, lua_tostring(L, -1));
  lua_error(L);
}

/* Depth over the limit: either a cycle (some table contains itself) or just deep nesting. */
COLD static void encode_too_deep(encoder *e, const path *at) {
  lua_State *L = e->L;
  size_t n;
  const path **frames = path_frames(L, at, &n);
  for (size_t j = 1; j < n; j++) {
    for (size_t i = 0; i < j; i++) {
      if (frames[i]->table == frames[j]->table) {
        push_path(L, frames, j + 1);
        push_path(L, frames, i + 1);
        lua_pushfstring(L, "campaign.encode: cycle at %s (the same table as %s)",
                        lua_tostring(L, -2), lua_tostring(L, -1));
        lua_error(L);
      }
    }
  }
  encode_fail(e, at, "nesting deeper than 1000");
}

enum { KEY_IN_OBJECT, KEY_IN_ARRAY, KEY_IN_MARKED_ARRAY };

/* Raises for the key at stack index k of the table at `at`, which cannot be a JSON key in
 * that table (an object's keys are strings, an array's are 1..n). Does not return. */
COLD static void encode_bad_key(encoder *e, const path *at, int k, int context) {
  lua_State *L = e->L;
  char what[96];
  switch (lua_type(L, k)) {
    case LUA_TSTRING:
      encode_fail(e, at, context == KEY_IN_MARKED_ARRAY ? "string key in a table marked as an array"
                                                        : "mixed string and integer keys");
      break;
    case LUA_TNUMBER: {
      lua_Number v = lua_tonumber(L, k);
      if (context == KEY_IN_OBJECT && (campaign_isinteger(L, k) || v == floor(v)))
        encode_fail(e, at, "mixed string and integer keys");
      snprintf(what, sizeof what, "non-integer number key %.17g", (double)v);
      encode_fail(e, at, what);
      break;
    }
    default:
      snprintf(what, sizeof what, "key of type %s", luaL_typename(L, k));
      encode_fail(e, at, what);
  }
}

COLD static void encode_fail_index(encoder *e, const path *at, lua_Integer k) {
  char what[96];
  snprintf(what, sizeof what, "array index %lld out of range (arrays start at 1)", (long long)k);
  encode_fail(e, at, what);
}

COLD static void encode_fail_sparse(encoder *e, const path *at, lua_Integer count,
                                    lua_Integer max) {
  char what[128];
  snprintf(what, sizeof what, "sparse array (%lld values, largest index %lld)",
           (long long)count, (long long)max);
  encode_fail(e, at, what);
}

COLD static void encode_fail_type(encoder *e, const path *at, int idx) {
  char what[64];
  snprintf(what, sizeof what, "cannot encode a %s", luaL_typename(e->L, idx));
  encode_fail(e, at, what);
}

/* --- values --- */

/* 0: copy as is; 1: escape; 2: first byte of a multi-byte sequence (validated). */
static const unsigned char escape_class[256] = {
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

/* Nonzero when one of the 8 bytes of w is below 0x20, '"', '\\' or 0x80 and above
 * (the "has a byte less than n" and "has a zero byte" word tricks, exact for "any"). */
static inline int has_special_byte(uint64_t w) {
  uint64_t quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
  uint64_t control = (w - ONES * 0x20) & ~w;
  uint64_t is_quote = (quote - ONES) & ~quote;
  uint64_t is_backslash = (backslash - ONES) & ~backslash;
  return ((control | is_quote | is_backslash | w) & HIGHS) != 0;
}

/* Writes s as a JSON string, copying while it scans (eight bytes at a time while nothing needs
 * escaping). Invariant: from o there is room for the rest of s plus the closing quote. */
static void put_string(encoder *e, const char *s, size_t n, const path *at, int is_key) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  char *o;
  reserve(e, n + 2);
  o = e->buf + e->len;
  *o++ = '"';
  for (;;) {
    unsigned char c;
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, u + i, 8);
      if (has_special_byte(w)) break;
      memcpy(o, &w, 8);
      o += 8;
      i += 8;
    }
    while (i < n && escape_class[u[i]] == 0) *o++ = (char)u[i++];
    if (i >= n) break;
    c = u[i];
    if (escape_class[c] == 2) {
      size_t k = json_utf8_sequence(u + i, n - i);
      if (k == 0) encode_fail(e, at, is_key ? "invalid UTF-8 in key" : "invalid UTF-8 in string");
      memcpy(o, u + i, k);
      o += k;
      i += k;
      continue;
    }
    e->len = (size_t)(o - e->buf);
    reserve(e, 6 + (n - i) + 1);            /* an escape is up to 5 bytes longer */
    o = e->buf + e->len;
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      default:
        o[0] = 'u'; o[1] = '0'; o[2] = '0';
        o[3] = "0123456789abcdef"[c >> 4];
        o[4] = "0123456789abcdef"[c & 15];
        o += 5;
    }
    i++;
  }
  *o++ = '"';
  e->len = (size_t)(o - e->buf);
}

static void put_number(encoder *e, int idx, const path *at) {
  lua_State *L = e->L;
  double d;
  reserve(e, 32);
#if CAMPAIGN_HAVE_INTEGERS
  if (lua_isinteger(L, idx)) {
    e->len += json_format_int64(e->buf + e->len, (int64_t)lua_tointeger(L, idx));
    return;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (d != d) encode_fail(e, at, "cannot encode NaN");
  if (d == HUGE_VAL || d == -HUGE_VAL) encode_fail(e, at, "cannot encode infinity");
  e->len += json_format_double(e->buf + e->len, d);
}

static void put_value(encoder *e, int idx, path *at, int depth);

/* Is the key at stack index k the integer i? */
static int key_is_index(lua_State *L, int k, lua_Integer i) {
#if CAMPAIGN_HAVE_INTEGERS
  return lua_isinteger(L, k) && lua_tointeger(L, k) == i;
#else
  return lua_type(L, k) == LUA_TNUMBER && lua_tonumber(L, k) == (lua_Number)i;
#endif
}

/* An array whose keys lua_next did not return as 1, 2, 3...: check every key, then write
 * t[1..n]. */
COLD static void put_array_checked(encoder *e, int t, path *at, int depth, int marked) {
  lua_State *L = e->L;
  lua_Integer count = 0, max = 0, i;
  int context = marked ? KEY_IN_MARKED_ARRAY : KEY_IN_ARRAY, string_key = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_Integer k;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {   /* reported after the loop: a bad key is more precise */
      string_key = 1;
      continue;
    }
    if (lua_type(L, -1) != LUA_TNUMBER) encode_bad_key(e, at, -1, context);
#if CAMPAIGN_HAVE_INTEGERS
    if (!lua_isinteger(L, -1)) encode_bad_key(e, at, -1, context);
    k = lua_tointeger(L, -1);
#else
    {
      lua_Number v = lua_tonumber(L, -1);
      if (v != floor(v)) encode_bad_key(e, at, -1, context);
      k = v < 1 ? 0 : v >= 9.2e18 ? (lua_Integer)9.2e18 : (lua_Integer)v;
    }
#endif
    if (k < 1) encode_fail_index(e, at, k);
    count++;
    if (k > max) max = k;
  }
  if (string_key) {
    encode_fail(e, at, marked ? "string key in a table marked as an array"
                              : "mixed string and integer keys");
  }
  if (count != max) encode_fail_sparse(e, at, count, max);
  put_char(e, '[');
  for (i = 1; i <= max; i++) {
    path child = {at, NULL, 0, i, NULL};
    if (i > 1) put_char(e, ',');
    if (e->flags & ENCODE_PRETTY) put_newline(e, depth);
    lua_rawgeti(L, t, i);
    put_value(e, lua_gettop(L), &child, depth);
    lua_pop(L, 1);
  }
  if (e->flags & ENCODE_PRETTY) put_newline(e, depth - 1);
  put_char(e, ']');
}

/* Called with the first key and value from lua_next on the stack (a key that is not a
 * string): writes the elements in lua_next's order while the keys are 1, 2, 3...; at the
 * first other key it starts again with put_array_checked. */
static void put_array(encoder *e, int t, path *at, int depth, int marked) {
  lua_State *L = e->L;
  size_t mark = e->len;
  lua_Integer i = 1;
  put_char(e, '[');
  do {
    path child = {at, NULL, 0, i, NULL};
    if (!key_is_index(L, -2, i)) {
      lua_pop(L, 2);
      e->len = mark;
      put_array_checked(e, t, at, depth, marked);
      return;
    }
    if (i > 1) put_char(e, ',');
    if (e->flags & ENCODE_PRETTY) put_newline(e, depth);
    put_value(e, lua_gettop(L), &child, depth);
    lua_pop(L, 1);
    i++;
  } while (lua_next(L, t));
  if (e->flags & ENCODE_PRETTY) put_newline(e, depth - 1);
  put_char(e, ']');
}

/* Called with the first key (a string) and value from lua_next on the stack. */
static void put_object(encoder *e, int t, path *at, int depth) {
  lua_State *L = e->L;
  int first = 1;
  put_char(e, '{');
  do {
    size_t n;
    const char *k;
    path child;
    if (lua_type(L, -2) != LUA_TSTRING) encode_bad_key(e, at, -2, KEY_IN_OBJECT);
    k = lua_tolstring(L, -2, &n);
    child.up = at; child.key = k; child.keylen = n; child.index = 0; child.table = NULL;
    if (!first) put_char(e, ',');
    first = 0;
    put_string(e, k, n, &child, 1);
    put_char(e, ':');
    put_value(e, lua_gettop(L), &child, depth);
    lua_pop(L, 1);
  } while (lua_next(L, t));
  put_char(e, '}');
}

static int compare_keys(const void *a, const void *b) {
  const sort_key *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  if (c) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* An object with its keys in byte order (= code point order for UTF-8). The keys are
 * collected in a list table on the stack, which keeps the strings alive for the pointers. */
COLD static void put_object_sorted(encoder *e, int t, path *at, int depth) {
  lua_State *L = e->L;
  size_t base = e->nkeys, n = 0;
  int list;
  lua_newtable(L);
  list = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) encode_bad_key(e, at, -1, KEY_IN_OBJECT);
    lua_pushvalue(L, -1);
    lua_rawseti(L, list, (lua_Integer)++n);
  }
  if (base + n > e->keys_cap) {
    encoder_box *b = encoder_box_get(e);
    size_t cap = e->keys_cap ? e->keys_cap : 32;
    sort_key *p;
    while (cap < base + n) cap *= 2;
    p = realloc(b->keys, cap * sizeof *p);
    if (p == NULL) encode_nomem(e);
    b->keys = p;
    e->keys_cap = cap;
  }
  for (size_t j = 0; j < n; j++) {
    sort_key *k = &e->box->keys[base + j];
    lua_rawgeti(L, list, (lua_Integer)(j + 1));
    k->s = lua_tolstring(L, -1, &k->n);
    k->slot = (int)(j + 1);
    lua_pop(L, 1);
  }
  qsort(e->box->keys + base, n, sizeof(sort_key), compare_keys);
  e->nkeys = base + n;
  put_char(e, '{');
  for (size_t j = 0; j < n; j++) {
    sort_key k = e->box->keys[base + j];   /* copied: nested objects may move the array */
    path child = {at, k.s, k.n, 0, NULL};
    if (j) put_char(e, ',');
    if (e->flags & ENCODE_PRETTY) put_newline(e, depth);
    put_string(e, k.s, k.n, &child, 1);
    if (e->flags & ENCODE_PRETTY) put_bytes(e, ": ", 2);
    else put_char(e, ':');
    lua_rawgeti(L, list, k.slot);
    lua_rawget(L, t);
    put_value(e, lua_gettop(L), &child, depth);
    lua_pop(L, 1);
  }
  e->nkeys = base;
  if (e->flags & ENCODE_PRETTY) put_newline(e, depth - 1);
  put_char(e, '}');
  lua_pop(L, 1);
}

static void put_table(encoder *e, int t, path *at, int depth) {
  lua_State *L = e->L;
  int marked = 0;
  at->table = lua_topointer(L, t);
  if (depth > JSON_MAX_DEPTH) encode_too_deep(e, at);
  luaL_checkstack(L, 6, "campaign.encode: nesting too deep");
  if (lua_getmetatable(L, t)) {
    marked = lua_rawequal(L, -1, e->mt_slot);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  if (!lua_next(L, t)) {
    put_bytes(e, marked ? "[]" : "{}", 2);
    return;
  }
  if (lua_type(L, -2) == LUA_TSTRING && !marked) {
    if (e->flags & ENCODE_SORT_KEYS) {
      lua_pop(L, 2);
      put_object_sorted(e, t, at, depth);
    } else {
      put_object(e, t, at, depth);
    }
  } else {
    put_array(e, t, at, depth, marked);
  }
}

static void put_value(encoder *e, int idx, path *at, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      put_string(e, s, n, at, 0);
      break;
    }
    case LUA_TNUMBER:
      put_number(e, idx, at);
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put_bytes(e, "true", 4);
      else put_bytes(e, "false", 5);
      break;
    case LUA_TTABLE:
      put_table(e, idx, at, depth + 1);
      break;
    case LUA_TNIL:
      put_bytes(e, "null", 4);
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        put_bytes(e, "null", 4);
        break;
      }
      /* fall through */
    default:
      encode_fail_type(e, at, idx);
  }
}

void json_encode_with(lua_State *L, int idx, int flags) {
  encoder e;
  path root = {NULL, NULL, 0, 0, NULL};
  idx = campaign_absindex(L, idx);
  e.L = L;
  e.buf = e.stack_buffer;
  e.len = 0;
  e.cap = sizeof e.stack_buffer;
  e.box = NULL;
  e.flags = flags;
  e.nkeys = 0;
  e.keys_cap = 0;
  luaL_checkstack(L, 8, "campaign.encode");
  luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
  e.mt_slot = lua_gettop(L);
  lua_pushnil(L);                       /* becomes the box if heap memory is needed */
  e.box_slot = lua_gettop(L);
  put_value(&e, idx, &root, 0);
  lua_pushlstring(L, e.buf, e.len);
  if (e.box) {
    free(e.box->buf);
    e.box->buf = NULL;
    free(e.box->keys);
    e.box->keys = NULL;
  }
  lua_replace(L, e.mt_slot);
  lua_settop(L, e.mt_slot);
}

void campaign_json_encode(lua_State *L, int idx) {
  json_encode_with(L, idx, 0);
}

void json_encode_register(lua_State *L) {
  luaL_newmetatable(L, ENCODER_MT);
  lua_pushcfunction(L, encoder_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
