/*
 * json_internal.h - what the src/json*.c files share among themselves (the rest of the module
 * uses src/json.h). Each section names the file that owns it.
 */
#ifndef CAMPAIGN_JSON_INTERNAL_H
#define CAMPAIGN_JSON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "compat.h"

/* Nesting limit of both directions (design.md's JSON table). */
#define JSON_MAX_DEPTH 1000

/* Eight bytes at a time: every byte 0x01, every byte 0x80 (the word tricks of the UTF-8 scan
 * and of the encoder's string copy). */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* --- json_utf8.c: the UTF-8 rules --- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if there is none. */
size_t json_utf8_sequence(const unsigned char *s, size_t n);
/* Offset of the first byte of s[0..n) that does not start well-formed UTF-8, or n. */
size_t json_utf8_invalid_at(const unsigned char *s, size_t n);
/* Writes code point cp (at most U+10FFFF, not a surrogate) at o; returns its length (1..4). */
size_t json_utf8_put(unsigned char *o, unsigned long cp);

/* --- json_number.c: the number rules --- */

/* An integer token of the JSON grammar as int64; 0 when it does not fit. */
int json_parse_int64(const char *s, size_t n, int64_t *out);
/* A number token as a double: 1, 0 when it overflows a double, -1 when out of memory. */
int json_parse_double(const char *s, size_t n, double *out);
/* v in decimal at o; returns the length (at most 20). */
size_t json_format_int64(char *o, int64_t v);
/* A finite double at o (room for 32 bytes) in the shortest text that reads back; the length. */
size_t json_format_double(char *o, double d);

/* --- json_decode.c --- */

/* Creates the decoder's metatable (its __gc frees a large document's tape). [-0, +0, m] */
void json_decode_register(lua_State *L);

/* --- json_encode.c --- */

#define ENCODE_PRETTY 1       /* indent, one member per line (implies ENCODE_SORT_KEYS) */
#define ENCODE_SORT_KEYS 2    /* object members in byte order of their keys */

/* Encodes the value at idx with ENCODE_* flags and pushes the text; raises on misuse. [-0, +1, e] */
void json_encode_with(lua_State *L, int idx, int flags);
/* Creates the encoder's metatable (its __gc frees the heap buffer). [-0, +0, m] */
void json_encode_register(lua_State *L);

#endif /* CAMPAIGN_JSON_INTERNAL_H */
