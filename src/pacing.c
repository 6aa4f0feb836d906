/* pacing.c - GCRA (see pacing.h). Times are seconds on any clock the caller picks (monotonic in
 * the C client, ngx.now() in campaign.ngx): only differences matter. */
#include "pacing.h"

double campaign_pacing_due(double tat, double now, double rate, double burst) {
  /* tau: how far ahead of now the TAT may run while a request still conforms */
  double tau = (burst - 1) / rate, at = tat - tau;
  return at > now ? at - now : 0;
}

double campaign_pacing_take(double *tat, double now, double rate, double burst) {
  double wait = campaign_pacing_due(*tat, now, rate, burst), t = 1 / rate;
  /* A start less than one interval late keeps the schedule: a poll or a sleep that wakes a
   * millisecond late would otherwise lose that millisecond at every start (47.6/s instead of
   * 50 at burst 1, measured). Later than that, the client was idle: no credit is banked
   * beyond the burst and the TAT restarts from now. The slack stays under one interval, so
   * no 1 s window holds more than rate + burst. */
  *tat = (*tat > now - t ? *tat : now) + t;
  return wait;
}

int campaign_pacing_lua_take(lua_State *L) {
  double tat = lua_isnil(L, 1) ? 0 : (double)luaL_checknumber(L, 1);
  double now = (double)luaL_checknumber(L, 2);
  double rate = (double)luaL_checknumber(L, 3);
  double burst = lua_isnoneornil(L, 4) ? 1 : (double)luaL_checknumber(L, 4);
  double wait;
  luaL_argcheck(L, rate > 0 && rate - rate == 0, 3, "rate must be a positive number");
  luaL_argcheck(L, burst >= 1 && burst - burst == 0, 4, "burst must be a number >= 1");
  wait = campaign_pacing_take(&tat, now, rate, burst);
  lua_pushnumber(L, (lua_Number)wait);
  lua_pushnumber(L, (lua_Number)tat);
  return 2;
}
