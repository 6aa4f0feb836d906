/*
 * pacing.h - the client's `rate`/`burst` rule, written once (docs/client.md "Pacing"): GCRA,
 * the generic cell rate algorithm. Its whole state is one number, the theoretical arrival time
 * (TAT): the C client keeps it in the userdata, campaign.ngx in a lua_shared_dict (through
 * campaign._pacing_take), so both drivers pace with the same arithmetic.
 */
#ifndef CAMPAIGN_PACING_H
#define CAMPAIGN_PACING_H

#include "compat.h"

/* Seconds from now until a request may start (0: now), given the TAT, without taking it.
 * rate: requests per second (> 0); burst: requests that may start at once (>= 1). */
double campaign_pacing_due(double tat, double now, double rate, double burst);

/* Takes the next slot: returns the seconds to wait before starting (0: start now) and moves
 * *tat on by 1/rate (from now instead when *tat is more than one interval behind now: an idle
 * client banks no credit). A taker that waits the returned time never exceeds the rule: no 1 s
 * window holds more than rate + burst starts, and in the long run exactly rate per second. */
double campaign_pacing_take(double *tat, double now, double rate, double burst);

/* campaign._pacing_take(tat, now, rate, burst) -> wait, tat (Lua form of the above; tat may be
 * nil: never used). Raises on a non-number or rate <= 0 or burst < 1. */
int campaign_pacing_lua_take(lua_State *L);

#endif /* CAMPAIGN_PACING_H */
