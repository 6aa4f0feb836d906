/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

static int buf_reserve(campaign_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len - 1) return 0;
  need = b->len + extra + 1; /* room for a terminating NUL */
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

int campaign_buf_add(campaign_buf *b, const void *p, size_t n) {
  if (n == 0) return 1;
  if (!buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

int campaign_buf_addc(campaign_buf *b, char ch) { return campaign_buf_add(b, &ch, 1); }

int campaign_buf_adds(campaign_buf *b, const char *s) { return campaign_buf_add(b, s, strlen(s)); }

int campaign_buf_terminate(campaign_buf *b) {
  if (!buf_reserve(b, 0)) return 0;
  b->data[b->len] = '\0';
  return 1;
}

void campaign_buf_clear(campaign_buf *b) { b->len = 0; }

void campaign_buf_shrink(campaign_buf *b, size_t keep) {
  b->len = 0;
  if (b->cap > keep) campaign_buf_free(b);
}

void campaign_buf_free(campaign_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
