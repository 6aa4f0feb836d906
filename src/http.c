/* http.c - one libcurl transfer (see http.h). No Lua in here: nothing can raise. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "interrupt.h"

/* CURLOPT_WRITEFUNCTION: appends to the body buffer; returning less than n aborts the transfer
 * (CURLE_WRITE_ERROR), which is how max_body and out-of-memory stop it. */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  campaign_transfer *t = ud;
  size_t bytes = size * n;
  if ((long long)(t->body.len + bytes) > t->max_body) {
    t->too_large = 1;
    return 0;
  }
  if (t->body.len == 0) {
    /* a known length is allocated once, exactly: doubling from a small buffer would hold up
     * to twice the body (an 8 MiB answer in a 16 MiB buffer). buf.h has no reserve; its
     * fields are public and this keeps their meaning. */
    curl_off_t length = -1;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length > (curl_off_t)t->max_body) {
      t->too_large = 1;
      return 0;
    }
    if (length > 0 && (size_t)length + 1 > t->body.cap) {
      char *data = realloc(t->body.data, (size_t)length + 1);
      if (data == NULL) return 0;
      t->body.data = data;
      t->body.cap = (size_t)length + 1;
    }
  }
  if (!campaign_buf_add(&t->body, p, bytes)) return 0;
  return bytes;
}

/* CURLOPT_HEADERFUNCTION: keeps the header lines of the final response only. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  campaign_transfer *t = ud;
  size_t bytes = size * n;
  if (bytes >= 5 && memcmp(p, "HTTP/", 5) == 0) campaign_buf_clear(&t->head); /* after a 1xx */
  if (t->head.len + bytes > 256 * 1024) return bytes; /* absurd header blocks are cut short */
  if (!campaign_buf_add(&t->head, p, bytes)) return 0;
  return bytes;
}

/* CURLOPT_PREREQFUNCTION: called each time the request is about to go out on a connection.
 * libcurl silently sends a request again when a reused connection closes before any answer;
 * the server may have acted on it, so a POST (not idempotent: a create) is stopped there and
 * fails instead, and the extra sends of other methods are counted as attempts. */
#if LIBCURL_VERSION_NUM >= 0x075000 /* 7.80.0; older libcurl: the resend stays silent */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  campaign_transfer *t = ud;
  (void)primary_ip;
  (void)local_ip;
  (void)primary_port;
  (void)local_port;
  if (++t->sends > 1 && t->send_once) {
    t->resend_refused = 1;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}
#endif

/* CURLOPT_XFERINFOFUNCTION: libcurl calls it often while a transfer runs (about once a second
 * when nothing moves); a non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK). It
 * only reads the interrupt flag: a caught SIGINT/SIGTERM ends every transfer in flight. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  campaign_transfer *t = ud;
  int sig = campaign_signal_pending();
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  if (sig == 0) return 0;
  t->interrupted = sig;
  return 1;
}

/* Milliseconds for libcurl, rounded, at least 1 and at most ~24 days (fits any long). */
static long seconds_to_ms(double seconds) {
  double ms = seconds * 1000 + 0.5;
  if (ms < 1) return 1;
  if (ms > 2147483647.0) return 2147483647L;
  return (long)ms;
}

int campaign_transfer_init(campaign_transfer *t, const campaign_options *o, const char *user_agent) {
  CURL *e = curl_easy_init();
  if (e == NULL) return 0;
  t->easy = e;
  t->max_body = o->max_body;
  t->item = -1;
  t->errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: thread safe */
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)t);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
#endif
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, seconds_to_ms(o->timeout));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, seconds_to_ms(o->connect_timeout));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect never carries the token away */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
  if (o->cafile != NULL) curl_easy_setopt(e, CURLOPT_CAINFO, o->cafile);
  if (o->proxy != NULL) curl_easy_setopt(e, CURLOPT_PROXY, o->proxy);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   o->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent);
  t->http2 = o->http2;
  return 1;
}

void campaign_transfer_free(campaign_transfer *t) {
  if (t->easy != NULL) curl_easy_cleanup(t->easy);
  t->easy = NULL;
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  t->headers_key = 0;
  campaign_buf_free(&t->body);
  campaign_buf_free(&t->head);
}

/* 1 when the extra header block has a line named name (case-insensitive): "Name: value", or
 * "Name;" (an empty value, libcurl's form). */
const campaign_header_default CAMPAIGN_DEFAULT_HEADERS[] = {
  {"Cache-Control", "no-cache"},
  {"Accept", "application/json"},
  /* on every request, body or not, as ACS's documentation and Adobe's SDK send it; it also
   * keeps libcurl from labelling a body-less POST as a form */
  {"Content-Type", "application/json;charset=utf-8"},
  {NULL, NULL}};

int campaign_extra_has(const char *extra, const char *name) {
  size_t n = strlen(name);
  const char *line = extra;
  while (line != NULL && *line != '\0') {
    if (strncasecmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';')) return 1;
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  return 0;
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *next = curl_slist_append(*list, line);
  if (next == NULL) return 0;
  *list = next;
  return 1;
}

