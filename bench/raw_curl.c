/*
 * raw_curl.c - the limit for a libcurl client: the same requests the campaign client sends,
 * through libcurl alone, with no Lua, no JSON and no error object.
 *
 *   raw_curl --url URL [--method GET|PATCH] [--data JSON] [--header "K: V"]...
 *            [--concurrency N] [--seconds S] [--max-requests N] [--cafile F] [--http2] [--parse | --lex]
 *
 * concurrency 1: one easy handle reused for every request (keep-alive), like client:get.
 * concurrency N: N easy handles, each reused, driven by one multi handle, like client:batch;
 *   with --http2 the transfers multiplex over one connection when the server offers h2.
 * --parse: also parse each body with yajl_tree (what a C program must do to read the JSON).
 * --lex: also run yajl's parser over each body with no callbacks: the JSON lexed and validated
 *   (UTF-8 included), nothing built. The least any yajl-based decoder can do, so raw --lex over
 *   raw is the ceiling of a GET + decode on yajl.
 * Runs until --seconds have passed or --max-requests were made, then prints one line:
 *   requests=N failures=N seconds=S rps=R
 * A failure is a transport error or a status >= 400; the run exits 1 if any happened.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HEADERS 16
#define MAX_CONCURRENCY 256

typedef struct {
  const char *url, *method, *data, *cafile;
  const char *headers[MAX_HEADERS];
  int nheaders, concurrency, http2, parse; /* parse: 1 yajl_tree (--parse), 2 lex only (--lex) */
  double seconds;
  long max_requests;
} Options;

typedef struct {
  char *data;
  size_t len, cap;
} Body;

typedef struct {
  CURL *easy;
  Body body;
} Slot;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  Body *b = ud;
  size_t len = size * n;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len + 1) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) return 0;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return len;
}

static void usage(void) {
  fputs("usage: raw_curl --url URL [--method M] [--data JSON] [--header H]... [--concurrency N]\n"
        "                [--seconds S] [--max-requests N] [--cafile F] [--http2] [--parse | --lex]\n",
        stderr);
  exit(2);
}

static void parse_args(int argc, char **argv, Options *o) {
  memset(o, 0, sizeof *o);
  o->method = "GET";
  o->concurrency = 1;
  o->seconds = 3;
  o->max_requests = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--http2")) { o->http2 = 1; continue; }
    if (!strcmp(a, "--parse")) { o->parse = 1; continue; }
    if (!strcmp(a, "--lex")) { o->parse = 2; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--url")) o->url = v;
    else if (!strcmp(a, "--method")) o->method = v;
    else if (!strcmp(a, "--data")) o->data = v;
    else if (!strcmp(a, "--cafile")) o->cafile = v;
    else if (!strcmp(a, "--concurrency")) o->concurrency = atoi(v);
    else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
    else if (!strcmp(a, "--max-requests")) o->max_requests = atol(v);
    else if (!strcmp(a, "--header") && o->nheaders < MAX_HEADERS) o->headers[o->nheaders++] = v;
    else usage();
  }
  if (!o->url || o->concurrency < 1 || o->concurrency > MAX_CONCURRENCY) usage();
}

static void setup_easy(Slot *s, const Options *o, struct curl_slist *headers) {
  CURL *e = s->easy;
  curl_easy_setopt(e, CURLOPT_URL, o->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s->body);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "raw_curl-bench");
  if (strcmp(o->method, "GET")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
  if (o->data) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(o->data));
  }
  if (o->cafile) curl_easy_setopt(e, CURLOPT_CAINFO, o->cafile);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   o->http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  /* multiplexed transfers wait for the one connection instead of opening more */
  if (o->http2) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
}

/* Checks one finished transfer; returns 1 when it failed. */
static int finish(Slot *s, CURLcode rc, const Options *o) {
  long status = 0;
  int failed = rc != CURLE_OK;
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  if (!failed && status >= 400) failed = 1;
  if (!failed && o->parse == 2) {
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    const unsigned char *body = (const unsigned char *)(s->body.data ? s->body.data : "");
    if (!h || yajl_parse(h, body, s->body.len) != yajl_status_ok || yajl_complete_parse(h) != yajl_status_ok)
      failed = 1;
    if (h) yajl_free(h);
  } else if (!failed && o->parse) {
    char err[128];
    yajl_val v = yajl_tree_parse(s->body.data ? s->body.data : "", err, sizeof err);
    if (!v) failed = 1;
    yajl_tree_free(v);
  }
  if (failed) {
    static int reported;
    if (!reported++)
      fprintf(stderr, "raw_curl: %s (status %ld)\n", curl_easy_strerror(rc), status);
  }
  s->body.len = 0;
  return failed;
}

int main(int argc, char **argv) {
  Options o;
  Slot slots[MAX_CONCURRENCY];
  struct curl_slist *headers = NULL;
  long requests = 0, failures = 0;
  parse_args(argc, argv, &o);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  for (int i = 0; i < o.nheaders; i++) headers = curl_slist_append(headers, o.headers[i]);
  /* on every request, as the client sends it (ACS's docs list it for every call) */
  headers = curl_slist_append(headers, "Content-Type: application/json;charset=utf-8");
  memset(slots, 0, sizeof slots);
  for (int i = 0; i < o.concurrency; i++) {
    slots[i].easy = curl_easy_init();
    setup_easy(&slots[i], &o, headers);
  }

  double start = now(), deadline = start + o.seconds;
  if (o.concurrency == 1) {
    while (now() < deadline && (o.max_requests < 0 || requests < o.max_requests)) {
      failures += finish(&slots[0], curl_easy_perform(slots[0].easy), &o);
      requests++;
    }
  } else {
    CURLM *multi = curl_multi_init();
    long started = 0;
    int running = 0;
    if (o.http2) curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o.concurrency);
    for (int i = 0; i < o.concurrency; i++) {
      curl_multi_add_handle(multi, slots[i].easy);
      started++;
    }
    do {
      CURLMsg *msg;
      int left;
      curl_multi_perform(multi, &running);
      while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        Slot *s = NULL;
        for (int i = 0; i < o.concurrency; i++)
          if (slots[i].easy == e) s = &slots[i];
        curl_multi_remove_handle(multi, e);
        failures += finish(s, rc, &o);
        requests++;
        if (now() < deadline && (o.max_requests < 0 || started < o.max_requests)) {
          curl_multi_add_handle(multi, e);
          started++;
          running++;
        }
      }
      if (running) curl_multi_poll(multi, NULL, 0, 100, NULL);
    } while (running);
    curl_multi_cleanup(multi);
  }
  double elapsed = now() - start;

  printf("requests=%ld failures=%ld seconds=%.3f rps=%.1f\n", requests, failures, elapsed,
         (double)requests / elapsed);
  for (int i = 0; i < o.concurrency; i++) {
    curl_easy_cleanup(slots[i].easy);
    free(slots[i].body.data);
  }
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return failures ? 1 : 0;
}
