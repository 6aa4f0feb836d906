/*
 * json_decode.c - JSON text to Lua values (campaign_json_decode, behind campaign.decode and
 * every response body): the yajl callbacks, the tape they record, and building the Lua values
 * from the tape. The UTF-8 and number rules it applies are json_utf8.c's and json_number.c's.
 *
 * Caveats, and why the code is shaped the way it is:
 *  - yajl parses and validates the syntax. It does not check everything JSON requires, so this
 *    file adds: strict UTF-8 (no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF),
 *    strict \u escapes (yajl turns a lone surrogate into '?' or into a wrong character; here
 *    it is an error), form feed and vertical tab refused as whitespace, depth over 1000, and
 *    numbers that overflow a double.
 *  - No Lua API function is called while yajl is on the C stack or holds memory (a Lua error
 *    would longjmp over it and leak). The callbacks record a "tape" of events; the Lua values
 *    are built from the tape after yajl is freed. The tape of a text up to 2 KiB lives on the
 *    C stack (nothing to leak); a larger one is owned by a userdata with __gc.
 *  - Error offsets are 0-based byte offsets into the text given to decode.
 */
#include "json.h"
#include "json_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#define DECODER_MT "campaign.json.decoder"

/* Tape records: one tag byte, then for
 *   T_INT: int64   T_FLOAT: double   T_ARRAY/T_OBJECT: size_t count (patched at T_END)
 *   T_TEXT/T_KEY_TEXT: size_t offset, size_t length of bytes inside the input text
 *   T_STR/T_KEY: size_t length, then the bytes (strings that had escapes, decoded here). */
enum { T_NULL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_TEXT, T_KEY_TEXT, T_STR, T_KEY,
       T_ARRAY, T_OBJECT, T_END };

typedef struct {
  size_t record;          /* tape offset of the T_ARRAY/T_OBJECT record */
  size_t count;           /* elements (array) or members (object) so far */
  int is_array;
} open_container;

typedef struct {
  unsigned char *tape;
  size_t len, cap;
  open_container *open;
  size_t open_cap, depth, max_depth;
  yajl_handle parser;
  const unsigned char *text;
  size_t text_len;
  int failed;             /* 0 or one of DECODE_* */
  size_t err_offset;
  const char *err_reason;
  /* A small document is decoded with memory on the C stack only (no userdata, no malloc):
   * tape_fixed/open_fixed are then the C-stack arrays, and arena serves yajl's allocations. */
  int small;
  unsigned char *tape_fixed;
  open_container *open_fixed;
  unsigned char *arena;
  size_t arena_used, arena_cap;
} decoder;

enum { DECODE_INVALID = 1, DECODE_NOMEM = 2, DECODE_TOO_BIG = 3 };

static void decoder_release(decoder *d) {
  if (d->parser) { yajl_free(d->parser); d->parser = NULL; }
  if (d->tape != d->tape_fixed) free(d->tape);
  d->tape = d->tape_fixed;
  if (d->open != d->open_fixed) free(d->open);
  d->open = d->open_fixed;
}

/* yajl's allocator while decoding a small document: blocks from the arena while it lasts
 * (freeing them is a no-op), then from the heap. yajl is freed before any Lua API call, so
 * heap blocks cannot leak. Each block starts with its size and where it lives. */
typedef struct { size_t size, on_heap; } arena_block;

static void *arena_malloc(void *ctx, size_t size) {
  decoder *d = ctx;
  arena_block *b;
  size_t need = sizeof(arena_block) + ((size + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1));
  if (size < d->arena_cap && need <= d->arena_cap - d->arena_used) {
    b = (arena_block *)(void *)(d->arena + d->arena_used);
    d->arena_used += need;
    b->on_heap = 0;
  } else {
    if (size > SIZE_MAX - sizeof(arena_block)) return NULL;
    b = malloc(sizeof(arena_block) + size);
    if (b == NULL) return NULL;
    b->on_heap = 1;
  }
  b->size = size;
  return b + 1;
}

static void arena_free(void *ctx, void *p) {
  (void)ctx;
  if (p != NULL && ((arena_block *)p - 1)->on_heap) free((arena_block *)p - 1);
}

