/*
 * json.c - Lua value <-> JSON for the `campaign` module: campaign.encode, campaign.decode,
 * campaign.null, campaign.array, campaign.is_array (design.md's JSON table; docs/json.md).
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
 *  - The encoder writes into a C buffer (first on the C stack, then on the heap owned by a
 *    userdata with __gc) because a luaL_Buffer cannot stay open across lua_next.
 *  - Error offsets are 0-based byte offsets into the text given to decode.
 */
#include "json.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* Keeps rarely used code (error messages, the slow paths) out of the frames of the recursive
 * encoder: at 1000 levels of nesting every byte of its frame counts 1000 times. */
#if defined(__GNUC__)
#  define COLD __attribute__((noinline, cold))
#else
#  define COLD
#endif

#define JSON_MAX_DEPTH 1000
#define DECODER_MT "campaign.json.decoder"
#define ENCODER_MT "campaign.json.encoder"

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if there is none:
 * overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF are not. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    return (n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    return (n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
            (s[3] & 0xC0) == 0x80) ? 4 : 0;
  }
  return 0;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Offset of the first byte of s[0..n) that does not start well-formed UTF-8, or n. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {                       /* skip ASCII eight bytes at a time */
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & HIGHS) break;
      i += 8;
    }
    while (i < n && s[i] < 0x80) i++;
    if (i < n) {
      size_t k = utf8_sequence(s + i, n - i);
      if (k == 0) return i;
      i += k;
    }
  }
  return n;
}

static size_t utf8_put(unsigned char *o, unsigned long cp) {
  if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers (locale-independent: the text always uses '.')                                    */
/* ------------------------------------------------------------------------------------------ */

/* Parses an integer token of the JSON grammar; 0 when it does not fit in int64. */
static int parse_int64(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  uint64_t v = 0;
  int negative = s[0] == '-';
  if (negative) i = 1;
  if (n - i > 19 || n == i) return 0;          /* 19 digits cannot overflow a uint64 */
  for (; i < n; i++) v = v * 10 + (uint64_t)(s[i] - '0');
  if (negative) {
    if (v > (uint64_t)INT64_MAX + 1) return 0;
    *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  } else {
    if (v > (uint64_t)INT64_MAX) return 0;
    *out = (int64_t)v;
  }
  return 1;
}

/* strtod of n bytes with '.' as the decimal point whatever the C locale says.
 * Returns 1 on success, 0 when the number overflows a double, -1 when out of memory.
 * Underflow is not an error: the result is the nearest double (maybe 0 or subnormal). */
static int parse_double(const char *s, size_t n, double *out) {
  char small[64], *b = small, *end;
  const char *point = ".";
  size_t pointlen = 1;
  int result = 1;
  for (int attempt = 0; attempt < 2; attempt++) {
    size_t need = n + pointlen + 1, j = 0;
    if (need > sizeof small) {
      b = malloc(need);
      if (b == NULL) return -1;
    }
    for (size_t i = 0; i < n; i++) {
      if (s[i] == '.') { memcpy(b + j, point, pointlen); j += pointlen; }
      else b[j++] = s[i];
    }
    b[j] = '\0';
    errno = 0;
    *out = strtod(b, &end);
    if (errno == ERANGE && (*out == HUGE_VAL || *out == -HUGE_VAL)) result = 0;
    if (b != small) free(b);
    if (end == b + j) return result;
    /* strtod stopped early: the C locale's decimal point is not '.' */
    point = localeconv()->decimal_point;
    pointlen = strlen(point);
    b = small;
    result = 1;
  }
  return 0;
}

/* Writes v in decimal at o; returns the length (at most 20). */
static size_t format_int64(char *o, int64_t v) {
  char tmp[24];
  size_t p = sizeof tmp;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do { tmp[--p] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) tmp[--p] = '-';
  memcpy(o, tmp + p, sizeof tmp - p);
  return sizeof tmp - p;
}

/* Replaces the C locale's decimal point (if it is not '.') in the NUL-terminated s. */
static size_t fix_decimal_point(char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == '.') continue;
    {
      const char *point = localeconv()->decimal_point;
      size_t pointlen = strlen(point);
      if (pointlen == 0 || strncmp(s + i, point, pointlen) != 0) pointlen = 1;
      s[i] = '.';
      memmove(s + i + 1, s + i + pointlen, n - i - pointlen + 1);
      return n - pointlen + 1;
    }
  }
  return n;
}

/* Writes a finite double at o (room for 32 bytes): integral values below 2^53 as integers,
 * -0.0 as "-0.0", anything else in the shortest %.Ng (N = 15..17) that reads back to the same
 * double, with ".0" added when that text would otherwise read back as an integer. */
