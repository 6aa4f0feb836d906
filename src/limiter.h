/*
 * limiter.h - the adaptive concurrency limit of `concurrency = "auto"` (docs/bulk.md
 * "Concurrency"), written once: src/batch.c uses it, campaign.ngx reaches it through
 * campaign._limiter (src/limiter_lua.c). Pure arithmetic: no Lua, no I/O, no clock (the caller
 * passes the time, on any clock: only differences matter).
 *
 * The limit grows while the latency holds (one more per good answer until the first back-off,
 * then about one per round trip, and only while the limit is in use), holds while the latency
 * is in a band above its baseline, and shrinks when the latency rises past that band (in
 * proportion to the rise), on a timeout and on a 429/503 (multiplicatively), at most once per
 * round trip so that one overload moment counts once.
 */
#ifndef CAMPAIGN_LIMITER_H
#define CAMPAIGN_LIMITER_H

/* What a finished attempt tells the limiter. */
typedef enum {
  CAMPAIGN_LIMITER_OK,       /* an answer (any status but 429/503): a latency sample */
  CAMPAIGN_LIMITER_OVERLOAD, /* 429 or 503: the server (or its gateway) is overloaded */
  CAMPAIGN_LIMITER_TIMEOUT,  /* the attempt timed out */
  CAMPAIGN_LIMITER_IGNORE    /* says nothing about load (a refused connection, an interrupt) */
} campaign_limiter_outcome;

typedef struct campaign_limiter {
  double limit;      /* the current limit; fractional (additive steps are fractions) */
  double min, max;   /* its bounds */
  double smoothed;   /* moving average of the recent latencies (0: no sample yet) */
  double base;       /* the baseline: the lowest `smoothed` seen (0: none yet) */
  double hold_until; /* no back-off before this time (one per round trip) */
  int slow_start;    /* +1 per good answer until the first back-off */
  int samples;       /* latency samples so far, counted up to the warm-up's end */
} campaign_limiter;

/* Band of the latency / baseline ratio: below GROW the limit may grow, above BACKOFF it
 * shrinks, in between it holds. */
#define CAMPAIGN_LIMITER_GROW 1.5
#define CAMPAIGN_LIMITER_BACKOFF 2.0
/* Default bounds (docs/bulk.md). */
#define CAMPAIGN_LIMITER_DEFAULT_START 4
#define CAMPAIGN_LIMITER_DEFAULT_MAX 64

/* Starts at `start`, within [min, max] (the caller checked 1 <= min <= start <= max). */
void campaign_limiter_init(campaign_limiter *l, double start, double min, double max);

/* The limit to apply now: an integer in [min, max]. */
int campaign_limiter_limit(const campaign_limiter *l);

/* One finished attempt: its latency `rtt` (seconds, >= 0), what it was, the attempts in flight
 * when it finished (itself included) and the time `now`. */
void campaign_limiter_sample(campaign_limiter *l, double now, double rtt,
                             campaign_limiter_outcome outcome, int inflight);

/* What one attempt says about the load: kind NULL (an answer came back) with status 429 or 503
 * is an overload, any other answer a latency sample; kind "timeout" a timeout; any other failure
 * (refused, reset, TLS, too large, interrupted) nothing. Both drivers sample with it. */
campaign_limiter_outcome campaign_limiter_classify(const char *kind, long status);

#endif /* CAMPAIGN_LIMITER_H */
