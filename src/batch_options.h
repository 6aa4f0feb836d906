/*
 * batch_options.h - client:batch's arguments and options (requests or a source function;
 * concurrency, "auto" and its bounds, on_result), checked once for every driver: src/batch.c
 * (libcurl multi) and campaign.ngx's light threads (through src/core.c).
 */
#ifndef CAMPAIGN_BATCH_OPTIONS_H
#define CAMPAIGN_BATCH_OPTIONS_H

#include "compat.h"

typedef struct campaign_batch_options {
  int stream;         /* requests is a source function (else a list) */
  int concurrency;    /* the fixed limit (default 16), or "auto"'s start */
  int adaptive;       /* concurrency = "auto" */
  int limit_max;      /* "auto": the bounds of the limiter, 1 .. limit_max, starting at */
  int limit_start;    /* limit_start (both 0 unless adaptive) */
  int has_on_result;  /* on_result is a function */
} campaign_batch_options;

/* Checks the requests at req_idx and the options at opts_idx (nil or a table) and fills o.
 * Raises "<fname>: ..." on misuse (fname: "campaign.batch", "campaign.ngx.batch"). */
void campaign_batch_options_parse(lua_State *L, const char *fname, int req_idx, int opts_idx,
                                  campaign_batch_options *o);

#endif /* CAMPAIGN_BATCH_OPTIONS_H */
