-- The workflow commands (profile upsert/subscribe/unsubscribe, event send --track, gdpr access,
-- workflow run/signal) in process through cli.main against the shared emulator: each one's
-- happy path, its failures and their exit codes (docs/cli.md "Exit codes"), one with --emulator.
local emulator = require "emulator"
local cjson = require "cjson"
local cli = require "campaign.cli"

local emu = emulator.shared()

local function values()
  return {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
end

-- cli.main(argv) -> {code =, out =, err =, json = stdout decoded (when it is JSON)}.
local function campaign(argv, env_values)
  local settings = env_values or values()
  local out, err = {}, {}
  local words = {"--compact"}
  for _, word in ipairs(argv) do words[#words + 1] = word end
  local code = cli.main(words, {
    root = ".",
    getenv = function(name) return settings[name] end,
    isatty = function() return false end,
    stdin = {read = function() return nil end},
    stdout = {write = function(_, s) out[#out + 1] = s end, flush = function() end},
    stderr = {write = function(_, s) err[#err + 1] = s end, flush = function() end},
  })
  local result = {code = code, out = table.concat(out), err = table.concat(err)}
  local ok, decoded = pcall(cjson.decode, result.out)
  if ok then result.json = decoded end
  for _, secret in ipairs({emu.client_secret, emu.api_key}) do
    assert(not result.out:find(secret, 1, true) and not result.err:find(secret, 1, true),
      "a secret was printed")
  end
  return result
end

local function expect(code, result)
  assert(result.code == code, ("exit %s, expected %d\nstdout: %s\nstderr: %s"):format(
    tostring(result.code), code, result.out, result.err))
  return result
end

local function statuses(history)
  local out = {}
  for i, h in ipairs(history) do out[i] = h.status end
  return out
end

local function amy_pkey()
  local found = expect(0, campaign({"profile", "find", "--email", "amy.dakota@mail.com"})).json
  return found[1].PKey
end

describe("workflow commands", function()
  before_each(function()
    emu:fresh()
    emu:config{event_pending = 0.03, event_processing = 0.03, privacy_new = 0.03, privacy_processing = 0.03,
      workflow_delay = 0.03}
  end)
  teardown(function() emu:fresh() end)

  it("answer --help with usage, options, the exit codes and an example", function()
    for _, words in ipairs({{"profile", "upsert"}, {"profile", "subscribe"}, {"profile", "unsubscribe"},
      {"event", "send"}, {"gdpr", "access"}, {"workflow", "run"}, {"workflow", "signal"}, {"run"},
      {"repl"}}) do
      local argv = {words[1], words[2]}
      argv[#argv + 1] = "--help"
      local result = expect(0, campaign(argv, {}))
      assert.matches("Usage: campaign ", result.out, 1, true)
      assert.matches("Example:", result.out, 1, true)
    end
    local top = expect(0, campaign({"--help"}, {})).out
    for _, name in ipairs({"profile upsert", "event send", "gdpr access", "workflow signal", "run",
      "repl"}) do
      assert.matches("\n  " .. name .. " ", top, 1, true)
    end
    local missing = expect(2, campaign({"event"}, {}))
    assert.matches("missing an event subcommand: send", missing.err, 1, true)
    assert.matches("Usage: campaign workflow run|signal", expect(0, campaign({"workflow", "--help"}, {})).out,
      1, true)
  end)

  describe("profile upsert", function()
    it("creates the profile when none matches, updates it the next time (verified both times)", function()
      local created = expect(0, campaign({"profile", "upsert", "jane.doe@example.com", "firstName=Jane",
        "--json", '{"lastName":"Doe"}'}))
      assert.equal("created", created.json.outcome)
      assert.equal("Jane", created.json.profile.firstName)
      assert.equal("jane.doe@example.com", created.json.profile.email)
      local updated = expect(0, campaign({"profile", "upsert", "jane.doe@example.com", "firstName=Janet"}))
      assert.equal("updated", updated.json.outcome)
      assert.equal(created.json.profile.PKey, updated.json.profile.PKey)
      assert.equal("Janet", updated.json.profile.firstName)
    end)

    it("matches with --filter and --param; several matches exit 8 with every PKey, none with --no-create 8",
      function()
        local result = expect(8, campaign({"profile", "upsert", "--filter", "byText", "--param", "text=Hill",
          "--param", "filterType=lastName", "firstName=X"}))
        assert.equal("ambiguous", result.json.error.kind)
        assert.is_true(#result.json.error.pkeys > 1)
        assert.matches("^campaign: ambiguous: %d profiles match filter byText", result.err)
        local before = #emu:profiles()
        result = expect(8, campaign({"profile", "upsert", "nobody@example.com", "firstName=X",
          "--no-create"}))
        assert.equal("not_found", result.json.error.kind)
        assert.equal(before, #emu:profiles())
        expect(2, campaign({"profile", "upsert", "firstName=X"}))
        expect(2, campaign({"profile", "upsert", "--param", "text=x", "a@b.c", "firstName=X"}))
      end)

    it("names the mismatch of a change that does not read back (exit 3)", function()
      local pkey = amy_pkey()
      emu:faults{{method = "PATCH", status = 200, body = '{"PKey":"' .. pkey .. '","href":"x"}'}}
      local result = expect(3, campaign({"profile", "upsert", "amy.dakota@mail.com", "phone=0101010101"}))
      assert.equal("verify", result.json.error.kind)
      assert.is_table(result.json.error.mismatches.phone)
    end)
  end)

  describe("profile subscribe / unsubscribe", function()
    it("subscribe, then already subscribed; unsubscribe, then not subscribed", function()
      local pkey = amy_pkey()
      local result = expect(0, campaign({"profile", "subscribe", pkey, "SVC2"}))
      assert.equal("subscribed", result.json.outcome)
      assert.matches("SVC2", result.json.subscription.service.title, 1, true)
      local again = expect(0, campaign({"profile", "subscribe", pkey, "SVC2"}))
      assert.equal("already_subscribed", again.json.outcome)
      result = expect(0, campaign({"profile", "unsubscribe", pkey, "SVC2"}))
      assert.equal("unsubscribed", result.json.outcome)
      assert.is_table(result.json.subscription)
      again = expect(0, campaign({"profile", "unsubscribe", pkey, "SVC2"}))
      assert.same({outcome = "not_subscribed"}, again.json)
    end)

    it("an unknown service exits 8, a missing SERVICE 2, an unknown profile ACS's 404 (1)", function()
      local pkey = amy_pkey()
      local result = expect(8, campaign({"profile", "subscribe", pkey, "No such service"}))
      assert.equal("campaign: not_found: no service is named 'No such service'\n", result.err)
      expect(2, campaign({"profile", "subscribe", pkey}))
      expect(1, campaign({"profile", "subscribe", "@" .. ("NoSuchProfile0"):rep(8), "SVC2"}))
    end)
  end)

  describe("event send", function()
    it("sends without --track (ACS's answer) and follows it to processed with --track", function()
      local sent = expect(0, campaign({"event", "send", "EVTcartAbandonment", "email=jack@mail.com",
        'ctx:={"firstName":"Jack"}'}))
      assert.equal("pending", sent.json.status)
      local tracked = expect(0, campaign({"event", "send", "EVTcartAbandonment", "email=jack@mail.com",
        "--track", "--poll", "0.02", "--deadline", "5"}))
      assert.equal("processed", tracked.json.event.status)
      assert.same({"pending", "processing", "processed"}, statuses(tracked.json.history))
    end)

    it("a failure status exits 6, a stall exits 7 at --deadline, both with the history on stdout", function()
      emu:config{event_outcome = "deliveryFailed"}
      local failed = expect(6, campaign({"event", "send", "EVTcartAbandonment", "email=jack@mail.com",
        "--track", "--poll", "0.02"}))
      assert.equal("event_failed", failed.json.error.kind)
      assert.equal("deliveryFailed", failed.json.error.last_status)
      assert.same({"pending", "processing", "deliveryFailed"}, statuses(failed.json.history))
      assert.equal("deliveryFailed", failed.json.event.status)
      assert.matches("ended in status 'deliveryFailed'", failed.err, 1, true)
      emu:config{event_outcome = "stall"}
      local late = expect(7, campaign({"event", "send", "EVTcartAbandonment", "email=jack@mail.com",
        "--track", "--poll", "0.02", "--deadline", "0.15"}))
      assert.equal("timeout", late.json.error.kind)
      assert.equal(0.15, late.json.error.deadline)
      assert.matches("still 'pending' at the deadline", late.err, 1, true)
    end)

    it("--deadline without --track and a bad --poll are usage errors (exit 2), nothing sent", function()
      emu:clear_requests()
      expect(2, campaign({"event", "send", "EVTcartAbandonment", "email=a@b.c", "--deadline", "5"}))
      expect(2, campaign({"event", "send", "EVTcartAbandonment", "email=a@b.c", "--track", "--poll", "0"}))
      expect(2, campaign({"event", "send", "EVTcartAbandonment"}))
      assert.equal(0, #emu:requests())
    end)
  end)

  describe("gdpr access", function()
    it("creates the request, waits until complete and writes the data file to --output", function()
      local path = os.tmpname()
      local result = expect(0, campaign({"gdpr", "access", "--namespace", "AMCDS2", "--reconciliation-value",
        "amy.dakota@mail.com", "--name", "PT-cli", "--poll", "0.02", "--output", path}))
      assert.equal("complete", result.json.request.status)
      assert.equal("PT-cli", result.json.request.name)
      assert.same({"new", "processing", "complete"}, statuses(result.json.history))
      local file = assert(io.open(path, "rb"))
      local data = file:read("a")
      file:close()
      os.remove(path)
      assert.equal(#data, result.json.bytes)
      assert.matches('email="amy.dakota@mail.com"', data, 1, true)
      -- Without --output the data is in the JSON.
      result = expect(0, campaign({"gdpr", "access", "--namespace", "AMCDS2", "--reconciliation-value",
        "amy.dakota@mail.com", "--poll", "0.02"}))
      assert.matches("^<%?xml", result.json.data)
      assert.matches("^campaign%-cli%-", result.json.request.name)
    end)

    it("an error status exits 6; a missing --namespace is a usage error", function()
      emu:config{privacy_outcome = "errorDataNotFound"}
      local path = os.tmpname()
      local result = expect(6, campaign({"gdpr", "access", "--namespace", "AMCDS2", "--reconciliation-value",
        "amy.dakota@mail.com", "--poll", "0.02", "--output", path}))
      assert.equal("privacy_failed", result.json.error.kind)
      assert.equal("errorDataNotFound", result.json.request.status)
      assert.is_nil(io.open(path))       -- no data: the output file is removed
      expect(2, campaign({"gdpr", "access", "--reconciliation-value", "amy.dakota@mail.com"}))
    end)
  end)

  describe("workflow run / signal", function()
    it("run --wait starts WKF2 and waits for started; signal --wait runs it to its end", function()
      local result = expect(0, campaign({"workflow", "run", "WKF2", "--wait", "--poll", "0.02"}))
      assert.equal("started", result.json.workflow.state)
      assert.same({"stopped", "started"}, statuses(result.json.history))
      result = expect(0, campaign({"workflow", "signal", "WKF2", "audience=vip", "--wait", "--poll", "0.02"}))
      assert.equal("stopped", result.json.workflow.state)
    end)

    it("without --wait sends the command or the trigger and prints ACS's answer", function()
      expect(0, campaign({"workflow", "run", "WKF2", "--command", "START"}))
      require("campaign").sleep(0.1)   -- after workflow_delay: the command is applied asynchronously
      local result = expect(0, campaign({"workflow", "signal", "WKF2", "--activity", "signal2", "--source",
        "Spec"}))
      assert.equal("signal2", result.json.activity)
      local requests = emu:requests()
      assert.matches('"source":"Spec"', requests[#requests].body, 1, true)
    end)

    it("a workflow in error exits 6, a refused command 1, an unknown activity 8, --state without --wait 2",
      function()
        emu:config{workflow_outcome = "error"}
        local result = expect(6, campaign({"workflow", "run", "WKF2", "--wait", "--poll", "0.02"}))
        assert.equal("workflow_failed", result.json.error.kind)
        assert.equal("error", result.json.workflow.state)
        emu:fresh()
        expect(1, campaign({"workflow", "run", "WKF1", "--wait", "--poll", "0.02"}))
        result = expect(8, campaign({"workflow", "signal", "WKF1", "--activity", "nope"}))
        assert.same({"signal1"}, result.json.error.activities)
        expect(2, campaign({"workflow", "run", "WKF2", "--state", "paused"}))
        expect(2, campaign({"workflow", "run", "WKF2", "--command", "jump"}))
      end)

    it("a wait that never ends exits 7 at --deadline", function()
      emu:config{workflow_outcome = "stall"}
      local result = expect(7, campaign({"workflow", "run", "WKF2", "--wait", "--poll", "0.02", "--deadline",
        "0.15"}))
      assert.equal("stopped", result.json.error.last_status)
    end)
  end)

  it("takes the running emulator's settings with --emulator", function()
    local result = expect(0, campaign({"--emulator", "--emulator-prefix", emu.prefix, "profile", "upsert",
      "amy.dakota@mail.com", "phone=3301020304"}, {}))
    assert.equal("updated", result.json.outcome)
  end)
end)