static size_t format_double(char *o, double d) {
  const double two53 = 9007199254740992.0;
  size_t n;
  if (d > -two53 && d < two53) {
    int64_t i = (int64_t)d;
    if ((double)i == d) {
      if (i == 0 && signbit(d)) { memcpy(o, "-0.0", 4); return 4; }
      return format_int64(o, i);
    }
  }
  /* For normal doubles 15 digits always read back exactly (DBL_DIG), so a shorter text shows
   * up at %.15g with its trailing zeros removed; subnormals have fewer digits of precision. */
  for (int precision = fabs(d) < DBL_MIN ? 1 : 15; ; precision++) {
    int len = snprintf(o, 32, "%.*g", precision, d);
    n = (size_t)len;
    if (precision == 17 || strtod(o, NULL) == d) break;
  }
  n = fix_decimal_point(o, n);
  if (strpbrk(o, ".e") == NULL) { memcpy(o + n, ".0", 3); n += 2; }
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoder: yajl callbacks record a tape; the tape is turned into Lua values afterwards        */
/* ------------------------------------------------------------------------------------------ */

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
  if (is_integer && parse_int64(s, n, &i)) {
    note_element(d);
    d->tape[d->len++] = T_INT;
    memcpy(d->tape + d->len, &i, sizeof i);
    d->len += sizeof i;
  } else {
    double v;
    int ok = parse_double(s, n, &v);
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
      len += utf8_put(o + len, cp);
    } else if (c < 0x80) {
      o[len++] = c;
      i++;
    } else {
      size_t k = utf8_sequence(raw + i, n - i);
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
    size_t offset = (size_t)(a - base), bad = utf8_invalid_at(s, n);
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

/* ------------------------------------------------------------------------------------------ */
/* Encoder                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define ENCODE_PRETTY 1
#define ENCODE_SORT_KEYS 2
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
    size_t k = utf8_sequence(u + i, n - i);
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
      size_t k = utf8_sequence(u + i, n - i);
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
    e->len += format_int64(e->buf + e->len, (int64_t)lua_tointeger(L, idx));
    return;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (d != d) encode_fail(e, at, "cannot encode NaN");
  if (d == HUGE_VAL || d == -HUGE_VAL) encode_fail(e, at, "cannot encode infinity");
  e->len += format_double(e->buf + e->len, d);
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

static void encode_with(lua_State *L, int idx, int flags) {
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
  encode_with(L, idx, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Lua functions                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* campaign.encode(value [, {pretty = bool, sort_keys = bool}]) -> string; raises on misuse. */
static int json_encode(lua_State *L) {
  int flags = 0;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      int bit = 0;
      if (name && strcmp(name, "pretty") == 0) bit = ENCODE_PRETTY | ENCODE_SORT_KEYS;
      else if (name && strcmp(name, "sort_keys") == 0) bit = ENCODE_SORT_KEYS;
      else if (name) return luaL_error(L, "campaign.encode: unknown option '%s'", name);
      else return luaL_error(L, "campaign.encode: option names are strings");
      if (lua_type(L, -1) != LUA_TBOOLEAN)
        return luaL_error(L, "campaign.encode: option '%s' must be a boolean", name);
      if (lua_toboolean(L, -1)) flags |= bit;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  encode_with(L, 1, flags);
  return 1;
}

/* campaign.decode(text) -> value, or nil, err (kind "json", offset = 0-based byte offset). */
static int json_decode(lua_State *L) {
  char message[256];
  size_t len, offset = 0;
  const char *text;
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 1)));
  text = lua_tolstring(L, 1, &len);
  if (campaign_json_decode(L, text, len, message, sizeof message, &offset)) return 1;
  lua_pushnil(L);
  campaign_error_new(L, "json", message);
  lua_pushinteger(L, (lua_Integer)offset);
  lua_setfield(L, -2, "offset");
  return 2;
}

/* campaign.array([t]) -> t, marked as a JSON array (a new table when t is nil). */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
      luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
      if (!lua_rawequal(L, -1, -2))
        return luaL_argerror(L, 1, "the table already has another metatable");
      lua_settop(L, 1);
      return 1;
    }
  }
  campaign_setmetatable(L, CAMPAIGN_ARRAY_MT);
  return 1;
}

/* campaign.is_array(v) -> true when v is a table carrying the array metatable. */
static int json_is_array(lua_State *L) {
  int result = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, CAMPAIGN_ARRAY_MT);
    result = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, result);
  return 1;
}

void campaign_json_register(lua_State *L, int module_idx) {
  static const luaL_Reg functions[] = {
    {"encode", json_encode},
    {"decode", json_decode},
    {"array", json_array},
    {"is_array", json_is_array},
    {NULL, NULL}
  };
  module_idx = campaign_absindex(L, module_idx);

  luaL_newmetatable(L, CAMPAIGN_ARRAY_MT);
  lua_pushliteral(L, "array");          /* dkjson's marker, so dkjson writes [] for it too */
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);

  luaL_newmetatable(L, DECODER_MT);
  lua_pushcfunction(L, decoder_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  luaL_newmetatable(L, ENCODER_MT);
  lua_pushcfunction(L, encoder_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_pushvalue(L, module_idx);
  campaign_setfuncs(L, functions, 0);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, NULL);       /* the same value as cjson.null */
  lua_setfield(L, module_idx, "null");
}
