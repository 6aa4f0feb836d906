/*
 * interrupt.h - campaign.trap_signals(), campaign.interrupted(), campaign.clear_interrupt(): C
 * handlers for SIGINT and SIGTERM that only set one process-wide flag, which every call of the
 * libcurl client reads between transfers, in libcurl's progress callback and in retry waits
 * (docs/client.md "Interrupts"). Signals are process-wide, so is the flag.
 */
#ifndef CAMPAIGN_INTERRUPT_H
#define CAMPAIGN_INTERRUPT_H

#include "compat.h"

/* The signal number (SIGINT, SIGTERM) caught since the last clear, else 0. Async-signal-safe
 * to read from anywhere, libcurl callbacks included. */
int campaign_signal_pending(void);

/* 1 once trap_signals installed the handlers. */
int campaign_signal_trapped(void);

/* "interrupted by SIGINT", "interrupted by SIGTERM" (static strings). */
const char *campaign_signal_message(int sig);

/* Sleeps up to seconds; returns early with the signal number when one is caught (checked at
 * least every 100 ms once the handlers are installed), else returns 0. */
int campaign_signal_sleep(double seconds);

/* Adds trap_signals, interrupted and clear_interrupt to the module table. */
void campaign_signal_register(lua_State *L, int module_idx);

#endif /* CAMPAIGN_INTERRUPT_H */