static void *arena_realloc(void *ctx, void *p, size_t size) {
  arena_block *b;
  void *q;
  if (p == NULL) return arena_malloc(ctx, size);
  b = (arena_block *)p - 1;
  if (b->on_heap) {
    if (size > SIZE_MAX - sizeof(arena_block)) return NULL;
    b = realloc(b, sizeof(arena_block) + size);
    if (b == NULL) return NULL;
    b->size = size;
    return b + 1;
  }
  if (size <= b->size) return p;
  q = arena_malloc(ctx, size);
  if (q != NULL) memcpy(q, p, b->size);
  return q;
}

static int decoder_gc(lua_State *L) {
  decoder_release(lua_touserdata(L, 1));
  return 0;
}

static int decode_fail(decoder *d, const char *reason, size_t offset) {
  d->failed = DECODE_INVALID;
  d->err_reason = reason;
  d->err_offset = offset;
  return 0;
}

static int tape_grow(decoder *d, size_t n) {
  size_t cap;
  unsigned char *p;
  cap = d->cap ? d->cap : 256;
  while (cap - d->len < n) {
    if (cap > SIZE_MAX / 2) { d->failed = DECODE_NOMEM; return 0; }
    cap *= 2;
  }
  if (d->small) { d->failed = DECODE_TOO_BIG; return 0; }
  if (d->tape != NULL && d->tape == d->tape_fixed) {
    p = malloc(cap);
    if (p != NULL) memcpy(p, d->tape, d->len);
  } else {
    p = realloc(d->tape, cap);
  }
  if (p == NULL) { d->failed = DECODE_NOMEM; return 0; }
  d->tape = p;
  d->cap = cap;
  return 1;
}

/* Room for n more bytes on the tape; 0 (and d->failed set) when memory runs out. */
static inline int tape_reserve(decoder *d, size_t n) {
  return d->cap - d->len >= n || tape_grow(d, n);
}

static void tape_put_size(decoder *d, size_t v) {
  memcpy(d->tape + d->len, &v, sizeof v);
  d->len += sizeof v;
}

/* Counts one more element in the enclosing array. */
static void note_element(decoder *d) {
  if (d->depth && d->open[d->depth - 1].is_array) d->open[d->depth - 1].count++;
}

static int tape_tag(decoder *d, unsigned char tag) {
  if (!tape_reserve(d, 1)) return 0;
  note_element(d);
  d->tape[d->len++] = tag;
  return 1;
}

static int on_null(void *ctx) { return tape_tag(ctx, T_NULL); }
static int on_boolean(void *ctx, int b) { return tape_tag(ctx, b ? T_TRUE : T_FALSE); }

/* Where a token that yajl hands over starts in the input: tokens are normally slices of the
 * input; a number at the very end of it is copied by yajl's lexer into its own buffer. */
static size_t token_offset(const decoder *d, const void *p, size_t n) {
  uintptr_t a = (uintptr_t)p, base = (uintptr_t)d->text;
  if (a >= base && a - base <= d->text_len) return (size_t)(a - base);
  return d->text_len >= n ? d->text_len - n : 0;
}

static int on_number(void *ctx, const char *s, size_t n) {
  decoder *d = ctx;
  int is_integer = 1;
  int64_t i;
  if (!tape_reserve(d, 1 + sizeof(double) + sizeof(int64_t))) return 0;
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '.' || s[k] == 'e' || s[k] == 'E') { is_integer = 0; break; }
  }
  if (is_integer && json_parse_int64(s, n, &i)) {
    note_element(d);
    d->tape[d->len++] = T_INT;
    memcpy(d->tape + d->len, &i, sizeof i);
    d->len += sizeof i;
  } else {
    double v;
    int ok = json_parse_double(s, n, &v);
    if (ok < 0) { d->failed = DECODE_NOMEM; return 0; }
    if (ok == 0) return decode_fail(d, "number out of the range of a double", token_offset(d, s, n));
    note_element(d);
    d->tape[d->len++] = T_FLOAT;
    memcpy(d->tape + d->len, &v, sizeof v);
    d->len += sizeof v;
  }
  return 1;
}

