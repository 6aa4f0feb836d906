/*
 * batch.h - client:batch on libcurl multi (src/batch.c), for the method table in client.c.
 * batch.c drives exchange.c like the single call does and calls nothing in client.c.
 */
#ifndef CAMPAIGN_BATCH_H
#define CAMPAIGN_BATCH_H

#include "client_state.h"

/* client:batch(requests, opts). Stack: 1 spec (unused), 2 self, 3 requests, 4 opts; runs
 * inside the client's busy guard (client.c). Returns the results list. */
int campaign_batch_run(lua_State *L);
/* Detaches every pool transfer from the multi handle (after an error inside batch). */
void campaign_batch_reset(campaign_client *c);

#endif /* CAMPAIGN_BATCH_H */
