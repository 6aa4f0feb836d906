/*
 * buf.h - a growable byte buffer in C memory. Used where a luaL_Buffer cannot be (libcurl
 * callbacks must not touch Lua; URL building interleaves other stack work). Every buffer is
 * owned by a userdata whose __gc frees it, so a Lua error never leaks one.
 */
#ifndef CAMPAIGN_BUF_H
#define CAMPAIGN_BUF_H

#include <stddef.h>

typedef struct campaign_buf {
  char *data;
  size_t len, cap;
} campaign_buf;

/* Appends n bytes; returns 0 when memory runs out (the buffer is unchanged), else 1. */
int campaign_buf_add(campaign_buf *b, const void *p, size_t n);
int campaign_buf_addc(campaign_buf *b, char ch);
int campaign_buf_adds(campaign_buf *b, const char *s);
/* Makes data a NUL-terminated string (the NUL is not counted in len); returns 0 on no memory. */
int campaign_buf_terminate(campaign_buf *b);
void campaign_buf_clear(campaign_buf *b);
/* Clears, and gives the memory back when it grew beyond keep bytes (a one-off huge body). */
void campaign_buf_shrink(campaign_buf *b, size_t keep);
void campaign_buf_free(campaign_buf *b);

#endif /* CAMPAIGN_BUF_H */