static unsigned long hex4(const unsigned char *s) {
  unsigned long v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned char c = s[k];
    v = v * 16 + (unsigned long)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

/* Decodes the body of a string token that has escapes (raw[0..n), as it is in the input at
 * offset base; yajl has checked its syntax) onto the tape as a T_STR/T_KEY record. */
static int tape_escaped(decoder *d, const unsigned char *raw, size_t n, size_t base, int is_key) {
  unsigned char *o;
  size_t i = 0, len = 0, record;
  if (!tape_reserve(d, 1 + sizeof(size_t) + n)) return 0;   /* decoding never grows */
  record = d->len;
  o = d->tape + record + 1 + sizeof(size_t);
  while (i < n) {
    unsigned char c = raw[i];
    if (c == '\\') {
      unsigned long cp;
      size_t at = i;
      c = raw[i + 1];
      i += 2;
      switch (c) {
        case 'b': o[len++] = '\b'; continue;
        case 'f': o[len++] = '\f'; continue;
        case 'n': o[len++] = '\n'; continue;
        case 'r': o[len++] = '\r'; continue;
        case 't': o[len++] = '\t'; continue;
        case 'u': break;
        default: o[len++] = c; continue;          /* \" \\ \/ */
      }
      cp = hex4(raw + i);
      i += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return decode_fail(d, "lone UTF-16 surrogate in \\u escape", base + at);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned long low;
        if (i + 6 > n || raw[i] != '\\' || raw[i + 1] != 'u')
          return decode_fail(d, "lone UTF-16 surrogate in \\u escape", base + at);
        low = hex4(raw + i + 2);
        if (low < 0xDC00 || low > 0xDFFF)
          return decode_fail(d, "lone UTF-16 surrogate in \\u escape", base + at);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        i += 6;
      }
      len += json_utf8_put(o + len, cp);
    } else if (c < 0x80) {
      o[len++] = c;
      i++;
    } else {
      size_t k = json_utf8_sequence(raw + i, n - i);
      if (k == 0) return decode_fail(d, "invalid UTF-8 in string", base + i);
      memcpy(o + len, raw + i, k);
      len += k;
      i += k;
    }
  }
  note_element(d);
  d->tape[record] = is_key ? T_KEY : T_STR;
  memcpy(d->tape + record + 1, &len, sizeof len);
  d->len = record + 1 + sizeof(size_t) + len;
  return 1;
}

static int tape_string(decoder *d, const unsigned char *s, size_t n, int is_key) {
  uintptr_t a = (uintptr_t)s, base = (uintptr_t)d->text;
  if (a >= base && a - base <= d->text_len && n <= d->text_len - (size_t)(a - base)) {
    /* No escapes: yajl hands over a slice of the input; validate it and point at it. */
    size_t offset = (size_t)(a - base), bad = json_utf8_invalid_at(s, n);
    if (bad < n) return decode_fail(d, "invalid UTF-8 in string", offset + bad);
    if (!tape_reserve(d, 1 + 2 * sizeof(size_t))) return 0;
    note_element(d);
    d->tape[d->len++] = is_key ? T_KEY_TEXT : T_TEXT;
    tape_put_size(d, offset);
    tape_put_size(d, n);
    return 1;
  } else {
    /* yajl decoded the escapes itself, too leniently: decode them again from the input. The
     * token ends where yajl's lexer stopped (after the closing quote); its opening quote is
     * the nearest '"' before that which is not preceded by an odd run of backslashes. */
    const unsigned char *t = d->text;
    size_t end = yajl_get_bytes_consumed(d->parser), q;
    if (end < 2 || end > d->text_len || t[end - 1] != '"')
      return decode_fail(d, "string token not found (internal error)", end);
    q = end - 1;
    for (;;) {
      size_t backslashes = 0;
      if (q == 0) return decode_fail(d, "string token not found (internal error)", end);
      q--;
      while (q > 0 && t[q] != '"') q--;
      if (t[q] != '"') return decode_fail(d, "string token not found (internal error)", end);
      while (backslashes < q && t[q - 1 - backslashes] == '\\') backslashes++;
      if (backslashes % 2 == 0) break;
    }
    return tape_escaped(d, t + q + 1, end - 2 - q, q + 1, is_key);
  }
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
  return tape_string(ctx, s, n, 0);
}

