/*
 * options.h - campaign.new's option table: parsing, validation and defaults (design.md).
 * Unknown names and wrong types raise, naming the option.
 */
#ifndef CAMPAIGN_OPTIONS_H
#define CAMPAIGN_OPTIONS_H

#include "compat.h"

typedef struct campaign_options {
  char *org, *api_key, *base_url, *user_agent, *cafile, *proxy; /* malloc'd copies */
  char *origin; /* normalised "scheme://host:port" of base_url */
  char *root;   /* "<base_url>/<org>/campaign/" */
  double timeout, connect_timeout, retry_base, retry_max; /* seconds */
  long retries;
  long long max_body;
  int insecure, http2;
  int has_provider; /* token is a function, kept in the client's user value as "token" */
  int has_on_event; /* kept in the user value as "on_event" */
  double rate;      /* requests per second; 0: not paced */
  double burst;     /* requests that may start at once (>= 1) */
  long long budget; /* calls left when has_budget == 1 (in memory, this client) */
  long long budget_total; /* the budget as given */
  int has_budget;   /* 0: none; 1: the count above; 2: a hook in the user value as "budget"
                       (the rolling 24 h form, campaign.budget: its file is kept in Lua) */
} campaign_options;

#define CAMPAIGN_DEFAULT_BASE_URL "https://mc.adobe.io"

/* Validates the table at idx and fills o (zeroed by the caller, owned by a userdata whose __gc
 * calls campaign_options_free, so raising half way leaks nothing). A token given as a string is
 * copied to *token (malloc'd); a provider function and on_event go into the table at uv_idx.
 * Raises "campaign.new: ..." on misuse. [-0, +0, e] */
void campaign_options_parse(lua_State *L, int idx, int uv_idx, campaign_options *o, char **token);
/* The same, with fname prefixing the messages (campaign.ngx.new through campaign._core). */
void campaign_options_parse_as(lua_State *L, int idx, int uv_idx, campaign_options *o,
                               char **token, const char *fname);

void campaign_options_free(campaign_options *o);

/* 1 when s (len bytes) is safe as an HTTP header value: no control characters but tab. */
int campaign_header_value_ok(const char *s, size_t len);
/* 1 when s is a non-empty HTTP token (a header name or a method). */
int campaign_header_name_ok(const char *s, size_t len);

#endif /* CAMPAIGN_OPTIONS_H */