int campaign_transfer_headers(campaign_transfer *t, const campaign_options *o, const char *token,
                              const char *extra) {
  struct curl_slist *list = NULL;
  campaign_buf line = {NULL, 0, 0};
  int ok = 1;
  if (extra == NULL) extra = "";
  /* The Bearer line holds the secret: built in C memory that is wiped before it is freed. */
  if (token != NULL) { /* NULL: the client was made with token = false */
    ok = campaign_buf_adds(&line, "Authorization: Bearer ") && campaign_buf_adds(&line, token) &&
         campaign_buf_terminate(&line) && add_header(&list, line.data);
    if (line.data != NULL) memset(line.data, 0, line.cap);
    campaign_buf_clear(&line);
  }
  ok = ok && campaign_buf_adds(&line, "X-Api-Key: ") && campaign_buf_adds(&line, o->api_key) &&
       campaign_buf_terminate(&line) && add_header(&list, line.data);
  if (line.data != NULL) memset(line.data, 0, line.cap);
  campaign_buf_free(&line);
  {
    const campaign_header_default *d;
    for (d = CAMPAIGN_DEFAULT_HEADERS; ok && d->name != NULL; d++) {
      if (campaign_extra_has(extra, d->name)) continue;
      campaign_buf_clear(&line);
      ok = campaign_buf_adds(&line, d->name) && campaign_buf_adds(&line, ": ") &&
           campaign_buf_adds(&line, d->value) && campaign_buf_terminate(&line) &&
           add_header(&list, line.data);
    }
    campaign_buf_free(&line);
  }
  if (ok) ok = add_header(&list, "Expect:"); /* no 100-continue round trip for bodies */
  while (ok && *extra != '\0') {
    const char *end = strchr(extra, '\n');
    size_t n = end ? (size_t)(end - extra) : strlen(extra);
    char small[512], *buf = n < sizeof small ? small : malloc(n + 1);
    if (buf == NULL) {
      ok = 0;
      break;
    }
    memcpy(buf, extra, n);
    buf[n] = '\0';
    ok = add_header(&list, buf);
    if (buf != small) free(buf);
    extra += n + (end ? 1 : 0);
  }
  if (!ok) {
    curl_slist_free_all(list);
    return 0;
  }
  curl_slist_free_all(t->headers);
  t->headers = list;
  return 1;
}

void campaign_transfer_prepare(campaign_transfer *t, const char *method, const char *url,
                               const char *body, size_t body_len) {
  CURL *e = t->easy;
  campaign_transfer_release(t);
  t->too_large = 0;
  t->status = 0;
  t->code = CURLE_OK;
  t->errbuf[0] = '\0';
  t->sends = t->resend_refused = 0;
  t->interrupted = 0;
  t->send_once = strcmp(method, "POST") == 0;
  curl_easy_setopt(e, CURLOPT_URL, url);
  /* Batch over HTTP/2: wait for a connection that may multiplex rather than open another. Only
   * for https, where ALPN tells at the handshake: a plain-http connection is never multiplexed,
   * and waiting on it would hold every other transfer behind its first, slow answer. */
  curl_easy_setopt(e, CURLOPT_PIPEWAIT,
                   (t->http2 && strncasecmp(url, "https://", 8) == 0) ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  /* Back to a plain GET first: the handle may have sent a POST or a HEAD last time. */
  curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    return;
  }
  if (body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  }
  /* a body makes libcurl POST, so any other method, GET included, is named explicitly */
  if (strcmp(method, "POST") != 0 && (strcmp(method, "GET") != 0 || body != NULL))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  else if (strcmp(method, "POST") == 0 && body == NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  }
}

void campaign_transfer_done(campaign_transfer *t, CURLcode code) {
  t->code = code;
  t->status = 0;
  if (code == CURLE_OK) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
}

int campaign_transfer_resends(const campaign_transfer *t) {
  return t->sends > 1 ? t->sends - 1 - t->resend_refused : 0;
}

void campaign_transfer_release(campaign_transfer *t) {
  campaign_buf_shrink(&t->body, CAMPAIGN_KEEP_BUFFER);
  campaign_buf_shrink(&t->head, CAMPAIGN_KEEP_BUFFER);
}

int campaign_transfer_maybe_sent(const campaign_transfer *t) {
#if LIBCURL_VERSION_NUM >= 0x075000
  return t->sends > 0; /* on_prereq ran: the request was handed to a connection */
#else
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  return pretransfer > 0 || t->status > 0;
#endif
}

const char *campaign_transfer_kind(const campaign_transfer *t) {
  if (t->interrupted) return "interrupted";
  if (t->too_large) return "too_large";
  switch (t->code) {
    case CURLE_OPERATION_TIMEDOUT:
      return "timeout";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return "tls";
    default:
      return "network";
  }
}

int campaign_transfer_transient(const campaign_transfer *t) {
  if (t->too_large || t->interrupted) return 0;
  switch (t->code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return 1;
    default:
      return 0;
  }
}

int campaign_transfer_never_sent(const campaign_transfer *t) {
  curl_off_t pretransfer = 0;
  switch (t->code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return 1;
    case CURLE_OPERATION_TIMEDOUT:
      /* a connect timeout: the request never started (pre-transfer time not reached) */
      curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
      return pretransfer == 0;
    default:
      return 0;
  }
}

const char *campaign_transfer_message(const campaign_transfer *t) {
  if (t->interrupted) return campaign_signal_message(t->interrupted);
  if (t->too_large) return "the response body is larger than max_body";
  if (t->resend_refused)
    return "the connection closed after the POST was sent, before any answer: not sent again, "
           "as the server may have acted on it";
  return t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(t->code);
}

const char *campaign_transfer_header(const campaign_transfer *t, const char *name, size_t *len) {
  size_t n = strlen(name), i = 0;
  const char *h = t->head.data;
  while (h != NULL && i < t->head.len) {
    size_t end = i;
    while (end < t->head.len && h[end] != '\n') end++;
    if (end - i > n && strncasecmp(h + i, name, n) == 0 && h[i + n] == ':') {
      size_t v = i + n + 1, ve = end;
      while (v < ve && (h[v] == ' ' || h[v] == '\t')) v++;
      while (ve > v && (h[ve - 1] == '\r' || h[ve - 1] == ' ' || h[ve - 1] == '\t')) ve--;
      *len = ve - v;
      return h + v;
    }
    i = end + 1;
  }
  return NULL;
}
