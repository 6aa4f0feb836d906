/* retry.c - retry decisions and waits (see retry.h). */
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

int campaign_retry_status(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

int campaign_retry_method(const char *method, int never_sent) {
  static const char *const IDEMPOTENT[] = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE",
                                           NULL};
  int i;
  for (i = 0; IDEMPOTENT[i] != NULL; i++) {
    if (strcmp(method, IDEMPOTENT[i]) == 0) return 1;
  }
  return never_sent; /* POST (and any other method): only when nothing was sent */
}

double campaign_retry_after_parse(const char *value, size_t len, long long now) {
  char text[128];
  size_t i = 0, end = len;
  time_t when;
  while (i < end && (value[i] == ' ' || value[i] == '\t')) i++;
  while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t' || value[end - 1] == '\r' ||
                     value[end - 1] == '\n'))
    end--;
  if (i == end || end - i >= sizeof text) return -1;
  if (value[i] >= '0' && value[i] <= '9') {
    double seconds = 0;
    for (; i < end; i++) {
      if (value[i] < '0' || value[i] > '9') return -1;
      seconds = seconds * 10 + (value[i] - '0');
    }
    return seconds;
  }
  memcpy(text, value + i, end - i);
  text[end - i] = '\0';
  when = curl_getdate(text, NULL);
  if (when == (time_t)-1) return -1;
  return (long long)when > now ? (double)((long long)when - now) : 0.0;
}

/* splitmix64: small, fast, and good enough for jitter. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double campaign_rng_uniform(uint64_t *state) {
  return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t campaign_rng_seed(const void *salt) {
  struct timespec ts;
  uint64_t seed;
  clock_gettime(CLOCK_REALTIME, &ts);
  seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)salt;
  rng_next(&seed);
  return seed;
}

double campaign_retry_wait(uint64_t *rng, int n, double retry_base, double retry_max,
                           double retry_after) {
  double cap;
  if (retry_after >= 0) return retry_after < retry_max ? retry_after : retry_max;
  cap = retry_base * ldexp(1.0, n > 1 ? (n - 1 < 60 ? n - 1 : 60) : 0);
  if (cap > retry_max) cap = retry_max;
  return campaign_rng_uniform(rng) * cap;
}

double campaign_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void campaign_sleep(double seconds) {
  struct timespec req, rem;
  if (!(seconds > 0)) return;
  req.tv_sec = (time_t)seconds;
  req.tv_nsec = (long)((seconds - (double)req.tv_sec) * 1e9);
  if (req.tv_nsec >= 1000000000L) req.tv_nsec = 999999999L;
  while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
}
