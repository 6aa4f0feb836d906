/*
 * json_utf8.c - the UTF-8 rules of campaign.encode and campaign.decode: what counts as
 * well-formed UTF-8 (no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF), finding
 * the first byte that is not, and writing a code point. Both directions check strings with the
 * same json_utf8_sequence, so that what decode accepts encode writes back and vice versa.
 * Declared in json_internal.h; no Lua API here.
 */
#include "json_internal.h"

#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if there is none:
 * overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF are not. */
size_t json_utf8_sequence(const unsigned char *s, size_t n) {
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

/* Offset of the first byte of s[0..n) that does not start well-formed UTF-8, or n. */
size_t json_utf8_invalid_at(const unsigned char *s, size_t n) {
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
      size_t k = json_utf8_sequence(s + i, n - i);
      if (k == 0) return i;
      i += k;
    }
  }
  return n;
}

size_t json_utf8_put(unsigned char *o, unsigned long cp) {
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
