--- campaign.ngx.batch: campaign.ngx's client:batch (lua/campaign/ngx.lua): a bounded pool of
-- light threads that take the next request as soon as they are free, from a list or a source
-- function, with the C client's argument rules (core:batch_options, src/batch_options.c) and
-- its "auto" limiter (campaign._limiter, src/limiter.c). A request goes out through the
-- client's own perform (the core's retry and 401 decisions), so this file holds scheduling
-- only: threads, the source's "not yet", settle order, the first error.
local ngx = ngx
local type, pcall, error, require = type, pcall, error, require
local min = math.min
local remove = table.remove
local co_status = coroutine.status
local unpack = table.unpack or unpack

local _M = {}

--- _M.method(check_client, perform, prepare, now) -> function(self, requests, opts): the
-- client's batch method, given campaign.ngx's own steps (kept there: the single calls use
-- them too). A closure of functions only: no state outlives a call.
function _M.method(check_client, perform, prepare, now)
  --- client:batch(requests[, {concurrency = 16, on_result = fn(i, result)}]) -> results
  -- requests[i] = {method, path, body_or_nil, opts_or_nil}; results[i] = {status, body, err,
  -- attempts, headers}, in request order. Runs `concurrency` light threads that take the next
  -- request as soon as they are free, so a slow request or one waiting for its retry never holds
  -- the others back. Every request is validated (and may raise) before the first one is sent.
  -- requests may be a source function, as in the C client (docs/client.md): each light thread
  -- calls it when free, for the next request, false (not yet: the thread waits for a settle) or
  -- nil (the end); results go only to on_result and batch returns {count, ok, failed}.
  ---@param self campaign.ngx.Client
  ---@param requests campaign.BatchRequest[]|campaign.BatchSource
  ---@param opts? campaign.BatchOpts
  ---@return campaign.BatchResult[]|campaign.BatchSummary
  return function(self, requests, opts)
    check_client(self, "batch")
    local from_source = type(requests) == "function"
    -- batch's arguments by the C client's rules (src/batch_options.c); "auto": its limiter
    -- (src/limiter.c), sampled per attempt
    local concurrency, limiter = self._core:batch_options("campaign.ngx.batch", requests, opts, 2)
    if limiter then concurrency = limiter:state().max end
    opts = opts or {}
    local on_result = opts.on_result
    local function request_of(r, i)
      if type(r) ~= "table" then
        error("campaign.ngx.batch: requests[" .. i .. "] must be a table {method, path, body, opts}", 3)
      end
      local body = r[3]
      if body == nil then body = r.body end
      -- a tail call: the raise's level 3 is then batch's caller, as for the other methods
      return prepare(self, "campaign.ngx.batch: request " .. i, r[1] or r.method, r[2] or r.path,
        r[4] or r.opts, body)
    end
    local prepared = {}
    local n = 0
    if not from_source then
      for i = 1, #requests do prepared[i] = request_of(requests[i], i) end
      n = #prepared
      if n == 0 then return {} end
    end
    local results = {}
    local next_index = 0
    -- {value}: the first error of on_result, of the source or of a worker. As in the C client it
    -- stops the batch: no request starts after it, and batch raises it once every thread is gone.
    local failed
    -- A source: light threads pull from it; `false` parks the thread until a request settles.
    local ended, active, settled, ok_count, failed_count = false, 0, 0, 0, 0
    -- A parked thread (over the "auto" limit, or after a source's false) waits on a semaphore
    -- that a settle or a limiter sample posts (lua-resty-core's ngx.semaphore, which ngx_lua
    -- loads); without it, it polls every millisecond.
    local has_semaphore, semaphore = pcall(require, "ngx.semaphore")
    local moved = has_semaphore and semaphore.new(0) or nil
    local parked = 0
    local function wake()
      if parked > 0 and moved then moved:post(parked) end
    end
    local function park()
      if not moved then return ngx.sleep(0.001) end
      parked = parked + 1
      moved:wait(1) -- the timeout only bounds a lost wake-up: the caller looks again
      parked = parked - 1
    end
    local function settle(i, body, res)
      local result
      if body ~= nil then
        result = { body = body, status = res.status, headers = res.headers, attempts = res.attempts }
        ok_count = ok_count + 1
      else
        result = { err = res, status = res.status, headers = res.headers, attempts = res.attempts or 0 }
        failed_count = failed_count + 1
      end
      if not from_source then results[i] = result end
      settled = settled + 1
      wake()
      if on_result and not failed then
        local ok, cerr = pcall(on_result, i, result, limiter and limiter:limit() or concurrency)
        if not ok then failed = { cerr } end
      end
    end
    local function pull()
      local ok, r = pcall(requests)
      if not ok then failed = { r } return nil end
      if r == nil then ended = true return nil end
      if r == false then
        if active == 0 then
          failed = { "campaign.ngx.batch: the source returned false (wait for a result) with no "
            .. "request in flight: it would wait forever" }
        end
        return false
      end
      next_index = next_index + 1
      local pok, req = pcall(request_of, r, next_index)
      if not pok then failed = { req } return nil end
      return req, next_index
    end
    -- The limiter learns from every attempt, by the C batch's rule (x:lesson, src/limiter.c):
    -- a retried 503 is one overload and then an answer, not one overloaded call.
    local sample
    if limiter then
      sample = function(x)
        local outcome, rtt = x:lesson()
        limiter:sample(rtt, outcome, active, now())
        wake() -- the limit may have moved
      end
    end
    local function worker()
      while not failed do
        local req, i
        -- "auto": a thread beyond the limit waits until the limit or the load moves
        while limiter and active >= limiter:limit() and not failed and not ended do park() end
        if failed then return end
        if from_source then
          if ended then return end
          req, i = pull()
          if req == nil then return end
          if req == false then
            -- parked until a request settles (a source's "not yet")
            local seen = settled
            while settled == seen and not failed and not ended and active > 0 do park() end
          end
        else
          next_index = next_index + 1
          i = next_index
          if i > n then return end
          req = prepared[i]
        end
        if req then
          active = active + 1
          local body, res = perform(self, req, i, sample)
          active = active - 1
          settle(i, body, res)
        end
      end
    end
    local waiting = {}
    for _ = 1, from_source and concurrency or min(concurrency, n) do
      if failed or ended then break end -- a thread runs until it first yields: it may have raised already
      waiting[#waiting + 1] = ngx.thread.spawn(worker)
    end
    while #waiting > 0 do
      local ok, terr = ngx.thread.wait(unpack(waiting))
      if not ok then failed = failed or { terr } end
      for k = #waiting, 1, -1 do
        -- the thread just waited for is dead; after a failure the others are killed where they
        -- wait (a retry sleep, cosocket I/O); one inside a subrequest cannot be killed and ends
        -- after its current request
        if co_status(waiting[k]) == "dead" or (failed and ngx.thread.kill(waiting[k])) then
          remove(waiting, k)
        end
      end
    end
    if failed then error(failed[1], 0) end
    if from_source then return { count = next_index, ok = ok_count, failed = failed_count } end
    return results
  end
end

return _M
