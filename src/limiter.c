/* limiter.c - the adaptive concurrency limit (see limiter.h). */
#include "limiter.h"

#include <string.h>

/* Weight of a new latency in the moving average: about the last 20-40 answers count, so one
 * slow answer moves it little and a jittered latency (50-300 ms) averages out (its minimum, the
 * baseline, then stays within about 1.4x of its usual value instead of wandering past the
 * band). */
#define SMOOTHING 0.05
/* Answers before the average is trusted as a baseline, during which the limit stays at its start
 * value (a low load: the baseline is the server's own latency, not one we inflated): the first
 * answer alone could be a lucky 50 ms of a 50-300 ms spread and make every later average look
 * like a rise. */
#define WARMUP 20
/* Multiplicative back-off on a 429/503 and on a timeout (a timeout is the stronger signal: the
 * server did not even answer). */
#define BACKOFF_OVERLOAD 0.7
#define BACKOFF_TIMEOUT 0.5
/* The strongest latency back-off of one step. */
#define BACKOFF_LATENCY_MIN 0.5

static double clamp(const campaign_limiter *l, double v) {
  return v < l->min ? l->min : v > l->max ? l->max : v;
}

void campaign_limiter_init(campaign_limiter *l, double start, double min, double max) {
  l->min = min;
  l->max = max;
  l->limit = start;
  l->limit = clamp(l, start);
  l->smoothed = 0;
  l->base = 0;
  l->hold_until = 0;
  l->slow_start = 1;
  l->samples = 0;
}

int campaign_limiter_limit(const campaign_limiter *l) {
  int n = (int)l->limit;
  return n < (int)l->min ? (int)l->min : n > (int)l->max ? (int)l->max : n;
}

/* Shrinks the limit by `factor`, once per round trip: the answers still coming back were sent
 * under the old limit and would count the same overload again. */
static void back_off(campaign_limiter *l, double now, double factor, double rtt) {
  if (now < l->hold_until) return;
  l->limit = clamp(l, l->limit * factor);
  l->slow_start = 0;
  l->hold_until = now + (l->smoothed > rtt ? l->smoothed : rtt);
  /* At the minimum we queue nothing at the server: what it answers now is its own latency, so
   * the baseline is learned again (a server that became slower for everyone is not taken for
   * one we overload, which would keep the limit down for good). */
  if (campaign_limiter_limit(l) <= (int)l->min) {
    l->base = 0;
    l->samples = 0;
  }
}

void campaign_limiter_sample(campaign_limiter *l, double now, double rtt,
                             campaign_limiter_outcome outcome, int inflight) {
  double ratio;
  if (rtt < 0 || rtt != rtt) return;
  switch (outcome) {
    case CAMPAIGN_LIMITER_IGNORE:
      return;
    case CAMPAIGN_LIMITER_OVERLOAD:
      back_off(l, now, BACKOFF_OVERLOAD, rtt);
      return;
    case CAMPAIGN_LIMITER_TIMEOUT:
      back_off(l, now, BACKOFF_TIMEOUT, rtt);
      return;
    case CAMPAIGN_LIMITER_OK:
      break;
  }
  if (l->samples < WARMUP) l->samples++;
  /* until the warm-up ends, a plain mean (each answer weighs the same), then the moving one */
  l->smoothed = l->smoothed > 0
                    ? l->smoothed + (rtt - l->smoothed) / (l->samples < 1 / SMOOTHING ? l->samples : 1 / SMOOTHING)
                    : rtt;
  if (l->samples >= WARMUP && (l->base <= 0 || l->smoothed < l->base)) l->base = l->smoothed;
  ratio = l->base > 0 ? l->smoothed / l->base : 1;
  if (ratio > CAMPAIGN_LIMITER_BACKOFF) {
    /* in proportion to the rise: at twice the band's top the limit halves */
    double factor = CAMPAIGN_LIMITER_BACKOFF / ratio;
    back_off(l, now, factor < BACKOFF_LATENCY_MIN ? BACKOFF_LATENCY_MIN : factor, rtt);
    return;
  }
  /* grow only while the limit is in use: a client held back by pacing (rate) or by its input
   * keeps few requests in flight, and a limit it does not use says nothing about the server */
  if (l->samples < WARMUP) return; /* the baseline is measured at the start value's low load */
  if (ratio <= CAMPAIGN_LIMITER_GROW && (double)inflight * 2 >= l->limit)
    l->limit = clamp(l, l->limit + (l->slow_start ? 1 : 1 / l->limit));
}

campaign_limiter_outcome campaign_limiter_classify(const char *kind, long status) {
  if (kind == NULL) return status == 429 || status == 503 ? CAMPAIGN_LIMITER_OVERLOAD : CAMPAIGN_LIMITER_OK;
  return strcmp(kind, "timeout") == 0 ? CAMPAIGN_LIMITER_TIMEOUT : CAMPAIGN_LIMITER_IGNORE;
}
