/*
 * http.h - one libcurl transfer: an easy handle configured from the client's options, the
 * request headers, and C buffers that capture the response. libcurl callbacks only append to
 * those buffers (never call Lua), and the body callback enforces max_body.
 */
#ifndef CAMPAIGN_HTTP_H
#define CAMPAIGN_HTTP_H

#include <curl/curl.h>

#include "buf.h"
#include "options.h"

typedef struct campaign_transfer {
  CURL *easy;
  struct curl_slist *headers; /* this request's headers; freed when replaced or on free */
  campaign_buf body;          /* response body */
  campaign_buf head;          /* raw header lines of the last response (after any 1xx) */
  long long max_body;
  int too_large;              /* the body callback aborted: the body exceeded max_body */
  long status;
  CURLcode code;
  char errbuf[CURL_ERROR_SIZE];
  unsigned headers_key;       /* which token `headers` was built for; 0: none */
  int item;                   /* batch: index of the request using this transfer, else -1 */
  int sends;                  /* times libcurl put this request on a connection */
  int send_once;              /* a POST: libcurl may not send it a second time by itself */
  int resend_refused;         /* libcurl wanted to resend a POST and was stopped */
  int interrupted;            /* the signal that aborted this transfer (interrupt.h), else 0 */
  int http2;                  /* the client asked for HTTP/2 (over TLS) */
} campaign_transfer;

/* Creates the easy handle with every per-client option set once (timeouts, TLS, proxy,
 * HTTP version, user agent, callbacks). Returns 0 when libcurl cannot. */
int campaign_transfer_init(campaign_transfer *t, const campaign_options *o, const char *user_agent);
void campaign_transfer_free(campaign_transfer *t);

/* The headers every request carries unless its extra headers name them (after Authorization
 * and X-Api-Key; libcurl adds User-Agent, campaign._core's header table lists it). */
typedef struct campaign_header_default {
  const char *name, *value;
} campaign_header_default;
extern const campaign_header_default CAMPAIGN_DEFAULT_HEADERS[]; /* ends with {NULL, NULL} */

/* 1 when the extra header block has a line named name (case-insensitive): "Name: value", or
 * "Name;" (an empty value). */
int campaign_extra_has(const char *extra, const char *name);

/* Builds the request headers (defaults, then extra: "Name: value" or "Name;" (empty value)
 * lines separated by '\n', which replace a default of the same name). Returns 0 when memory
 * runs out. */
int campaign_transfer_headers(campaign_transfer *t, const campaign_options *o, const char *token,
                              const char *extra);

/* Sets method, URL and body (body may be NULL = none; it must outlive the transfer) and clears
 * the response buffers. */
void campaign_transfer_prepare(campaign_transfer *t, const char *method, const char *url,
                               const char *body, size_t body_len);

/* Records the outcome of curl_easy_perform or of a multi message. */
void campaign_transfer_done(campaign_transfer *t, CURLcode code);

/* The extra sends libcurl made by itself on a closed kept-alive connection (counted as
 * attempts); a refused one never went out. */
int campaign_transfer_resends(const campaign_transfer *t);

/* 1 when the request may have left the machine (libcurl put it on a connection): the
 * `sent` of an interrupted request. */
int campaign_transfer_maybe_sent(const campaign_transfer *t);

/* Frees the response buffers when they grew beyond a usual answer's size (CAMPAIGN_KEEP_BUFFER)
 * and empties them: called as soon as a result is in Lua, so an idle transfer never holds a
 * large body. */
#define CAMPAIGN_KEEP_BUFFER (64 * 1024)
void campaign_transfer_release(campaign_transfer *t);

/* The error kind of a failed transfer: "interrupted", "timeout", "tls", "too_large" or
 * "network". */
const char *campaign_transfer_kind(const campaign_transfer *t);
/* 1 when the failure is transient (connection failure or timeout). */
int campaign_transfer_transient(const campaign_transfer *t);
/* 1 when the request certainly did not leave the machine (so even a POST may be repeated). */
int campaign_transfer_never_sent(const campaign_transfer *t);
/* A message for a failed transfer (libcurl's error buffer, else its text for the code;
 * "interrupted by SIGINT" for an interrupted one). */
const char *campaign_transfer_message(const campaign_transfer *t);

/* Finds a response header (case-insensitive name); returns a pointer to its value and sets
 * *len, or NULL. The first occurrence wins. */
const char *campaign_transfer_header(const campaign_transfer *t, const char *name, size_t *len);

#endif /* CAMPAIGN_HTTP_H */