static int on_key(void *ctx, const unsigned char *s, size_t n) {
  decoder *d = ctx;
  d->open[d->depth - 1].count++;
  return tape_string(d, s, n, 1);
}

static int open_container_at(decoder *d, int is_array) {
  open_container *c;
  if (d->depth >= JSON_MAX_DEPTH)
    return decode_fail(d, "nesting deeper than 1000", yajl_get_bytes_consumed(d->parser) - 1);
  if (d->depth == d->open_cap) {
    size_t cap = d->open_cap ? d->open_cap * 2 : 16;
    open_container *p;
    if (d->small) { d->failed = DECODE_TOO_BIG; return 0; }
    if (d->open != NULL && d->open == d->open_fixed) {
      p = malloc(cap * sizeof *p);
      if (p != NULL) memcpy(p, d->open, d->open_cap * sizeof *p);
    } else {
      p = realloc(d->open, cap * sizeof *p);
    }
    if (p == NULL) { d->failed = DECODE_NOMEM; return 0; }
    d->open = p;
    d->open_cap = cap;
  }
  if (!tape_reserve(d, 1 + sizeof(size_t))) return 0;
  note_element(d);
  c = &d->open[d->depth++];
  if (d->depth > d->max_depth) d->max_depth = d->depth;
  c->record = d->len;
  c->count = 0;
  c->is_array = is_array;
  d->tape[d->len++] = is_array ? T_ARRAY : T_OBJECT;
  tape_put_size(d, 0);
  return 1;
}

static int close_container(decoder *d) {
  open_container *c = &d->open[--d->depth];
  if (!tape_reserve(d, 1)) return 0;
  memcpy(d->tape + c->record + 1, &c->count, sizeof c->count);
  d->tape[d->len++] = T_END;
  return 1;
}

static int on_start_map(void *ctx) { return open_container_at(ctx, 0); }
static int on_start_array(void *ctx) { return open_container_at(ctx, 1); }
static int on_end(void *ctx) { return close_container(ctx); }

static const yajl_callbacks decode_callbacks = {
  on_null, on_boolean, NULL, NULL, on_number, on_string,
  on_start_map, on_key, on_end, on_start_array, on_end
};

