/*
 * retry.h - design.md "Retries and tokens": which failures are transient, which methods may be
 * repeated, how long to wait (Retry-After, else full-jitter exponential backoff).
 */
#ifndef CAMPAIGN_RETRY_H
#define CAMPAIGN_RETRY_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the status is a transient one: 429, 502, 503, 504 (never 500: ACS validation). */
int campaign_retry_status(long status);

/* 1 when another attempt is allowed for this method after a transient failure. never_sent: the
 * request did not leave the machine (connection refused, name not resolved, ...). GET, HEAD,
 * OPTIONS, PUT, PATCH and DELETE may be repeated; POST only when never_sent. */
int campaign_retry_method(const char *method, int never_sent);

/* Parses a Retry-After value: delay-seconds or an HTTP date (curl_getdate). Returns seconds
 * (>= 0), or -1 when the value is neither. now is the current Unix time. */
double campaign_retry_after_parse(const char *value, size_t len, long long now);

/* Seconds to wait before retry number n (1-based): retry_after (>= 0) capped at retry_max,
 * else uniform in [0, min(retry_max, retry_base * 2^(n-1))]. rng: the client's PRNG state. */
double campaign_retry_wait(uint64_t *rng, int n, double retry_base, double retry_max,
                           double retry_after);

/* Seeds a per-client PRNG state (no global state: two clients never share one). */
uint64_t campaign_rng_seed(const void *salt);
/* A uniform double in [0, 1). */
double campaign_rng_uniform(uint64_t *state);

/* Monotonic seconds, for elapsed times and retry schedules. */
double campaign_now(void);
/* Blocks the calling thread for seconds (nanosleep, restarted after signals). */
void campaign_sleep(double seconds);

#endif /* CAMPAIGN_RETRY_H */
