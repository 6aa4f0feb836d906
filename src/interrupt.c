/* interrupt.c - the interrupt flag (see interrupt.h). */
#include "interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "retry.h"

/* Written by the handler only (and cleared by clear_interrupt): a sig_atomic_t, nothing else,
 * is what a handler may touch. */
static volatile sig_atomic_t caught = 0;
static int trapped = 0;

static void on_signal(int sig) { caught = sig; }

int campaign_signal_pending(void) { return (int)caught; }

int campaign_signal_trapped(void) { return trapped; }

const char *campaign_signal_message(int sig) {
  switch (sig) {
    case SIGINT: return "interrupted by SIGINT";
    case SIGTERM: return "interrupted by SIGTERM";
    default: return "interrupted by a signal";
  }
}

int campaign_signal_sleep(double seconds) {
  double until = campaign_now() + seconds;
  for (;;) {
    double left;
    struct timespec ts;
    if (caught) return (int)caught;
    left = until - campaign_now();
    if (!(left > 0)) return 0;
    if (!trapped) { /* nothing can set the flag: one plain sleep */
      campaign_sleep(left);
      return 0;
    }
    /* slices: a signal delivered to another thread (libcurl's resolver) does not interrupt
     * this nanosleep, so the flag is looked at every 100 ms anyway */
    if (left > 0.1) left = 0.1;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(left * 1e9);
    (void)nanosleep(&ts, NULL); /* EINTR: the loop looks at the flag */
  }
}

/* campaign.trap_signals() -> true: SIGINT and SIGTERM set the flag instead of ending the
 * process. No SA_RESTART, so a blocking poll or sleep returns at once with EINTR. Calling it
 * again installs the same handlers again (idempotent). */
static int signal_trap(lua_State *L) {
  static const int SIGNALS[2] = {SIGINT, SIGTERM};
  struct sigaction sa;
  int k;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  for (k = 0; k < 2; k++) {
    if (sigaction(SIGNALS[k], &sa, NULL) != 0)
      return luaL_error(L, "campaign.trap_signals: sigaction failed: %s", strerror(errno));
  }
  trapped = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/* campaign.interrupted() -> 2 (SIGINT), 15 (SIGTERM) or nil */
static int signal_interrupted(lua_State *L) {
  int sig = (int)caught;
  if (sig) lua_pushinteger(L, sig);
  else lua_pushnil(L);
  return 1;
}

/* campaign.clear_interrupt(): forgets a caught signal (the handlers stay installed). */
static int signal_clear(lua_State *L) {
  (void)L;
  caught = 0;
  return 0;
}

void campaign_signal_register(lua_State *L, int module_idx) {
  module_idx = campaign_absindex(L, module_idx);
  lua_pushcfunction(L, signal_trap);
  lua_setfield(L, module_idx, "trap_signals");
  lua_pushcfunction(L, signal_interrupted);
  lua_setfield(L, module_idx, "interrupted");
  lua_pushcfunction(L, signal_clear);
  lua_setfield(L, module_idx, "clear_interrupt");
}