static size_t tape_get_size(const unsigned char *p) {
  size_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Builds the Lua value from the tape and pushes it. The stack holds, per open container, the
 * table and (in an object) the pending key: 2 * max_depth slots. [-0, +1, m] */
static void build_value(lua_State *L, decoder *d, const char *text) {
  const unsigned char *tape = d->tape;
  size_t pos = 0, depth = 0;
  int mt;
  luaL_checkstack(L, (int)(2 * d->max_depth + 4), "campaign.decode: nesting too deep");
  luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
  mt = lua_gettop(L);
  while (pos < d->len) {
    unsigned char tag = tape[pos++];
    switch (tag) {
      case T_NULL: lua_pushlightuserdata(L, NULL); break;
      case T_FALSE: lua_pushboolean(L, 0); break;
      case T_TRUE: lua_pushboolean(L, 1); break;
      case T_INT: {
        int64_t i;
        memcpy(&i, tape + pos, sizeof i);
        pos += sizeof i;
#if CAMPAIGN_HAVE_INTEGERS
        lua_pushinteger(L, (lua_Integer)i);
#else
        lua_pushnumber(L, (lua_Number)i);
#endif
        break;
      }
      case T_FLOAT: {
        double v;
        memcpy(&v, tape + pos, sizeof v);
        pos += sizeof v;
        lua_pushnumber(L, (lua_Number)v);
        break;
      }
      case T_TEXT: case T_KEY_TEXT: {
        size_t offset = tape_get_size(tape + pos), n = tape_get_size(tape + pos + sizeof(size_t));
        pos += 2 * sizeof(size_t);
        lua_pushlstring(L, text + offset, n);
        if (tag == T_KEY_TEXT) continue;      /* the member's value follows */
        break;
      }
      case T_STR: case T_KEY: {
        size_t n = tape_get_size(tape + pos);
        pos += sizeof(size_t);
        lua_pushlstring(L, (const char *)tape + pos, n);
        pos += n;
        if (tag == T_KEY) continue;
        break;
      }
      case T_ARRAY: case T_OBJECT: {
        size_t count = tape_get_size(tape + pos);
        int n = count > INT32_MAX ? INT32_MAX : (int)count;
        pos += sizeof(size_t);
        if (tag == T_ARRAY) {
          lua_createtable(L, n, 0);
          lua_pushvalue(L, mt);
          lua_setmetatable(L, -2);
        } else {
          lua_createtable(L, 0, n);
        }
        d->open[depth].is_array = tag == T_ARRAY;
        d->open[depth].count = 0;
        depth++;
        continue;
      }
      case T_END:
        depth--;
        break;
    }
    /* A value is complete on top of the stack: store it in its container. */
    if (depth == 0) break;
    if (d->open[depth - 1].is_array) lua_rawseti(L, -2, (lua_Integer)++d->open[depth - 1].count);
    else lua_rawset(L, -3);
  }
  lua_remove(L, mt);
}

/* yajl reports where its lexer stopped, which is after the offending token for parse errors
 * and after the offending byte for "invalid char": move back to the token's first byte. */
static size_t yajl_error_offset(const unsigned char *t, size_t end, const char *message) {
  if (end == 0) return 0;
  if (strncmp(message, "lexical error: invalid char in json text", 40) == 0) return end - 1;
  if (strncmp(message, "parse error:", 12) != 0 || strstr(message, "premature EOF")) return end;
  if (strchr("[]{},:", t[end - 1])) return end - 1;
  if (t[end - 1] == '"') {                 /* a string token: find its opening quote */
    size_t q = end - 1;
    while (q > 0) {
      size_t backslashes = 0;
      q--;
      while (q > 0 && t[q] != '"') q--;
      while (backslashes < q && t[q - 1 - backslashes] == '\\') backslashes++;
      if (t[q] == '"' && backslashes % 2 == 0) return q;
    }
    return end - 1;
  }
  while (end > 0 && (isalnum(t[end - 1]) || t[end - 1] == '-' || t[end - 1] == '+' ||
                     t[end - 1] == '.')) end--;
  return end;
}

/* Parses text onto d's tape. Returns 1 (the tape is ready), 0 (invalid JSON: message in errbuf,
 * offset in *offset), or -DECODE_NOMEM / -DECODE_TOO_BIG. yajl is freed in every case, so that
 * no Lua API call ever happens while it holds memory. Calls no Lua API function itself. */
static int parse(decoder *d, const char *text, size_t len, char *errbuf, size_t errlen,
                 size_t *offset) {
  yajl_alloc_funcs funcs;
  yajl_status status;
  const char *ws;
  d->text = (const unsigned char *)text;
  d->text_len = len;
  if (!d->small && !tape_reserve(d, len / 2 + 64)) return -DECODE_NOMEM;
  funcs.malloc = arena_malloc;
  funcs.realloc = arena_realloc;
  funcs.free = arena_free;
  funcs.ctx = d;
  d->parser = yajl_alloc(&decode_callbacks, d->small ? &funcs : NULL, d);
  if (d->parser == NULL) return -DECODE_NOMEM;
  yajl_config(d->parser, yajl_dont_validate_strings, 1);   /* checked strictly here instead */
  status = yajl_parse(d->parser, (const unsigned char *)text, len);
  *offset = yajl_get_bytes_consumed(d->parser);
  if (status == yajl_status_ok) {
    status = yajl_complete_parse(d->parser);
    *offset = len;
  }
  if (d->failed == DECODE_NOMEM || d->failed == DECODE_TOO_BIG) {
    yajl_free(d->parser);
    d->parser = NULL;
    return -d->failed;
  }
  if (status != yajl_status_ok) {
    if (d->failed == DECODE_INVALID) {
      *offset = d->err_offset;
      snprintf(errbuf, errlen, "invalid JSON at byte offset %lu: %s",
               (unsigned long)*offset, d->err_reason);
    } else {
      unsigned char *msg = yajl_get_error(d->parser, 0, NULL, 0);
      const char *m = msg ? (const char *)msg : "";
      size_t n = strcspn(m, "\r\n");
      if (n && m[n - 1] == '.') n--;
      *offset = yajl_error_offset(d->text, *offset, m);
      snprintf(errbuf, errlen, "invalid JSON at byte offset %lu: %.*s", (unsigned long)*offset,
               (int)n, m);
      if (msg) yajl_free_error(d->parser, msg);
    }
    yajl_free(d->parser);
    d->parser = NULL;
    return 0;
  }
  yajl_free(d->parser);
  d->parser = NULL;

  /* yajl takes form feed and vertical tab for whitespace; JSON does not. Inside a string
   * yajl refuses them already, so any that is left is whitespace. */
  ws = memchr(text, '\f', len);
  if (ws == NULL) ws = memchr(text, '\v', len);
  if (ws != NULL) {
    *offset = (size_t)(ws - text);
    snprintf(errbuf, errlen, "invalid JSON at byte offset %lu: %s is not JSON whitespace",
             (unsigned long)*offset, *ws == '\f' ? "form feed" : "vertical tab");
    return 0;
  }
  return 1;
}

#define SMALL_DOCUMENT 2048       /* bytes of JSON text decoded with C-stack memory only */
#define SMALL_TAPE 4096
#define SMALL_OPEN 32
#define SMALL_ARENA 2048

static int decode_nomem(lua_State *L, char *errbuf, size_t errlen) {
  if (errlen) errbuf[0] = '\0';
  return luaL_error(L, "campaign.decode: not enough memory");
}

/* A small document: the tape, the open containers and yajl's memory on the C stack. Nothing
 * is on the heap once parse() returns, so build_value may raise without leaking anything.
 * Returns -1 when the document needs more room than that. */
static int decode_small(lua_State *L, const char *text, size_t len, char *errbuf, size_t errlen,
                        size_t *offset) {
  unsigned char tape[SMALL_TAPE];
  open_container open[SMALL_OPEN];
  size_t arena[SMALL_ARENA / sizeof(size_t)];   /* size_t: aligned for yajl's structs */
  decoder d;
  int r;
  memset(&d, 0, sizeof d);
  d.small = 1;
  d.tape = d.tape_fixed = tape;
  d.cap = sizeof tape;
  d.open = d.open_fixed = open;
  d.open_cap = SMALL_OPEN;
  d.arena = (unsigned char *)arena;
  d.arena_cap = sizeof arena;
  r = parse(&d, text, len, errbuf, errlen, offset);
  if (r == 1) {
    build_value(L, &d, text);
    return 1;
  }
  if (r == 0) return 0;
  if (r == -DECODE_NOMEM) return decode_nomem(L, errbuf, errlen);
  return -1;
}

int campaign_json_decode(lua_State *L, const char *text, size_t len,
                         char *errbuf, size_t errlen, size_t *offset) {
  decoder *d;
  int box, r;
  if (len <= SMALL_DOCUMENT) {
    r = decode_small(L, text, len, errbuf, errlen, offset);
    if (r >= 0) return r;
  }
  /* A large document: its memory is owned by a userdata, so an error frees it. */
  d = campaign_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  campaign_setmetatable(L, DECODER_MT);
  box = lua_gettop(L);
  r = parse(d, text, len, errbuf, errlen, offset);
  if (r == 1) build_value(L, d, text);
  decoder_release(d);
  lua_pushnil(L);                       /* nothing left for __gc: spare the collector the call */
  lua_setmetatable(L, box);
  if (r == 1) {
    lua_replace(L, box);
    return 1;
  }
  lua_settop(L, box - 1);
  if (r == 0) return 0;
  return decode_nomem(L, errbuf, errlen);
}

void json_decode_register(lua_State *L) {
  luaL_newmetatable(L, DECODER_MT);
  lua_pushcfunction(L, decoder_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
