--- campaign.workflow.wait: the one polling loop every waiting workflow uses (send_and_track,
-- gdpr_request_and_fetch, run_workflow_and_wait, signal_and_wait).
--
-- Fetch, classify the status, sleep, fetch again: the first interval is opts.poll (default
-- 1 s), each next one 1.5 times longer, capped at opts.max_poll (default 30 s, or opts.poll
-- when that is larger); the last sleep is cut to end at the deadline, where one more fetch is
-- made; still not done then: nil, err with kind "timeout". opts.deadline (default 300 s)
-- counts from the start of the workflow call, the initiating request included.
-- Time and sleep are campaign.clock's (ngx.now/ngx.sleep inside OpenResty: a wait yields, it
-- never blocks the nginx worker; campaign.gettime/campaign.sleep elsewhere), or opts.clock and
-- opts.sleep. No state at module level.
local campaign = require "campaign"
local default_clock = require "campaign.clock"

local type, tostring, math_min, math_max, string_format =
  type, tostring, math.min, math.max, string.format

---@class campaign.workflow.wait
---@field DEFAULT_DEADLINE number
---@field DEFAULT_POLL number
---@field DEFAULT_MAX_POLL number
---@field BACKOFF number
---@field OPTIONS table<string, string> the option keys of every wait
local wait = {}

wait.DEFAULT_DEADLINE = 300
wait.DEFAULT_POLL = 1
wait.DEFAULT_MAX_POLL = 30
wait.BACKOFF = 1.5

--- The option keys of every wait, for common.check_opts.
wait.OPTIONS = {
  deadline = "nonnegative", poll = "positive", max_poll = "positive", on_poll = "func",
  clock = "func", sleep = "func",
}

local function seconds(s)
  return string_format("%.3g s", s)
end

--- wait.check(fname, opts): the cross-key rule (max_poll below poll raises).
---@param fname string
---@param opts campaign.workflow.WaitOpts
---@return nil
function wait.check(fname, opts)
  if opts.max_poll and opts.poll and opts.max_poll < opts.poll then
    error("campaign.workflow." .. fname .. ": opts.max_poll (" .. tostring(opts.max_poll)
      .. ") must be >= opts.poll (" .. tostring(opts.poll) .. ")", 3)
  end
end

--- wait.now(opts) -> seconds: the clock the wait will use (to take `started` before the
-- initiating request).
---@param opts campaign.workflow.WaitOpts
---@return number seconds
function wait.now(opts)
  return (opts.clock or default_clock.now)()
end

--- wait.poll(spec) -> record, history | nil, err
-- spec = {
--   opts = the caller's checked opts (deadline, poll, max_poll, on_poll, clock, sleep),
--   started = wait.now(opts) taken when the workflow call began,
--   first = a record already in hand (the answer of the initiating request), optional,
--   fetch = function() -> record | nil, err   (one GET),
--   status = function(record) -> string        (the record's status or state),
--   classify = function(status, record) -> "done" | "failed" | nil (keep waiting),
--   what = "transactional event EVTx/@..."      (for messages),
--   path = the polled path (err.path/err.method of the timeout), optional,
--   failed_kind = "event_failed" ...            (kind of a "failed" verdict),
--   failed_message = function(status) -> string, optional,
-- }
-- history: {{status = s, elapsed = seconds}, ...}, one entry per status change (the first
-- status seen included). opts.on_poll(record, elapsed) is called after each record read,
-- the last one too; what it raises goes through.
-- A fetch failure is returned as it is, with err.status_history and err.last_status added
-- when a status had been seen (the client's kinds: http, network, timeout, auth, ...).
---@param spec campaign.workflow.PollSpec
---@return table|nil record
---@return campaign.StatusChange[]|campaign.Error history_or_err
function wait.poll(spec)
  local opts = spec.opts
  local clock = opts.clock or default_clock.now
  local sleep = opts.sleep or default_clock.sleep
  local deadline = opts.deadline or wait.DEFAULT_DEADLINE
  local interval = opts.poll or wait.DEFAULT_POLL
  local cap = opts.max_poll or math_max(wait.DEFAULT_MAX_POLL, interval)
  local on_poll = opts.on_poll
  local started = spec.started or clock()
  local history, polls, last_status, record = {}, 0, nil, spec.first

  local function observe(rec)
    local elapsed = clock() - started
    local status = spec.status(rec)
    if status ~= last_status or #history == 0 then
      history[#history + 1] = { status = status, elapsed = elapsed }
      last_status = status
    end
    if on_poll then on_poll(rec, elapsed) end
    return status, elapsed
  end

  local function finish_failed(status, elapsed)
    local message = spec.failed_message and spec.failed_message(status)
      or (spec.what .. " ended in status '" .. tostring(status) .. "'")
    return nil, campaign.error {
      kind = spec.failed_kind, message = message, last_status = status, status_history = history,
      record = record, elapsed = elapsed, polls = polls,
    }
  end

  while true do
    if record == nil then
      local err
      polls = polls + 1
      record, err = spec.fetch()
      if record == nil then
        if type(err) == "table" and #history > 0 then
          err.status_history, err.last_status = history, last_status
        end
        return nil, err
      end
    end
    local status, elapsed = observe(record)
    local verdict = spec.classify(status, record)
    if verdict == "done" then return record, history end
    if verdict == "failed" then return finish_failed(status, elapsed) end
    local left = deadline - elapsed
    if left <= 0 then
      return nil, campaign.error {
        kind = "timeout", method = spec.path and "GET" or nil, path = spec.path,
        message = string_format("%s is still '%s' at the deadline (%s, %d polls)", spec.what,
          tostring(status), seconds(deadline), polls),
        deadline = deadline, elapsed = elapsed, polls = polls, last_status = status,
        status_history = history, record = record,
      }
    end
    sleep(math_min(interval, left))
    interval = math_min(interval * wait.BACKOFF, cap)
    record = nil
  end
end

return wait
