--- The workflow commands of the `campaign` CLI (docs/cli.md "Workflow commands"):
-- profile upsert/subscribe/unsubscribe, event send [--track], gdpr access, workflow run/signal.
-- Each one is a campaign.workflow function (or its campaign.api request without --track/--wait)
-- with the CLI's settings, FIELDS and output. cli.lua merges OPTIONS, COMMANDS and HELP into its
-- tables and calls handlers(kit) with its own helpers (get_client, print_json, ...).
local args = require "campaign.cli.args"

local workflows = {}

-- Exit codes of a workflow's own failure kinds (the client's kinds stay 1, verify is 3).
workflows.EXIT_FAILED, workflows.EXIT_TIMEOUT, workflows.EXIT_NO_MATCH = 6, 7, 8

local FAILED_KINDS = {event_failed = true, privacy_failed = true, workflow_failed = true}

--- The exit code for a workflow's `err`: 3 verify; 6 an end in a failure status (event_failed,
-- privacy_failed, workflow_failed); 7 the wait's deadline (kind timeout with err.deadline: a
-- transport timeout has none and stays 1); 8 not_found or ambiguous (nothing was changed);
-- 1 anything else (the client's kinds: http, network, auth, ...).
function workflows.exit_code(err)
  local kind = type(err) == "table" and err.kind or nil
  if kind == "verify" then return 3 end
  if FAILED_KINDS[kind] then return workflows.EXIT_FAILED end
  if kind == "timeout" and err.deadline ~= nil then return workflows.EXIT_TIMEOUT end
  if kind == "not_found" or kind == "ambiguous" then return workflows.EXIT_NO_MATCH end
  return 1
end

workflows.OPTIONS = {
  no_create = "flag", ext = "flag", track = "flag", wait = "flag", deadline = "value", poll = "value",
  command = "value", state = "list", activity = "value", source = "value", namespace = "value",
  reconciliation_value = "value", regulation = "value", label = "value", name = "value",
  output = "value",
}

local WAIT_OPTIONS = {"deadline", "poll"}

workflows.COMMANDS = {
  ["profile upsert"] = {
    usage = "campaign profile upsert EMAIL FIELDS... [--json ...] [--no-create] [--ext]\n" ..
      "       campaign profile upsert --filter NAME [--param k=v ...] FIELDS... [--no-create] [--ext]",
    summary = "update the profile of this email (or filter), or create it; verified (several: exit 8)",
    options = {"json", "filter", "param", "no_create", "ext"},
    example = "campaign profile upsert jane.doe@example.com firstName=Jane lastName=Doe",
  },
  ["profile subscribe"] = {
    usage = "campaign profile subscribe PKEY SERVICE",
    summary = "subscribe a profile to a service (name or @PKey) and read it back",
    options = {},
    example = "campaign profile subscribe @PKEY SVC2",
  },
  ["profile unsubscribe"] = {
    usage = "campaign profile unsubscribe PKEY SERVICE",
    summary = "unsubscribe a profile from a service (name or @PKey) and read it back",
    options = {},
    example = "campaign profile unsubscribe @PKEY SVC2",
  },
  ["event send"] = {
    usage = "campaign event send EVENT_ID FIELDS... [--json ...] [--track [--deadline S] [--poll S]]",
    summary = "send a transactional event; --track follows it (failed: exit 6, deadline: 7)",
    options = {"json", "track", "deadline", "poll"},
    example = "campaign event send EVTcartAbandonment --json @event.json --track --deadline 60",
  },
  ["gdpr access"] = {
    usage = "campaign gdpr access --namespace NS --reconciliation-value V [--name NAME]\n" ..
      "                          [--regulation gdpr|ccpa] [--label L] [--output FILE]\n" ..
      "                          [--deadline S] [--poll S]",
    summary = "a privacy access request, waited for, and its data file",
    options = {"namespace", "reconciliation_value", "name", "regulation", "label", "output", "deadline",
      "poll"},
    example = "campaign gdpr access --namespace AMCDS2 --reconciliation-value amy.dakota@mail.com " ..
      "--output amy.xml",
  },
  ["workflow run"] = {
    usage = "campaign workflow run ID [--command start|pause|resume|stop] [--wait [--state S ...]\n" ..
      "                            [--deadline S] [--poll S]]",
    summary = "send a workflow command (default start); --wait waits for its state",
    options = {"command", "wait", "state", "deadline", "poll"},
    example = "campaign workflow run WKF2 --wait --deadline 60",
  },
  ["workflow signal"] = {
    usage = "campaign workflow signal ID [FIELDS...] [--json ...] [--activity NAME] [--source S]\n" ..
      "                               [--wait [--state S ...] [--deadline S] [--poll S]]",
    summary = "trigger a signal activity with FIELDS as parameters; --wait waits for its end",
    options = {"json", "activity", "source", "wait", "state", "deadline", "poll"},
    example = "campaign workflow signal WKF2 audience=vip --wait",
  },
}
workflows.ORDER = {"profile upsert", "profile subscribe", "profile unsubscribe", "event send", "gdpr access",
  "workflow run", "workflow signal"}

workflows.HELP = {
  no_create = "  --no-create           do not create a profile when none matches (exit 8)",
  ext = "  --ext                 use profileAndServicesExt (custom fields and filters)",
  track = "  --track               poll the event until processed or a failure status",
  wait = "  --wait                poll the workflow until the state is reached",
  deadline = "  --deadline S          give up waiting after S seconds (default 300; exit 7)",
  poll = "  --poll S              first poll interval, then x1.5 each time up to 30 s (default 1)",
  command = "  --command C           start (default), pause, resume or stop",
  state = "  --state S             the state to wait for (repeatable; default: the command's own)",
  activity = "  --activity NAME       the signal activity (name or PKey; needed when there are several)",
  source = "  --source S            the trigger's source (default API)",
  namespace = "  --namespace NS        the identity namespace (namespaceName)",
  reconciliation_value = "  --reconciliation-value V  the identity value (an email for the email namespace)",
  name = "  --name NAME           the request name (default: a new campaign-cli-... name)",
  regulation = "  --regulation R        gdpr (default), ccpa, ...",
  label = "  --label L             the request label",
  output = "  --output FILE         write the data file to FILE (stdout's JSON then has no data)",
}

workflows.HELP_TEXT = [[
Exit codes: 0 done, 1 API or network error, 2 usage error, 3 a change that does not read back,
6 ended in a failure status (event, privacy request, workflow), 7 still not done at --deadline,
8 nothing or several matched (no profile with --no-create, several profiles, an unknown or
ambiguous service or signal activity): nothing was changed.
]]

function workflows.handlers(kit)
  local usage_error, get_client, print_json = kit.usage_error, kit.get_client, kit.print_json
  local handlers = {}

  -- Prints err (one line on stderr; a wait's status history and last record as JSON on stdout)
  -- and returns its exit code.
  local function failure(ctx, err, record_name)
    local code = kit.api_failure(ctx, err)
    if code ~= 1 then return code end   -- interrupted: 128 + the signal
    code = workflows.exit_code(err)
    if type(err) == "table" and (code ~= 1 or err.status_history) then
      print_json(ctx, {
        error = {kind = err.kind, message = tostring(err.message), last_status = err.last_status,
          elapsed = err.elapsed, polls = err.polls, deadline = err.deadline, pkeys = err.pkeys,
          more = err.more,
          activities = err.activities, mismatches = err.mismatches},
        history = err.status_history, [record_name or "record"] = err.record,
      })
    end
    return code
  end

  local function words_from(ctx, first)
    local words = {}
    for i = first, #ctx.positional do words[#words + 1] = ctx.positional[i] end
    return words
  end

  -- --deadline/--poll into workflow opts; only with --track/--wait where the command has one.
  local function wait_opts(ctx, needs)
    local options, opts = ctx.options, {}
    for _, name in ipairs(WAIT_OPTIONS) do
      if options[name] ~= nil then
        if needs and not options[needs] then
          usage_error("--" .. name .. " needs --" .. needs, ctx.command)
        end
        local value, err = args.non_negative_number(options[name], name)
        if not value then usage_error(err, ctx.command) end
        if name == "poll" and value <= 0 then
          usage_error("option '--poll' needs a number > 0", ctx.command)
        end
        opts[name] = value
      end
    end
    return opts
  end

  handlers["profile upsert"] = function(ctx)
    local options = ctx.options
    local match, first
    if options.filter then
      local params, err = args.pairs(options.param, "--param")
      if not params then usage_error(err, ctx.command) end
      for _, filter in ipairs(options.filter) do
        if not filter:match("^[%w_]+$") then
          usage_error("--filter '" .. filter .. "' is not a filter name", ctx.command)
        end
      end
      match = {filter = options.filter}
      for k, v in pairs(params) do match[k] = v end
      first = 1
    else
      if options.param then usage_error("--param needs --filter", ctx.command) end
      local email = ctx.positional[1]
      if email == nil or email:find("=", 1, true) then
        usage_error("missing EMAIL (or --filter NAME) before FIELDS", ctx.command)
      end
      match, first = email, 2
    end
    local fields = kit.request_body(ctx, words_from(ctx, first), true)
    if type(fields) ~= "table" or fields[1] ~= nil then
      usage_error("an upsert needs a JSON object", ctx.command)
    end
    local client = get_client(ctx)
    local record, how, info = require("campaign.workflow").upsert_profile(client, match, fields,
      {create = not options.no_create, ext = options.ext or nil})
    if record == nil then return failure(ctx, how) end
    print_json(ctx, {outcome = how, profile = record,
      changed = type(info) == "table" and info.changed or nil})
    return 0
  end

  local function subscription_command(ctx, fname)
    kit.need_positional(ctx, 2, "PKEY and SERVICE")
    kit.no_extra_positional(ctx, 2)
    local client = get_client(ctx)
    local workflow = require "campaign.workflow"
    local a, b, c = workflow[fname](client, ctx.positional[1], ctx.positional[2])
    if a == nil then return failure(ctx, b) end
    if fname == "subscribe_and_verify" then
      print_json(ctx, {outcome = b, subscription = a})
    else
      print_json(ctx, {outcome = b, subscription = c})
    end
    return 0
  end

  handlers["profile subscribe"] = function(ctx) return subscription_command(ctx, "subscribe_and_verify") end
  handlers["profile unsubscribe"] = function(ctx)
    return subscription_command(ctx, "unsubscribe_and_verify")
  end

  handlers["event send"] = function(ctx)
    kit.need_positional(ctx, 1, "EVENT_ID")
    local event_id = ctx.positional[1]
    local body = kit.request_body(ctx, words_from(ctx, 2), true)
    local opts = wait_opts(ctx, "track")
    local client = get_client(ctx)
    if not ctx.options.track then
      local answer, err = require("campaign.api").send_transactional_event(client, event_id, body)
      if answer == nil then return failure(ctx, err) end
      print_json(ctx, answer)
      return 0
    end
    local event, history = require("campaign.workflow").send_and_track(client, event_id, body, opts)
    if event == nil then return failure(ctx, history, "event") end
    print_json(ctx, {event = event, history = history})
    return 0
  end

  handlers["gdpr access"] = function(ctx)
    kit.no_extra_positional(ctx, 0)
    local options = ctx.options
    for _, name in ipairs({"namespace", "reconciliation_value"}) do
      if options[name] == nil or options[name] == "" then
        usage_error("missing --" .. name:gsub("_", "-"), ctx.command)
      end
    end
    local opts = wait_opts(ctx)
    local output_file
    if options.output then
      local err
      output_file, err = io.open(options.output, "wb")
      if not output_file then usage_error("--output: " .. tostring(err), ctx.command) end
    end
    local request = {
      name = options.name or ("campaign-cli-" .. os.date("!%Y%m%d%H%M%S") .. "-" .. math.random(1000, 9999)),
      namespaceName = options.namespace, reconciliationValue = options.reconciliation_value,
      regulation = options.regulation or "gdpr", label = options.label,
    }
    local client = get_client(ctx)
    local data, record, history = require("campaign.workflow").gdpr_request_and_fetch(client, request, opts)
    if data == nil then
      if output_file then output_file:close(); os.remove(options.output) end
      return failure(ctx, record, "request")
    end
    local result = {request = record, history = history}
    if output_file then
      -- The file as ACS gave it (the user asked for it: not redacted, like --raw).
      output_file:write(data)
      output_file:close()
      result.output, result.bytes = options.output, #data
    else
      result.data = data
    end
    print_json(ctx, result)
    return 0
  end

  local function wait_state_opts(ctx)
    local opts = wait_opts(ctx, "wait")
    if ctx.options.state then
      if not ctx.options.wait then usage_error("--state needs --wait", ctx.command) end
      opts.state = ctx.options.state
    end
    return opts
  end

  handlers["workflow run"] = function(ctx)
    kit.need_positional(ctx, 1, "ID")
    kit.no_extra_positional(ctx, 1)
    local command = (ctx.options.command or "start"):lower()
    if not ({start = true, pause = true, resume = true, stop = true})[command] then
      usage_error("--command must be start, pause, resume or stop", ctx.command)
    end
    local opts = wait_state_opts(ctx)
    local client = get_client(ctx)
    local id = ctx.positional[1]
    if not ctx.options.wait then
      local answer, err = require("campaign.api").control_workflow(client, id, command)
      if answer == nil then return failure(ctx, err) end
      print_json(ctx, answer)
      return 0
    end
    opts.command = command
    local wf, history = require("campaign.workflow").run_workflow_and_wait(client, id, opts)
    if wf == nil then return failure(ctx, history, "workflow") end
    print_json(ctx, {workflow = wf, history = history})
    return 0
  end

  -- The signal activity to trigger without --wait: --activity (name or PKey), else the only
  -- one with a trigger (signal_and_wait's rule) -> name, href | nil, err.
  local function pick_activity(campaign, wf, wanted, id)
    local map = type(wf) == "table" and type(wf.activities) == "table" and
      type(wf.activities.activity) == "table" and wf.activities.activity or {}
    local available = {}
    for name, a in pairs(map) do
      if type(a) == "table" and type(a.trigger) == "table" and type(a.trigger.href) == "string" then
        available[#available + 1] = tostring(name)
      end
    end
    table.sort(available)
    for _, name in ipairs(available) do
      local named = wanted ~= nil and (name == wanted or map[name].PKey == wanted)
      if named or (wanted == nil and #available == 1) then
        return name, map[name].trigger.href
      end
    end
    local list = #available > 0 and table.concat(available, ", ") or "none"
    if wanted or #available == 0 then
      return nil, campaign.error{kind = "not_found", activities = available, message = "workflow " .. id ..
        " has no signal activity" .. (wanted and " '" .. wanted .. "'" or " to trigger") ..
        " (it has: " .. list .. ")"}
    end
    return nil, campaign.error{kind = "ambiguous", activities = available, message = "workflow " .. id ..
      " has " .. #available .. " signal activities (" .. list .. "): name one with --activity"}
  end

  handlers["workflow signal"] = function(ctx)
    kit.need_positional(ctx, 1, "ID")
    local id = ctx.positional[1]
    local words = words_from(ctx, 2)
    local parameters
    if #words > 0 or ctx.options.json then
      parameters = kit.request_body(ctx, words, false)
      if type(parameters) ~= "table" or parameters[1] ~= nil then
        usage_error("the signal's parameters must be a JSON object", ctx.command)
      end
    end
    local opts = wait_state_opts(ctx)
    local client = get_client(ctx)
    local signal = {activity = ctx.options.activity, source = ctx.options.source, parameters = parameters}
    if ctx.options.wait then
      local wf, history = require("campaign.workflow").signal_and_wait(client, id, signal, opts)
      if wf == nil then return failure(ctx, history, "workflow") end
      print_json(ctx, {workflow = wf, history = history})
      return 0
    end
    local api = require "campaign.api"
    local wf, err = api.get_workflow(client, id)
    if wf == nil then return failure(ctx, err) end
    local name, href = pick_activity(kit.load_campaign(), wf, signal.activity, id)
    if name == nil then return failure(ctx, href) end
    local answer, terr = api.trigger_signal_activity(client, href,
      {parameters = parameters, source = signal.source})
    if answer == nil then return failure(ctx, terr) end
    print_json(ctx, {activity = name, answer = answer})
    return 0
  end

  return handlers
end

return workflows
