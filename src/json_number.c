/*
 * json_number.c - the number rules of campaign.encode and campaign.decode, locale-independent
 * (the text always uses '.' whatever the C locale says): which integer tokens become int64,
 * reading a double exactly (overflow is an error, underflow is not), and writing an int64 or a
 * finite double in the shortest text that reads back to the same value. Declared in
 * json_internal.h; no Lua API here.
 */
#include "json_internal.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses an integer token of the JSON grammar; 0 when it does not fit in int64. */
int json_parse_int64(const char *s, size_t n, int64_t *out) {
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
int json_parse_double(const char *s, size_t n, double *out) {
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
size_t json_format_int64(char *o, int64_t v) {
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
size_t json_format_double(char *o, double d) {
  const double two53 = 9007199254740992.0;
  size_t n;
  if (d > -two53 && d < two53) {
    int64_t i = (int64_t)d;
    if ((double)i == d) {
      if (i == 0 && signbit(d)) { memcpy(o, "-0.0", 4); return 4; }
      return json_format_int64(o, i);
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
