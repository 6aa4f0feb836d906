--- campaign.workflow: the ACS documentation's update flow, proved, one record or many.
--
-- update_and_verify: GET, PATCH the changes, GET again and compare every changed field.
-- bulk_update: many PATCHes streamed through client:batch (no window barrier), optionally verified.
-- Read-only fields are sent by default (ACS answers 500 RST-360011, returned as is);
-- opts.check_read_only refuses them locally instead.
-- Only the client's methods are used, so both run unchanged with the libcurl client and inside
-- OpenResty with campaign.ngx; waits go through opts.sleep (default: ngx.sleep in OpenResty,
-- else the C module's campaign.sleep). No state lives at module level.
local campaign = require "campaign"
local default_clock = require "campaign.clock"
local hrefs = require "campaign.hrefs"
local journal = require "campaign.journal"

local type, pairs, ipairs, error, pcall, tostring =
  type, pairs, ipairs, error, pcall, tostring
local table_sort, table_concat, string_format, math_floor = table.sort, table.concat, string.format,
  math.floor

---@class campaign.workflow
local workflow = {}

local DEFAULT_RESOURCE = "profileAndServices/profile"
local DEFAULT_READ_ONLY = {
  "PKey", "href", "created", "lastModified", "createdBy", "modifiedBy", "age",
}

-- Comparison ----------------------------------------------------------------------------------

local null = campaign.null

-- ACS shows unset text as "" (and may omit unset fields): null, "" and absent are one value.
local function is_unset(v)
  return v == nil or v == null or v == ""
end

-- A list: has element 1, or carries the JSON array mark (an empty `[]` decoded or built with
-- campaign.array), so that sending `tags = campaign.array{}` checks that the list is empty.
local function is_list(t)
  if t[1] ~= nil then return true end
  local is_array = campaign.is_array
  if type(is_array) == "function" then
    local ok, yes = pcall(is_array, t)
    return ok and yes == true
  end
  return false
end

-- ACS datetimes read back as "YYYY-MM-DD HH:MM:SS.mmmZ" (UTC, space, milliseconds) whatever
-- ISO 8601 spelling was sent ("2019-09-25T23:20:35Z", "...:35.1Z", "...:35+00:00"): both sides
-- are brought to that form. Only UTC spellings are rewritten; an offset other than zero is
-- compared as text (converting it needs a calendar, and ACS documents UTC only).
local function canonical_datetime(s)
  local date, hh, mm, rest = s:match("^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d):(%d%d)(.*)$")
  if not date then return nil end
  local ss, frac, zone = rest:match("^:(%d%d)%.?(%d*)(.*)$")
  if not ss then ss, frac, zone = "00", "", rest end
  if zone ~= "Z" and zone ~= "" and zone ~= "+00:00" and zone ~= "-00:00" and zone ~= "+0000" then
    return nil
  end
  frac = (frac .. "000"):sub(1, 3)
  return date .. " " .. hh .. ":" .. mm .. ":" .. ss .. "." .. frac .. "Z"
end

local function same_string(expected, got)
  if expected == got then return true end
  if type(got) ~= "string" then return false end
  local a = canonical_datetime(expected)
  return a ~= nil and a == canonical_datetime(got)
end

--- Deep comparison of what was sent with what was read back. Objects: every key sent must
-- match (ACS adds keys of its own, e.g. a link {PKey} comes back as {PKey, href, title});
-- lists: same length, element by element; numbers by value (1 == 1.0).
---@param expected any what was sent
---@param got any what was read back
---@return boolean
local function matches(expected, got)
  if is_unset(expected) then return is_unset(got) end
  if type(expected) == "table" then
    if type(got) ~= "table" then return false end
    if is_list(expected) then
      if #expected ~= #got then return false end
      for i = 1, #expected do
        if not matches(expected[i], got[i]) then return false end
      end
      return true
    end
    for k, v in pairs(expected) do
      if not matches(v, got[k]) then return false end
    end
    return true
  end
  if type(expected) == "string" then return same_string(expected, got) end
  return expected == got
end
workflow.matches = matches

local function field_matches(compare, field, expected, got)
  if compare then return compare(field, expected, got) and true or false end
  return matches(expected, got)
end

-- Errors --------------------------------------------------------------------------------------

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table_sort(keys)
  return keys
end

-- A short rendering of a value for a one-line message.
local function render(v)
  if v == nil then return "absent" end
  if v == null then return "null" end
  local text
  if type(v) == "table" then
    local ok, json = pcall(campaign.encode, v)
    text = ok and json or "{...}"
  elseif type(v) == "string" then
    text = string_format("%q", v):gsub("\
", "\n")
  else
    text = tostring(v)
  end
  if #text > 40 then text = text:sub(1, 37) .. "..." end
  return text
end

-- ACS's dataPolicy rewrites some values on write (email lower-cased, names smart-cased):
-- such a mismatch differs only in letter case. It is marked (m.cause = "data_policy", and
-- m.data_policy = the field's policy when opts.metadata names it) and explained in the message,
-- so that the caller sees that ACS changed the value rather than that the write was lost.
local function explain_mismatches(mismatches, policies)
  for field, m in pairs(mismatches) do
    if type(m.expected) == "string" and type(m.got) == "string" and m.got ~= "" and m.got ~= m.expected
      and m.expected:lower() == m.got:lower() then
      m.cause = "data_policy"
      if policies then m.data_policy = policies[field] end
    end
  end
end

local function verify_error(path, mismatches, attempts, policies)
  explain_mismatches(mismatches, policies)
  local fields = sorted_keys(mismatches)
  local parts = {}
  local rewritten = false
  for i, field in ipairs(fields) do
    local m = mismatches[field]
    if m.cause == "data_policy" then rewritten = true end
    if i <= 3 then
      local why = ""
      if m.cause == "data_policy" then
        why = ": ACS rewrote its case (dataPolicy " .. (m.data_policy or "email/smartCase") .. ")"
      end
      parts[#parts + 1] = field .. " (sent " .. render(m.expected) .. ", read " .. render(m.got) .. why .. ")"
    elseif i == 4 then
      parts[#parts + 1] = "and " .. (#fields - 3) .. " more"
    end
  end
  if rewritten then
    parts[#parts + 1] = "(send values as ACS stores them, or pass opts.compare)"
  end
  return campaign.error {
    kind = "verify",
    method = "GET",
    url = path,
    attempts = attempts,
    mismatches = mismatches,
    message = "the record read back differs from the change: " .. table_concat(parts, ", "),
  }
end

local function read_only_error(path, fields)
  return campaign.error {
    kind = "verify",
    method = "PATCH",
    url = path,
    read_only = fields,
    mismatches = {},
    message = "refusing to change read-only field(s) " .. table_concat(fields, ", ")
      .. " (nothing was sent)",
  }
end

-- Options -------------------------------------------------------------------------------------

local function check_client(fname, client)
  local t = type(client)
  if (t ~= "table" and t ~= "userdata") or client.get == nil then
    error("campaign.workflow." .. fname .. ": bad argument #1 'client' (client expected, got " .. t .. ")", 3)
  end
end

local function check_opts(fname, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error("campaign.workflow." .. fname .. ": bad argument 'opts' (table or nil expected)", 3)
  end
  local function number_opt(name, min, integer)
    local v = opts[name]
    if v ~= nil and (type(v) ~= "number" or v < min or (integer and v ~= math_floor(v))) then
      error(string_format("campaign.workflow.%s: opts.%s must be %s >= %d", fname, name,
        integer and "an integer" or "a number", min), 4)
    end
  end
  number_opt("verify_attempts", 1, true)
  number_opt("verify_delay", 0)
  -- concurrency, concurrency_max, concurrency_start: client:batch's own rules
  -- (src/batch_options.c), checked before any input is read, not when the first batch starts
  if opts.concurrency ~= nil or opts.concurrency_max ~= nil or opts.concurrency_start ~= nil then
    campaign._batch_options("campaign.workflow." .. fname, {}, { concurrency = opts.concurrency,
      concurrency_max = opts.concurrency_max, concurrency_start = opts.concurrency_start }, 3)
  end
  number_opt("window", 1, true)
  for _, name in ipairs { "skip_unchanged", "check_read_only" } do
    if opts[name] ~= nil and type(opts[name]) ~= "boolean" then
      error(string_format("campaign.workflow.%s: opts.%s must be a boolean", fname, name), 3)
    end
  end
  for _, name in ipairs { "compare", "sleep", "clock", "on_progress", "on_item" } do
    if opts[name] ~= nil and type(opts[name]) ~= "function" then
      error(string_format("campaign.workflow.%s: opts.%s must be a function", fname, name), 3)
    end
  end
  if opts.resource ~= nil and (type(opts.resource) ~= "string" or opts.resource == "") then
    error("campaign.workflow." .. fname .. ": opts.resource must be a path such as "
      .. "'profileAndServices/profile'", 3)
  end
  return opts
end

-- The read-only set: the documented fields, opts.read_only, and the fields the resourceType
-- metadata (opts.metadata: the body of get_metadata_for_resource, or its `content`) marks readOnly.
-- field -> dataPolicy name, from opts.metadata (the resourceType answer or its content).
local function data_policies(opts)
  local meta = opts.metadata
  if type(meta) ~= "table" then return nil end
  local fields = type(meta.content) == "table" and meta.content or meta
  local out
  for name, desc in pairs(fields) do
    if type(desc) == "table" and type(desc.dataPolicy) == "string" and desc.dataPolicy ~= "" then
      out = out or {}
      out[name] = desc.dataPolicy
    end
  end
  return out
end

local function read_only_set(opts)
  local set = {}
  for _, f in ipairs(DEFAULT_READ_ONLY) do set[f] = true end
  if type(opts.read_only) == "table" then
    for _, f in ipairs(opts.read_only) do set[f] = true end
  end
  local meta = opts.metadata
  if type(meta) == "table" then
    local fields = type(meta.content) == "table" and meta.content or meta
    for name, desc in pairs(fields) do
      if type(desc) == "table" and desc.readOnly == true then set[name] = true end
    end
  end
  return set
end

local function read_only_fields(changes, set)
  local found = {}
  for field in pairs(changes) do
    if set[field] then found[#found + 1] = tostring(field) end
  end
  if #found == 0 then return nil end
  table_sort(found)
  return found
end

-- The record's path: the PKey as ONE encoded segment (hrefs.key_segment), so "..%2F" or "?x"
-- in it is data, never structure. Only called with a PKey valid_pkey accepted.
local function record_path(opts, pkey)
  return (opts.resource or DEFAULT_RESOURCE) .. "/" .. hrefs.key_segment(pkey)
end

-- ACS may wrap a single record as {content = {record}} (the documentation's seed example).
local function unwrap(body)
  if type(body) == "table" and body.PKey == nil and type(body.content) == "table"
    and type(body.content[1]) == "table" and body.content[2] == nil then
    return body.content[1]
  end
  return body
end

-- The value of `field` in `record`, as read: `false` stays false (not `x and y or nil`, which
-- turns a stored false into "absent").
local function field_of(record, field)
  if type(record) ~= "table" then return nil end
  return record[field]
end

local function diff(changes, record, compare)
  local mismatches
  for field, expected in pairs(changes) do
    local got = field_of(record, field)
    if not field_matches(compare, field, expected, got) then
      mismatches = mismatches or {}
      mismatches[field] = { expected = expected, got = got }
    end
  end
  return mismatches
end

-- A PKey is one path segment: campaign.api's rule (hrefs.key_segment: not empty, ".", "..",
-- no "/", "\\" or control character, also once percent-decoded). Returns true, or false and why.
local function valid_pkey(pkey)
  if type(pkey) ~= "string" then return false, nil end
  local seg, problem = hrefs.key_segment(pkey)
  return seg ~= nil, problem
end

local function check_item_args(fname, pkey, changes)
  local ok, problem = valid_pkey(pkey)
  if not ok then
    error("campaign.workflow." .. fname .. ": bad argument #2 'pkey' (a PKey string expected"
      .. (problem and "; it " .. problem or "") .. ")", 3)
  end
  if type(changes) ~= "table" then
    error("campaign.workflow." .. fname .. ": bad argument #3 'changes' (table expected, got "
      .. type(changes) .. ")", 3)
  end
end

-- update_and_verify ---------------------------------------------------------------------------

--- update_and_verify(client, pkey, changes[, opts]) -> record, info | nil, err
-- design.md's three steps: GET the record (a 404 is returned as the client's error), PATCH the
-- whole `changes` table as given, then GET up to opts.verify_attempts times (default 1),
-- opts.verify_delay seconds apart (default 0.5), until every field of `changes` reads back as
-- sent. info = {changed = whether the first GET differed from `changes`, reads = GETs made,
-- patch = the PATCH answer {PKey, href} (nil when skipped), status = the PATCH's status (the
-- GET's when skipped), fields = the names sent, sorted}. A difference that persists: nil, err
-- with kind "verify" and err.mismatches = {field = {expected =, got =}}. A failed PATCH (e.g.
-- ACS's 500 RST-360011 for a read-only field) is returned as the client's error.
-- opts: resource (default "profileAndServices/profile"), compare(field, expected, got) -> bool,
-- verify_attempts, verify_delay, sleep(seconds), metadata (dataPolicy names for the message),
-- skip_unchanged (true: no PATCH and no second GET when every change already holds),
-- check_read_only (true: refuse read-only fields before anything is sent, kind "verify" with
-- err.read_only; the set is the documented fields, opts.read_only and opts.metadata's readOnly).
---@param client campaign.AnyClient
---@param pkey string
---@param changes table
---@param opts? campaign.workflow.UpdateOpts
---@return table|nil record
---@return campaign.workflow.UpdateInfo|campaign.Error info_or_err
function workflow.update_and_verify(client, pkey, changes, opts)
  check_client("update_and_verify", client)
  check_item_args("update_and_verify", pkey, changes)
  opts = check_opts("update_and_verify", opts)
  local path = record_path(opts, pkey)

  if opts.check_read_only then
    local refused = read_only_fields(changes, read_only_set(opts))
    if refused then return nil, read_only_error(path, refused) end
  end

  local body, res = client:get(path)
  if body == nil then return nil, res end
  local current = unwrap(body)

  local changed = diff(changes, current, opts.compare) ~= nil
  if not changed and opts.skip_unchanged then
    return current, { changed = false, reads = 1, status = res and res.status }
  end

  -- The whole change goes out as given, whatever the first read showed (design.md: "PATCH the
  -- changes"); the verification covers every field of it.
  local answer, pres = client:patch(path, changes)
  if answer == nil then return nil, pres end

  local attempts = opts.verify_attempts or 1
  local delay = opts.verify_delay or 0.5
  local sleep = opts.sleep or default_clock.sleep
  local mismatches
  for attempt = 1, attempts do
    if attempt > 1 then sleep(delay) end
    local after, gres = client:get(path)
    if after == nil then return nil, gres end
    after = unwrap(after)
    mismatches = diff(changes, after, opts.compare)
    if not mismatches then
      return after, { changed = changed, reads = attempt + 1, patch = answer, status = pres and pres.status,
                      fields = sorted_keys(changes) }
    end
  end
  return nil, verify_error(path, mismatches, attempts, data_policies(opts))
end

-- bulk_update ---------------------------------------------------------------------------------

local function item_fields(item)
  if type(item) ~= "table" then return nil, nil end
  local pkey = item.pkey
  if pkey == nil then pkey = item.PKey end
  return pkey, item.changes
end

-- A batch result is a failure when it carries an error or a non-2xx status.
local function result_error(result, method, path)
  if type(result) ~= "table" then
    return campaign.error { kind = "network", method = method, url = path,
      message = "no result for this request" }
  end
  if result.err ~= nil then return result.err end
  local status = result.status
  if type(status) ~= "number" or status < 200 or status >= 300 then
    return campaign.error { kind = "http", status = status, method = method, url = path,
      attempts = result.attempts, message = "unexpected status " .. tostring(status) }
  end
  return nil
end

-- What a failed PATCH did to the record: "failed" only when it certainly did not apply.
-- A transport failure or an interrupt after the request may have reached ACS is "unknown"
-- (err.sent == false says it never left; a missing `sent` is unknown); an interrupt before
-- sending is "not_sent". A 2xx whose body could not be read (json, too_large) was answered:
-- "unknown" too. Any answer outside 2xx, a verification mismatch, a refusal: "failed".
---@param err campaign.Error
---@return "failed"|"unknown"|"not_sent"
local function outcome_of(err)
  if type(err) ~= "table" then return "unknown" end
  local kind, sent = err.kind, err.sent
  if kind == "interrupted" then return sent == false and "not_sent" or "unknown" end
  if kind == "network" or kind == "timeout" then return sent == false and "failed" or "unknown" end
  if kind == "tls" then return sent == true and "unknown" or "failed" end
  if kind == "json" or kind == "too_large" then
    local status = err.status
    if type(status) == "number" and (status < 200 or status >= 300) then return "failed" end
    return "unknown"
  end
  return "failed"
end
workflow._outcome_of = outcome_of

-- The signal campaign.trap_signals caught (2, 15), or nil; nil where the C module has no
-- signal support (older builds, or campaign.ngx's world, where nothing traps signals).
local function signal_seen()
  local interrupted = campaign.interrupted
  if type(interrupted) ~= "function" then return nil end
  local ok, signal = pcall(interrupted)
  if ok and signal then return signal end
  return nil
end

local function is_interrupt_raise(e)
  if type(e) == "table" then return e.kind == "interrupted" end
  return type(e) == "string" and e:find("interrupted!", 1, true) ~= nil
end

-- True when client:batch takes a source function: the C client's and campaign.ngx's (looked up
-- without loading campaign.ngx). Another client (a wrapper, a fake) gets the list form.
local function takes_source(client)
  local batch = client.batch
  if batch == campaign.batch then return true end
  local ngx_client = package.loaded["campaign.ngx"]
  return type(ngx_client) == "table" and batch == ngx_client.batch
end

-- Runs `source` (-> request | false | nil) through client:batch, on_result(k, result) for the
-- k-th request handed out. A client whose batch takes only lists gets them in batches of at
-- most `window` requests, each ended by the source's first false (that form has the barrier:
-- a batch call returns when its slowest request does).
local function stream(client, source, on_result, batch_opts, window)
  if takes_source(client) then
    client:batch(source, { concurrency = batch_opts.concurrency, on_result = on_result,
      concurrency_max = batch_opts.concurrency_max, concurrency_start = batch_opts.concurrency_start })
    return
  end
  local concurrency = batch_opts.concurrency
  -- a list-only batch gets a fixed concurrency: "auto" is the C client's and campaign.ngx's
  if concurrency == "auto" then concurrency = batch_opts.concurrency_start or 8 end
  local base = 0
  while true do
    local requests, ended = {}, false
    while #requests < window do
      local r = source()
      if r == nil then ended = true break end
      if r == false then break end
      requests[#requests + 1] = r
    end
    if #requests == 0 then
      if ended then return end
      error("campaign.workflow.bulk_update: nothing to send and nothing in flight (internal error)")
    end
    local from, got = base, {}
    base = base + #requests
    local results = client:batch(requests, { concurrency = concurrency,
      on_result = function(k, result, limit)
        got[k] = true
        on_result(from + k, result, limit or concurrency)
      end })
    -- Settle what on_result did not (a client without on_result).
    for k = 1, #requests do
      if not got[k] then on_result(from + k, type(results) == "table" and results[k] or nil, concurrency) end
    end
    if ended then return end
  end
end

--- bulk_update(client, items[, opts]) -> report (with opts.journal: report | nil, err)
-- items: a list of {pkey =, changes =} (PKey is accepted for pkey), or an iterator function
-- returning one item per call and nil at the end (never materialised: an item is taken when a
-- slot is free). PATCHes stream through one client:batch(source) call with opts.concurrency
-- transfers at once (default 8): no window, the slowest item holds back only the later rows of
-- its own record. Rows of one PKey are applied in input order: a record has one row in flight,
-- a later row waits (at most opts.window rows wait, default 4 x concurrency, so memory stays
-- bounded). opts.verify queues a GET of each updated record as its PATCH settles and compares
-- the changes (opts.compare, verify_attempts, verify_delay as in
-- update_and_verify). opts.on_progress(done, total, failed, unknown) after each item (total is
-- nil for an iterator until it is exhausted; one last call then gives it);
-- opts.on_item(i, outcome, err, skipped) when item i settles ("applied", "failed", "unknown",
-- "not_sent"; not in input order; skipped: applied by an earlier run). Malformed items fail that
-- item without sending it.
-- Read-only fields are sent (ACS's 500 fails that item with the client's error), unless
-- opts.check_read_only: then that item fails without being sent (kind "verify", err.read_only).
-- report = {total, ok, failed, unknown, not_sent, errors = {[i] = err},
--   outcomes = {[i] = "failed" | "unknown" | "not_sent"}, elapsed, interrupted = nil | signal};
-- ok + failed + unknown == total (not_sent items count as failed).
-- A stop: after a signal (campaign.trap_signals; an "interrupted" result or
-- campaign.interrupted()) no new item is taken, what was taken but not sent is "not_sent",
-- and the report comes back with report.interrupted = the signal. A raise of on_progress,
-- on_item or the iterator, or a raise out of client:batch (the interpreter's own
-- "interrupted!"), stops the same way and raises campaign.error{kind = "callback" or
-- "interrupted", report = <the report so far>, cause = <the original error>}.
-- opts.journal (a file, or campaign.journal.load's state): each outcome is appended and flushed
-- as it settles; opts.resume skips what the journal records as applied. A refused journal, an
-- input that does not match it, or a failed write: nil, err (kind "journal"; err.report once the
-- run started). docs/bulk.md.
---@param client campaign.AnyClient
---@param items campaign.workflow.BulkItem[]|fun(): campaign.workflow.BulkItem|nil
---@param opts? campaign.workflow.BulkOpts
---@return campaign.BulkReport|nil report
---@return campaign.Error? err kind "journal"
function workflow.bulk_update(client, items, opts)
  check_client("bulk_update", client)
  if type(items) ~= "table" and type(items) ~= "function" then
    error("campaign.workflow.bulk_update: bad argument #2 'items' (list or iterator expected, got "
      .. type(items) .. ")", 2)
  end
  opts = check_opts("bulk_update", opts)
  local journal_opt, resume = opts.journal, opts.resume
  if journal_opt ~= nil and (type(journal_opt) ~= "string" or journal_opt == "") and
      not (type(journal_opt) == "table" and journal_opt.is_journal_state) then
    error("campaign.workflow.bulk_update: opts.journal must be a file name (or campaign.journal.load's "
      .. "state)", 2)
  end
  if resume ~= nil and type(resume) ~= "boolean" then
    error("campaign.workflow.bulk_update: opts.resume must be a boolean", 2)
  end
  if resume and journal_opt == nil then
    error("campaign.workflow.bulk_update: opts.resume needs opts.journal (the journal to resume)", 2)
  end
  local resource = opts.resource or DEFAULT_RESOURCE
  -- The journal: read (a resume checks the input against it), then opened for appending before
  -- anything is sent. Every refusal comes back as nil, err with nothing sent.
  local jstate, jwriter
  if journal_opt ~= nil then
    local err
    if type(journal_opt) == "string" then
      jstate, err = journal.load(journal_opt)
      if not jstate then return nil, err end
    else
      jstate = journal_opt
    end
    err = journal.check_start(jstate, { resume = resume, resource = resource })
    if err then return nil, err end
    if resume and type(items) == "table" then
      -- A list is checked whole first: a changed item refuses the resume before anything is sent.
      for i = 1, #items do
        local pkey, changes = item_fields(items[i])
        err = journal.check_item(jstate, i, journal.sum(pkey, changes), pkey)
        if err then return nil, err end
      end
      err = journal.check_count(jstate, #items)
      if err then return nil, err end
    end
    jwriter, err = journal.start(jstate, { resume = resume, resource = resource })
    if not jwriter then return nil, err end
  end
  local clock = opts.clock or default_clock.now
  local sleep = opts.sleep or default_clock.sleep
  local concurrency = opts.concurrency or 8
  local auto = concurrency == "auto"
  -- the look-ahead: rows that may wait for their record; "auto": 4 x the limit's bound
  local window = opts.window or (auto and (opts.concurrency_max or 64) or concurrency) * 4
  local limit = not auto and concurrency or nil   -- the concurrency now (client:batch tells)
  local verify = opts.verify and true or false
  local verify_attempts = opts.verify_attempts or 1
  local verify_delay = opts.verify_delay or 0.5
  local read_only             -- the read-only set, only when refusing locally
  if opts.check_read_only then read_only = read_only_set(opts) end
  local on_progress, on_item = opts.on_progress, opts.on_item
  local started = clock()

  local from_list = type(items) == "table"
  local known_total = from_list and #items or nil
  local report = { total = 0, ok = 0, failed = 0, unknown = 0, not_sent = 0, errors = {}, outcomes = {} }
  if jwriter then report.skipped, report.journal = 0, jstate.path end
  local meta = {}                  -- i -> {sum, pkey, line} of an item taken but not journaled yet
  local resent = {}                -- paths of this run's resent items (resume: the last row wins)
  local done = 0
  local exhausted = false
  local position = 0               -- items taken from the input so far
  -- Why the run stops early: nil, or {kind = "interrupted" | "callback", cause =, raised =}.
  -- `raised`: the stop came as a Lua error, so bulk_update raises at the end.
  local stop

  local journal_failure            -- the first journal error (a refused item, a failed write)

  local function stop_run(kind, cause, raised)
    if kind == "journal" and journal_failure == nil then journal_failure = cause end
    if stop == nil then stop = { kind = kind, cause = cause, raised = raised } end
    if kind == "interrupted" and report.interrupted == nil then
      report.interrupted = signal_seen() or true
    end
  end

  local function call_back(fn, ...)
    local ok, err = pcall(fn, ...)
    if not ok then stop_run(is_interrupt_raise(err) and "interrupted" or "callback", err, true) end
    return ok
  end

  -- on_progress's fifth argument: the limit now, the achieved rate, the counts and an ETA.
  local function progress_info()
    local elapsed = clock() - started
    local total = exhausted and report.total or known_total
    local rate = elapsed > 0 and done / elapsed or nil
    local eta
    if total and rate and rate > 0 then eta = (total - done) / rate end
    return { limit = limit, rate = rate, elapsed = elapsed, eta = eta, done = done, total = total,
      applied = report.ok, failed = report.failed, unknown = report.unknown }
  end

  -- skipped: applied in an earlier run (resume), not sent again and not journaled again.
  -- unjournaled: an item that does not match the journal is never journaled over its record.
  local function settle(i, outcome, err, skipped, unjournaled)
    local m = meta[i]
    meta[i] = nil
    if jwriter and m and not skipped and not unjournaled then
      -- Journaled before anyone is told: what a caller saw settle is in the journal.
      local ok, jerr = journal.record(jwriter, i, m[1], outcome, err, m[2], m[3])
      if not ok then stop_run("journal", jerr) end
    end
    if skipped then report.skipped = report.skipped + 1 end
    if outcome == "applied" then
      report.ok = report.ok + 1
    else
      report.errors[i], report.outcomes[i] = err, outcome
      if outcome == "unknown" then
        report.unknown = report.unknown + 1
      else
        report.failed = report.failed + 1
        if outcome == "not_sent" then report.not_sent = report.not_sent + 1 end
      end
    end
    done = done + 1
    -- A callback that raised is not called again; the other one still is.
    if on_item and not call_back(on_item, i, outcome, err, skipped or nil) then on_item = nil end
    if on_progress and not call_back(on_progress, done, exhausted and report.total or known_total,
        report.failed, report.unknown, progress_info()) then
      on_progress = nil
    end
  end

  local function not_sent_error(path)
    return campaign.error { kind = "interrupted", sent = false, method = "PATCH", url = path,
      message = "not sent: the run stopped before this item" }
  end

  local function unverified_error(path)
    return campaign.error { kind = "interrupted", sent = true, method = "GET", url = path,
      message = "the PATCH was accepted but the run stopped before it was read back" }
  end

  local function take()
    if exhausted then return nil end
    local item
    if from_list then
      if position >= known_total then
        exhausted = true
        if jwriter and not journal.finish(jwriter, position) then stop_run("journal", jwriter.failed) end
        return nil
      end
      item = items[position + 1]
    else
      local ok, got = pcall(items)
      if not ok then
        exhausted = true
        stop_run(is_interrupt_raise(got) and "interrupted" or "callback", got, true)
        return nil
      end
      item = got
      if item == nil then
        exhausted = true
        if jwriter then
          -- An iterator's length is known only now: a resume checks it against the journal.
          local err = resume and journal.check_count(jstate, position,
            nil, "the items before were sent")
          if err then
            stop_run("journal", err)
          elseif not journal.finish(jwriter, position) then
            stop_run("journal", jwriter.failed)
          end
        end
        return nil
      end
    end
    position = position + 1
    return position, item
  end

  -- The stream: client:batch calls `source` each time a slot frees; it hands out a due
  -- read-back, else the first waiting row whose record is free, else the next fresh item. No
  -- window: the slowest item holds back only the later rows of its own record.
  local deferred = {}              -- rows whose record has a row in flight, in input order
  local waiting = {}               -- path -> rows of it in `deferred`
  local busy = {}                  -- path -> true while a row of that record is unsettled
  local reads = {}                 -- slots whose read-back is due at slot.due, in queue order
  local handed = {}                -- batch index -> slot of the request handed out
  local handed_count, unsettled = 0, 0   -- requests handed out; of them, not answered yet

  local function release(slot)
    slot.state = "settled"
    busy[slot.path] = nil
  end

  local function patch_answered(slot, result)
    local err = result_error(result, "PATCH", slot.path)
    if err then
      release(slot)
      if type(err) == "table" and err.kind == "interrupted" then stop_run("interrupted", err) end
      settle(slot.index, outcome_of(err), err)
    elseif verify then
      slot.state, slot.attempt, slot.due = "patched", 1, nil
      reads[#reads + 1] = slot
    else
      release(slot)
      settle(slot.index, "applied")
    end
  end

  local function read_answered(slot, result)
    local err = result_error(result, "GET", slot.path)
    if err then
      -- The PATCH was accepted; whether the change holds could not be read: unknown.
      release(slot)
      if type(err) == "table" and err.kind == "interrupted" then stop_run("interrupted", err) end
      settle(slot.index, "unknown", err)
      return
    end
    local mismatches = diff(slot.changes, unwrap(result.body), opts.compare)
    if not mismatches then
      release(slot)
      settle(slot.index, "applied")
    elseif slot.attempt >= verify_attempts then
      release(slot)
      settle(slot.index, "failed", verify_error(slot.path, mismatches, slot.attempt, data_policies(opts)))
    else
      slot.state, slot.attempt, slot.due = "patched", slot.attempt + 1, clock() + verify_delay
      reads[#reads + 1] = slot
    end
  end

  local function on_result(k, result, now_limit)
    if now_limit ~= nil then limit = now_limit end
    local slot = handed[k]
    handed[k] = nil
    unsettled = unsettled - 1
    if slot == nil then return end
    if slot.state == "sending" then patch_answered(slot, result)
    elseif slot.state == "reading" then read_answered(slot, result) end
  end

  local function hand(slot, request)
    handed_count = handed_count + 1
    unsettled = unsettled + 1
    handed[handed_count] = slot
    return request
  end

  -- The first read-back that is due (FIFO), else nil and the earliest due time. `waited`: the
  -- caller slept until that time: the earliest is taken whatever the clock says (opts.clock and
  -- opts.sleep need not agree, e.g. a fixed clock in a test).
  local function due_read(waited)
    local now, earliest, first
    for k, slot in ipairs(reads) do
      if slot.due == nil or slot.due <= (now or clock()) then
        table.remove(reads, k)
        slot.state = "reading"
        return slot
      end
      now = now or clock()
      if earliest == nil or slot.due < earliest then earliest, first = slot.due, k end
    end
    if waited and first then
      local slot = table.remove(reads, first)
      slot.state = "reading"
      return slot
    end
    return nil, earliest
  end

  -- A fresh item: settled at once (skipped, malformed, refused, a journal mismatch), deferred
  -- behind its record's row in flight, or returned to be sent.
  local function admit(i, item)
    report.total = report.total + 1
    local pkey, changes = item_fields(item)
    local sum, mismatch
    if jwriter then
      sum = journal.sum(pkey, changes)
      meta[i] = { sum, pkey, type(item) == "table" and item.line or nil }
      if resume then
        -- An iterator is checked item by item (a list was checked whole before the run).
        mismatch = journal.check_item(jstate, i, sum, pkey, nil, "the items before it were sent")
      end
    end
    -- Checked here so that one bad line of a million fails alone instead of raising mid-run
    -- from client:batch (which validates every request it is given).
    local encodable = type(changes) == "table" and pcall(campaign.encode, changes)
    if mismatch then
      stop_run("journal", mismatch)
      settle(i, "not_sent", mismatch, nil, true)
      return nil
    elseif not valid_pkey(pkey) or not encodable then
      settle(i, "failed", campaign.error { kind = "verify", mismatches = {},
        message = "item " .. i .. " is not {pkey = <PKey>, changes = <JSON-encodable table>}"
          .. " (nothing was sent)" })
      return nil
    end
    local path = record_path(opts, pkey)
    local refused = read_only and read_only_fields(changes, read_only)
    local before = resume and journal.entry(jstate, i)
    -- A resume skips an item applied in an earlier run, unless an earlier row of its record
    -- is sent again in this one: then it goes out after it, so the last row still wins.
    if resume and i < jstate.max_applied and before ~= "applied" then resent[path] = true end
    if before == "applied" and not resent[path] then
      settle(i, "applied", nil, true)
      return nil
    elseif refused then
      settle(i, "failed", read_only_error(path, refused))
      return nil
    end
    local slot = { index = i, path = path, changes = changes }
    if busy[path] or waiting[path] then
      deferred[#deferred + 1] = slot
      waiting[path] = (waiting[path] or 0) + 1
      return nil
    end
    return slot
  end

  local function send(slot)
    busy[slot.path] = true
    slot.state = "sending"
    return hand(slot, { "PATCH", slot.path, slot.changes })
  end

  -- -> a request, false (nothing until an answer comes), or nil (nothing more, ever).
  local source
  function source()
    if stop then return nil end
    if signal_seen() then stop_run("interrupted") return nil end
    local slot, earliest = due_read()
    if slot then return hand(slot, { "GET", slot.path }) end
    -- The first waiting row of a record that is free now (deferred is in input order).
    for k, row in ipairs(deferred) do
      if not busy[row.path] then
        table.remove(deferred, k)
        waiting[row.path] = waiting[row.path] > 1 and waiting[row.path] - 1 or nil
        return send(row)
      end
    end
    -- Fresh items, while at most `window` rows wait (memory stays bounded even when every row
    -- names the same record).
    while #deferred < window and not stop do
      local i, item = take()
      if i == nil then break end
      slot = admit(i, item)
      if slot then return send(slot) end
    end
    if stop then return nil end
    if unsettled > 0 then return false end
    if earliest then
      -- Only read-backs waiting for their delay are left: wait for the first of them here.
      local wait = earliest - clock()
      if wait > 0 then sleep(wait) end
      if signal_seen() then stop_run("interrupted") return nil end
      slot = due_read(true)
      if slot then return hand(slot, { "GET", slot.path }) end
      -- campaign.ngx: another light thread took it while this one slept; look again
      return source()
    end
    return nil
  end

  -- Settles what a stop leaves: requests handed out and never answered, read-backs not done.
  local function abandon()
    for k, slot in pairs(handed) do
      handed[k] = nil
      if slot.state == "sending" then
        -- The batch raised with this item possibly in flight: its outcome is not known.
        release(slot)
        settle(slot.index, "unknown", campaign.error { kind = "interrupted", method = "PATCH",
          url = slot.path, message = "the run stopped while this PATCH may have been in flight" })
      elseif slot.state == "reading" then
        release(slot)
        settle(slot.index, "unknown", unverified_error(slot.path))
      end
    end
    for _, slot in ipairs(reads) do
      if slot.state == "patched" then
        release(slot)
        settle(slot.index, "unknown", unverified_error(slot.path))
      end
    end
    reads = {}
  end

  -- The interpreter's SIGINT hook may raise in any Lua code, this loop's too: what is known
  -- is kept as for a raise out of client:batch.
  local ran, raised = pcall(stream, client, source, on_result, { concurrency = concurrency,
    concurrency_max = opts.concurrency_max, concurrency_start = opts.concurrency_start }, window)
  if not ran then
    stop_run(is_interrupt_raise(raised) and "interrupted" or "callback", raised, true)
  end
  abandon()
  -- A stop leaves the waiting rows unsent.
  for _, slot in ipairs(deferred) do settle(slot.index, "not_sent", not_sent_error(slot.path)) end
  deferred = {}

  -- An iterator's length is known only now: tell on_progress once more, with the total.
  if not from_list and report.total > 0 and on_progress and not stop then
    if not call_back(on_progress, done, report.total, report.failed, report.unknown, progress_info()) then
      on_progress = nil
    end
  end
  report.elapsed = clock() - started
  if jwriter then journal.close(jwriter) end
  if stop and stop.raised then
    local cause = stop.cause
    local text = type(cause) == "table" and cause.message or tostring(cause)
    error(campaign.error {
      kind = stop.kind, report = report, cause = cause,
      message = "bulk_update stopped after " .. report.total .. " item(s): "
        .. (stop.kind == "interrupted" and "interrupted: " or "a callback raised: ") .. tostring(text)
        .. " (err.report has the report so far)",
    }, 0)
  end
  if journal_failure then
    journal_failure.report = report
    return nil, journal_failure
  end
  return report
end

-- More workflows, in campaign/workflow/*.lua (docs/lua-api.md "More workflows").
for name, module in pairs {
  upsert_profile = "profiles", subscribe_and_verify = "subscriptions",
  unsubscribe_and_verify = "subscriptions", send_and_track = "events",
  gdpr_request_and_fetch = "gdpr", run_workflow_and_wait = "executions", signal_and_wait = "executions",
} do
  workflow[name] = require("campaign.workflow." .. module)[name]
end

return workflow
