-- The CLI as a user runs it: bin/campaign as a subprocess against the shared emulator.
-- Every command, FIELDS typing, exit codes, CSV/NDJSON bulk input, progress off a terminal,
-- the bulk report against the emulator's data, and no secret in any output.
local emulator = require "emulator"
local cjson = require "cjson"
local cli_process = require "cli_process"

local emu = emulator.shared()
-- a well-formed PKey no record has: ACS answers 404 (a malformed one would be a 500)
local MISSING = "@" .. ("NoSuchProfile0"):rep(8)

-- Every stdout and stderr of this file, scanned for secrets by the last spec.
local outputs = {}

local sh = cli_process.quote
local files = require "files"
local read_file, write_file = files.read, files.write

local function ims_env() return cli_process.ims_env(emu) end

--- Runs bin/campaign with `argv` in a clean environment (`opts.env`, default ims_env()), with
-- `opts.stdin` as standard input. Returns {code =, out =, err =}.
local function campaign(argv, opts)
  opts = opts or {}
  local result = cli_process.exec(opts.env or ims_env(), argv, opts.stdin)
  outputs[#outputs + 1] = result.out
  outputs[#outputs + 1] = result.err
  return result
end

local function json_out(result)
  local ok, value = pcall(cjson.decode, result.out)
  assert(ok, "stdout is not JSON: " .. tostring(result.out) .. "\nstderr: " .. tostring(result.err))
  return value
end

local function expect(code, result)
  assert(result.code == code, ("exit %s, expected %d\nstdout: %s\nstderr: %s"):format(
    tostring(result.code), code, tostring(result.out), tostring(result.err)))
  return result
end

local function last_request(method)
  local requests = emu:requests()
  for i = #requests, 1, -1 do
    if requests[i].method == method and not requests[i].uri:find("/ims/", 1, true) then return requests[i] end
  end
end

local function amy()
  local found = json_out(expect(0, campaign({"profile", "find", "--email", "amy.dakota@mail.com"})))
  assert.equal(1, #found)
  return found[1]
end

local function profile_of(pkey)
  return json_out(expect(0, campaign({"profile", "get", pkey})))
end

describe("campaign CLI", function()
  before_each(function()
    emu:clear_faults()
    emu:reset()
  end)

  describe("help", function()
    local commands = {
      {"get"}, {"patch"}, {"post"}, {"delete"}, {"profile", "get"}, {"profile", "update"},
      {"profile", "find"}, {"profile", "list"}, {"bulk-update"}, {"token"}, {"emulator"},
    }
    for _, command in ipairs(commands) do
      it("answers --help for '" .. table.concat(command, " ") .. "' with its usage, exit 0", function()
        local argv = {table.unpack(command)}
        argv[#argv + 1] = "--help"
        local result = expect(0, campaign(argv, {env = {}}))
        assert.matches("Usage: campaign " .. table.concat(command, " "):gsub("%-", "%%-"), result.out)
        assert.matches("Example:", result.out)
      end)
    end

    it("prints the version with --version", function()
      local result = expect(0, campaign({"--version"}, {env = {}}))
      assert.matches("^campaign %(lua%-campaign%) %d+%.%d+%.%d+\n$", result.out)
    end)

    it("lists every command for --help and for no command (exit 2 on stderr)", function()
      local result = expect(0, campaign({"--help"}, {env = {}}))
      for _, name in ipairs({"get", "patch", "post", "delete", "profile list", "bulk%-update",
        "token", "emulator"}) do
        assert.matches(name, result.out)
      end
      local bare = expect(2, campaign({}, {env = {}}))
      assert.equal("", bare.out)
      assert.matches("Usage: campaign COMMAND", bare.err)
    end)
  end)

  describe("usage errors (exit 2)", function()
    it("names every missing setting", function()
      local result = expect(2, campaign({"get", "profileAndServices/profile"}, {env = {}}))
      assert.equal("", result.out)
      assert.matches("tenant id %(%-%-org or CAMPAIGN_ORG%)", result.err)
      assert.matches("API key %(%-%-api%-key or CAMPAIGN_API_KEY%)", result.err)
      assert.matches("CAMPAIGN_CLIENT_SECRET", result.err)
    end)

    it("refuses unknown commands and options, and options of another command", function()
      assert.matches("unknown command 'fetch'", expect(2, campaign({"fetch"})).err)
      assert.matches("unknown option '%-%-nope'", expect(2, campaign({"get", "x", "--nope"})).err)
      local result = expect(2, campaign({"get", "x", "--verify"}))
      assert.matches("'%-%-verify' does not apply to 'get'", result.err)
      assert.matches("Try 'campaign get %-%-help'", result.err)
    end)

    it("refuses bad FIELDS and invalid JSON before sending anything", function()
      emu:clear_requests()
      local pkey = "@whatever"
      assert.matches("not key=value", expect(2, campaign({"patch",
        "profileAndServices/profile/" .. pkey, "phone"})).err)
      assert.matches("invalid JSON", expect(2, campaign({"patch", "p/" .. pkey, "age:={"})).err)
      assert.matches("%-%-json: invalid JSON", expect(2, campaign({"post", "p", "--json", "{nope"})).err)
      assert.matches("nothing to send", expect(2, campaign({"patch", "p/" .. pkey})).err)
      assert.is_nil(last_request("PATCH"))
      assert.is_nil(last_request("POST"))
    end)
  end)

  describe("generic requests", function()
    it("get prints the listing as compact JSON off a terminal, with --query", function()
      local result = expect(0, campaign({"get", "profileAndServices/profile", "--query", "_lineCount=3",
        "--query", "_order=email desc"}))
      assert.equal("\n", result.out:sub(-1))
      assert.is_nil(result.out:sub(1, -2):find("\n", 1, true))
      local listing = json_out(result)
      assert.equal(3, #listing.content)
      assert.is_true(listing.content[1].email > listing.content[2].email)
      assert.matches("_order=email%%20desc", last_request("GET").uri)
    end)

    it("--pretty indents with sorted keys, --raw prints the body as received", function()
      local pkey = amy().PKey
      local pretty = expect(0, campaign({"get", "profileAndServices/profile/" .. pkey, "--pretty"})).out
      assert.matches('^{\n  "', pretty)
      local keys = {}
      for key in pretty:gmatch('\n  "([^"]+)":') do keys[#keys + 1] = key end
      local sorted = {table.unpack(keys)}
      table.sort(sorted)
      assert.same(sorted, keys)
      local raw = expect(0, campaign({"get", "profileAndServices/profile/" .. pkey, "--raw"})).out
      assert.equal("amy.dakota@mail.com", cjson.decode(raw).email)
    end)

    it("patch sends key=value as strings and key:=json as JSON values", function()
      local pkey = amy().PKey
      local answer = json_out(expect(0, campaign({"patch", "profileAndServices/profile/" .. pkey,
        "phone=0102030405", "mobilePhone=+33 6 00", "blackList:=true", "firstName=Amélie"})))
      assert.equal(pkey, answer.PKey)
      assert.matches("/profileAndServices/profile/" .. pkey:gsub("%-", "%%-") .. "$", answer.href)
      local sent = cjson.decode(last_request("PATCH").body)
      assert.same({phone = "0102030405", mobilePhone = "+33 6 00", blackList = true,
        firstName = "Amélie"}, sent)
      local profile = profile_of(pkey)
      assert.equal("0102030405", profile.phone)
      assert.equal(true, profile.blackList)
      assert.equal("Amélie", profile.firstName)
    end)

    it("post creates from --json merged with FIELDS, delete removes", function()
      local created = json_out(expect(0, campaign({"post", "profileAndServices/profile",
        "--json", '{"email":"cli.test@mail.com","lastName":"Old"}', "lastName=New", "firstName=Cli"})))
      assert.equal("cli.test@mail.com", created.email)
      assert.equal("New", created.lastName)
      assert.matches("^@", created.PKey)
      expect(0, campaign({"delete", "profileAndServices/profile/" .. created.PKey}))
      local gone = expect(1, campaign({"profile", "get", created.PKey}))
      assert.matches("404", gone.err)
    end)

    it("--json @- reads the body from standard input", function()
      local pkey = amy().PKey
      expect(0, campaign({"patch", "profileAndServices/profile/" .. pkey, "--json", "@-"},
        {stdin = '{"phone":"0999"}'}))
      assert.equal("0999", profile_of(pkey).phone)
    end)
  end)

  describe("API errors (exit 1)", function()
    it("prints one line on stderr for a 404", function()
      local result = expect(1, campaign({"profile", "get", MISSING}))
      assert.equal("", result.out)
      assert.matches("^campaign: GET [^\n]*404[^\n]*\n$", result.err)
    end)

    it("prints the ACS message of a 500 (read-only field) on one line", function()
      local pkey = amy().PKey
      local result = expect(1, campaign({"patch", "profileAndServices/profile/" .. pkey, "age:=3"}))
      assert.matches("^campaign: PATCH [^\n]*500[^\n]*\n$", result.err)
    end)

    it("reports a connection failure", function()
      local env = ims_env()
      env.CAMPAIGN_BASE_URL = "http://127.0.0.1:9"
      env.CAMPAIGN_CLIENT_ID, env.CAMPAIGN_CLIENT_SECRET = nil, nil
      env.CAMPAIGN_ACCESS_TOKEN = "a-token-that-is-never-sent"
      local result = expect(1, campaign({"--retries", "0", "get", "profileAndServices/profile"}, {env = env}))
      assert.matches("^campaign: ", result.err)
    end)
  end)

  describe("profile commands", function()
    it("profile get prints the bare profile", function()
      local profile = profile_of(amy().PKey)
      assert.equal("Amy", profile.firstName)
      assert.equal("Dakota", profile.lastName)
      assert.equal("1980-10-24", profile.birthDate)
    end)

    it("profile find prints [] for an unknown email", function()
      local result = expect(0, campaign({"profile", "find", "--email", "nobody@nowhere.example"}))
      assert.equal("[]\n", result.out)
    end)

    it("profile update prints ACS's {PKey, href}", function()
      local pkey = amy().PKey
      local answer = json_out(expect(0, campaign({"profile", "update", pkey, "phone=3301020304"})))
      assert.equal(pkey, answer.PKey)
      assert.is_string(answer.href)
      assert.equal("3301020304", profile_of(pkey).phone)
    end)

    it("profile update --verify prints the profile read back", function()
      local pkey = amy().PKey
      local profile = json_out(expect(0, campaign({"profile", "update", pkey, "phone=3301020304",
        "--verify"})))
      assert.equal("3301020304", profile.phone)
      assert.equal("amy.dakota@mail.com", profile.email)
    end)

    it("profile update --verify exits 3 when the change does not read back", function()
      local pkey = amy().PKey
      local before = profile_of(pkey).phone
      emu:faults{{method = "PATCH", path = "/profileAndServices/profile/", status = 200,
        body = cjson.encode({PKey = pkey, href = emu.base_url .. "/x"}), times = 1}}
      local result = expect(3, campaign({"profile", "update", pkey, "phone=0611223344", "--verify"}))
      assert.equal("", result.out)
      assert.matches("verification failed for " .. pkey:gsub("%-",
        "%%-") .. ': phone: expected "0611223344", got "' ..
        (before or ""):gsub("%p", "%%%0") .. '"', result.err)
    end)

    it("profile update --verify sends a read-only field: ACS's 500 on one line (exit 1)", function()
      local pkey = amy().PKey
      emu:clear_requests()
      local result = expect(1, campaign({"profile", "update", pkey, "age:=20", "--verify"}))
      assert.equal("", result.out)
      assert.matches("^campaign: PATCH [^\n]*500[^\n]*RST%-360011[^\n]*read%-only[^\n]*\n$", result.err)
      local patch = last_request("PATCH")
      assert.is_table(patch)
      assert.same({age = 20}, cjson.decode(patch.body))
    end)

    it("profile update --verify accepts a field set to false (read back as false)", function()
      local pkey = amy().PKey
      expect(0, campaign({"profile", "update", pkey, "blackList:=true", "--verify"}))
      local profile = json_out(expect(0, campaign({"profile", "update", pkey, "blackList:=false",
        "blackListEmail:=false", "--verify"})))
      assert.is_false(profile.blackList)
      assert.is_false(profile.blackListEmail)
      assert.is_false(profile_of(pkey).blackList)
    end)

    it("profile list: --limit, --order --desc, --filter with --param, --all over several pages", function()
      local limited = json_out(expect(0, campaign({"profile", "list", "--limit", "7", "--order",
        "email", "--desc"})))
      assert.equal(7, #limited)
      for i = 2, #limited do assert.is_true(limited[i - 1].email >= limited[i].email) end

      local filtered = json_out(expect(0, campaign({"profile", "list", "--filter", "byText",
        "--param", "text=Dak"})))
      assert.is_true(#filtered >= 1)
      for _, profile in ipairs(filtered) do
        assert.is_true(profile.lastName:sub(1, 3) == "Dak" or profile.email:sub(1, 3) == "Dak")
      end

      local default = json_out(expect(0, campaign({"profile", "list"})))
      assert.equal(25, #default)
      emu:clear_requests()
      local all = json_out(expect(0, campaign({"profile", "list", "--all"})))
      local pages = 0
      for _, request in ipairs(emu:requests()) do
        if request.method == "GET" and request.uri:find("/profileAndServices/profile", 1,
          true) then pages = pages + 1 end
      end
      assert.is_true(pages >= 3, "expected several pages, got " .. pages)
      local count = json_out(expect(0, campaign({"get", "profileAndServices/profile//_count"})))
      assert.equal(count.count, #all)
      local seen = {}
      for _, profile in ipairs(all) do
        assert.is_nil(seen[profile.PKey])
        seen[profile.PKey] = true
      end
    end)
  end)

  describe("listings as they stream", function()
    it("print the same layout as campaign.encode of the whole array, pretty or compact", function()
      local campaign_module = require "campaign"
      local pretty = expect(0, campaign({"profile", "list", "--limit", "3", "--pretty"})).out
      local list = campaign_module.decode(pretty)
      assert.equal(3, #list)
      assert.equal(campaign_module.encode(list, {pretty = true}) .. "\n", pretty)
      -- Compact: one line (its key order is the table's, so only the values are compared).
      local compact = expect(0, campaign({"profile", "list", "--limit", "3", "--compact"})).out
      assert.matches("^%[{[^\n]*}%]\n$", compact)
      assert.same(cjson.decode(pretty), cjson.decode(compact))
      local none = expect(0, campaign({"profile", "find", "--email", "no@body.example", "--pretty"}))
      assert.equal("[]\n", none.out)
    end)

    it("stop at a failed page with exit 1 and output that is not valid JSON", function()
      emu:faults{{method = "GET", path = "/profileAndServices/profile/$", status = 404,
        body = '{"code":404,"message":"gone"}'}}
      local result = expect(1, campaign({"profile", "list", "--all"}))
      assert.matches("^%[{", result.out)
      assert.is_false(pcall(cjson.decode, result.out))
      assert.matches("404", result.err)
    end)
  end)

  describe("token", function()
    it("shows where the token came from and its expiry, never the token", function()
      local info = json_out(expect(0, campaign({"token"})))
      assert.equal("ims", info.source)
      assert.is_true(info.expires_in > 86400 - 120 and info.expires_in <= 86400, tostring(info.expires_in))
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", info.expires_at)
      assert.is_nil(info.access_token)
    end)

    it("prints the token with --show, and a static token's source", function()
      local token = json_out(expect(0, campaign({"token", "--show"}))).access_token
      outputs[#outputs] = nil   -- asked for: not part of the secret scan
      outputs[#outputs] = nil
      assert.is_string(token)
      local env = ims_env()
      env.CAMPAIGN_CLIENT_ID, env.CAMPAIGN_CLIENT_SECRET = nil, nil
      env.CAMPAIGN_ACCESS_TOKEN = token
      local info = json_out(expect(0, campaign({"token"}, {env = env})))
      assert.equal("CAMPAIGN_ACCESS_TOKEN", info.source)
      -- The emulator's tokens carry created_at and expires_in (ms) like Adobe's.
      assert.is_true(info.expires_in > 86400 - 120 and info.expires_in <= 86400, tostring(info.expires_in))
      assert.is_nil(info.access_token)
      -- The same token works for a request.
      expect(0, campaign({"get", "profileAndServices/profile", "--query", "_lineCount=1"}, {env = env}))
    end)
  end)

  describe("emulator", function()
    it("status passes through with secrets hidden unless --show", function()
      local result = expect(0, campaign({"emulator", "status", "--prefix", emu.prefix}, {env = {}}))
      assert.matches("base_url=" .. emu.base_url:gsub("%p", "%%%0"), result.out)
      assert.matches("client_secret=%*%*%*", result.out)
      assert.is_nil(result.out:find(emu.client_secret, 1, true))
      local shown = expect(0, campaign({"emulator", "status", "--prefix", emu.prefix, "--show"}, {env = {}}))
      outputs[#outputs] = nil   -- asked for: not part of the secret scan
      outputs[#outputs] = nil
      assert.truthy(shown.out:find("client_secret=" .. emu.client_secret, 1, true))
    end)

    it("start and stop a private emulator, hiding its secrets", function()
      local prefix = os.tmpname()
      os.remove(prefix)
      local started = expect(0, campaign({"emulator", "start", "--prefix", prefix, "--profiles", "3"},
        {env = {}}))
      finally(function()
        campaign({"emulator", "stop", "--prefix", prefix}, {env = {}})
        os.execute("rm -rf " .. sh(prefix))
      end)
      local values = {}
      for key, value in started.out:gmatch("([%w_]+)=([^\n]*)") do values[key] = value end
      assert.matches("^http://127%.0%.0%.1:%d+$", values.base_url)
      for _, name in ipairs({"access_token", "client_secret", "api_key", "client_id"}) do
        assert.equal("***", values[name])
      end
      local env = {CAMPAIGN_EMULATOR_PREFIX = prefix}
      local listed = json_out(expect(0, campaign({"--emulator", "profile", "list"}, {env = env})))
      assert.equal(3, #listed)
      expect(0, campaign({"emulator", "stop"}, {env = env}))
      local stopped = campaign({"emulator", "status"}, {env = env})
      assert.is_true(stopped.code ~= 0)
      assert.matches("stopped", stopped.out)
      assert.matches("missing start, stop or status", expect(2, campaign({"emulator"}, {env = {}})).err)
    end)

    it("--emulator takes the running emulator's settings", function()
      local result = expect(0, campaign({"--emulator", "--emulator-prefix", emu.prefix, "profile", "find",
        "--email", "amy.dakota@mail.com"}, {env = {}}))
      assert.equal("Dakota", json_out(result)[1].lastName)
      local missing = expect(1, campaign({"--emulator", "--emulator-prefix", "/nonexistent/prefix", "token"},
        {env = {}}))
      assert.matches("no emulator is running", missing.err)
    end)
  end)

  describe("TLS", function()
    it("trusts the CA given by --emulator or CAMPAIGN_CAFILE, and refuses an unknown one", function()
      local tls = emulator.start{tls = true, profiles = 2}
      finally(function() tls:stop() end)
      assert.matches("^https://", tls.base_url)
      local found = expect(0, campaign({"--emulator", "--emulator-prefix", tls.prefix, "profile", "find",
        "--email", "amy.dakota@mail.com"}, {env = {}}))
      assert.equal("Dakota", json_out(found)[1].lastName)
      local env = {CAMPAIGN_ORG = tls.org, CAMPAIGN_API_KEY = tls.api_key, CAMPAIGN_BASE_URL = tls.base_url,
        CAMPAIGN_ACCESS_TOKEN = tls.access_token, CAMPAIGN_CAFILE = tls.cafile}
      expect(0, campaign({"profile", "list", "--limit", "1"}, {env = env}))
      env.CAMPAIGN_CAFILE = nil
      local refused = expect(1, campaign({"--retries", "0", "profile", "list", "--limit", "1"}, {env = env}))
      assert.matches("^campaign: [^\n]*tls", refused.err)
      assert.is_nil(refused.err:find(tls.access_token, 1, true))
    end)
  end)

  describe("bulk-update", function()
    local function some_profiles(n)
      return json_out(expect(0, campaign({"profile", "list", "--limit", tostring(n), "--order", "email"})))
    end

    it("updates from CSV with quotes, commas, UTF-8 and empty lines; the report matches the data", function()
      local profiles = some_profiles(20)
      local lines = {"PKey,phone,lastName", ""}
      for i, profile in ipairs(profiles) do
        local last = i % 3 == 0 and '"Smith, Jr."' or (i % 3 == 1 and '"O""Brien ' .. i ..
          '"' or "Müller-" .. i)
        lines[#lines + 1] = profile.PKey .. "," .. string.format("06%08d", i) .. "," .. last
        if i % 5 == 0 then lines[#lines + 1] = "" end
      end
      lines[#lines + 1] = MISSING .. ",0600000000,X"     -- 404: fails
      -- os.tmpname() creates its file: the .csv beside it is removed, and so is it, even when
      -- an assertion fails.
      local csv_base = os.tmpname()
      local csv = write_file(csv_base .. ".csv", table.concat(lines, "\r\n") .. "\r\n")
      local report_path = os.tmpname()
      finally(function()
        os.remove(csv)
        os.remove(csv_base)
        os.remove(report_path)
      end)
      local result = expect(4, campaign({"bulk-update", csv, "--concurrency", "4", "--report", report_path}))
      local summary = json_out(result)
      assert.same({total = 21, ok = 20, failed = 1}, {total = summary.total, ok = summary.ok,
        failed = summary.failed})
      assert.matches(MISSING, result.err, 1, true)

      local report = {}
      for line in read_file(report_path):gmatch("[^\n]+") do report[#report + 1] = cjson.decode(line) end
      assert.equal(21, #report)
      for i, profile in ipairs(profiles) do
        local entry = report[i]
        assert.equal(profile.PKey, entry.PKey)
        assert.is_true(entry.ok)
        local now = profile_of(profile.PKey)
        assert.equal(string.format("06%08d", i), now.phone)
        local expected = i % 3 == 0 and "Smith, Jr." or (i % 3 == 1 and 'O"Brien ' .. i or "Müller-" .. i)
        assert.equal(expected, now.lastName)
      end
      for i = 2, #report do assert.is_true(report[i].line > report[i - 1].line) end
      local failed = report[21]
      assert.is_false(failed.ok)
      assert.equal(MISSING, failed.PKey)
      assert.equal(404, failed.status)
      assert.same({phone = "0600000000", lastName = "X"}, failed.changes)
    end)

    it("refuses a CSV without a PKey column (exit 2) and sends nothing", function()
      emu:clear_requests()
      local result = expect(2, campaign({"bulk-update", "-", "--format", "csv"},
        {stdin = "email,phone\na@b.c,1\n"}))
      assert.matches("no PKey column", result.err)
      local missing = expect(2, campaign({"bulk-update", "/nonexistent/changes.csv"}))
      assert.matches("^campaign: /nonexistent/changes%.csv: No such file", missing.err)
      local unclosed = expect(2, campaign({"bulk-update", "-"}, {stdin = 'PKey,note\n@a,"open\n@b,x\n'}))
      assert.matches("not closed", unclosed.err)
      assert.is_nil(last_request("PATCH"))
    end)

    it("reads NDJSON from stdin with typed values; bad lines fail without stopping the run", function()
      local profiles = some_profiles(3)
      local input = table.concat({
        cjson.encode({PKey = profiles[1].PKey, phone = "0101", blackList = true}),
        "",
        "{not json",
        cjson.encode({PKey = profiles[2].PKey, firstName = "Zoë"}),
        cjson.encode({PKey = profiles[3].PKey, age = 5}),      -- read-only: sent, ACS answers 500
      }, "\n") .. "\n"
      local report_path = os.tmpname()
      local result = expect(4, campaign({"bulk-update", "-", "--report", report_path}, {stdin = input}))
      assert.same({4, 2, 2}, {json_out(result).total, json_out(result).ok, json_out(result).failed})
      local report = {}
      for line in read_file(report_path):gmatch("[^\n]+") do report[#report + 1] = cjson.decode(line) end
      os.remove(report_path)
      assert.same({1, 3, 4, 5}, {report[1].line, report[2].line, report[3].line, report[4].line})
      assert.same({true, false, true, false}, {report[1].ok, report[2].ok, report[3].ok, report[4].ok})
      assert.equal("input", report[2].kind)
      assert.equal("http", report[4].kind)
      assert.equal(500, report[4].status)
      assert.matches("RST%-360011", report[4].error)
      local first = profile_of(profiles[1].PKey)
      assert.equal("0101", first.phone)
      assert.equal(true, first.blackList)
      assert.equal("Zoë", profile_of(profiles[2].PKey).firstName)
    end)

    it("a rerun on the report's failed lines finishes the job", function()
      local profiles = some_profiles(4)
      local input = {}
      for i, profile in ipairs(profiles) do input[i] = cjson.encode({PKey = profile.PKey,
        phone = "07" .. i}) end
      -- The first two PATCHes fail with a 500 (not retried).
      emu:faults{{method = "PATCH", path = "/profileAndServices/profile/", status = 500,
        body = '{"code":500,"message":"RST-360011 An error has occurred"}', times = 2}}
      local report_path = os.tmpname()
      expect(4, campaign({"bulk-update", "-", "--concurrency", "1", "--report", report_path},
        {stdin = table.concat(input, "\n")}))
      local failed_lines = {}
      for line in read_file(report_path):gmatch("[^\n]+") do
        if line:find('"ok":false', 1, true) then failed_lines[#failed_lines + 1] = line end
      end
      assert.equal(2, #failed_lines)
      local rerun = json_out(expect(0, campaign({"bulk-update", "-", "--report", report_path},
        {stdin = table.concat(failed_lines, "\n")})))
      assert.same({2, 2, 0}, {rerun.total, rerun.ok, rerun.failed})
      os.remove(report_path)
      for i, profile in ipairs(profiles) do assert.equal("07" .. i, profile_of(profile.PKey).phone) end
    end)

    it("--verify reports a change that does not read back", function()
      local profiles = some_profiles(2)
      emu:faults{{method = "PATCH", path = profiles[2].PKey:gsub("%p", "%%%0") .. "$", status = 200,
        body = cjson.encode({PKey = profiles[2].PKey, href = "x"})}}
      local input = cjson.encode({PKey = profiles[1].PKey, phone = "0811"}) .. "\n" ..
        cjson.encode({PKey = profiles[2].PKey, phone = "0822"}) .. "\n"
      local report_path = os.tmpname()
      expect(4, campaign({"bulk-update", "-", "--verify", "--report", report_path}, {stdin = input}))
      local report = {}
      for line in read_file(report_path):gmatch("[^\n]+") do report[#report + 1] = cjson.decode(line) end
      os.remove(report_path)
      assert.is_true(report[1].ok)
      assert.is_false(report[2].ok)
      assert.equal("verify", report[2].kind)
      assert.equal("0822", report[2].mismatches.phone.expected)
    end)

    it("writes plain progress lines off a terminal", function()
      local profiles = some_profiles(10)
      local input = {}
      for i, profile in ipairs(profiles) do input[i] = cjson.encode({PKey = profile.PKey,
        phone = "09" .. i}) end
      local result = expect(0, campaign({"bulk-update", "-", "--progress-interval", "0",
        "--concurrency", "2"},
        {stdin = table.concat(input, "\n")}))
      assert.is_nil(result.err:find("\r", 1, true))
      assert.is_nil(result.err:find("\27", 1, true))
      local lines = {}
      for line in result.err:gmatch("[^\n]+") do
        assert.matches("^progress: %d+/10 done, 0 failed, %d+/s, limit 2, ETA ", line)
        lines[#lines + 1] = line
      end
      assert.is_true(#lines >= 2)
      assert.matches("^progress: 10/10 done", lines[#lines])
      local quiet = expect(0, campaign({"bulk-update", "-", "--no-progress"},
        {stdin = table.concat(input, "\n")}))
      assert.equal("", quiet.err)
    end)
  end)

  describe("bulk-update on a terminal", function()
    it("draws one progress bar redrawn with carriage returns, and pretty JSON", function()
      local profiles = json_out(expect(0, campaign({"profile", "list", "--limit", "10"})))
      local input = {}
      for i, profile in ipairs(profiles) do
        input[i] = cjson.encode({PKey = profile.PKey, phone = "05" .. i})
      end
      local path = write_file(os.tmpname(), table.concat(input, "\n"))
      emu:faults{{method = "PATCH", delay_ms = 150, times = 4}}
      -- `script` runs the command on a pseudo-terminal (stdout and stderr both go to it).
      local env = {}
      for key, value in pairs(ims_env()) do env[#env + 1] = key .. "=" .. sh(value) end
      local command = "env -i PATH=" .. sh(os.getenv("PATH")) .. " " .. table.concat(env, " ") ..
        " lua5.4 bin/campaign bulk-update " .. sh(path) .. " --concurrency 1 --format ndjson"
      local pipe = io.popen("script -qec " .. sh(command) .. " /dev/null </dev/null")
      local screen = pipe:read("a")
      pipe:close()
      os.remove(path)
      outputs[#outputs + 1] = screen
      local frames = {}
      for frame in screen:gmatch("\r(%[[#%-]+%][^\r\n]*)") do frames[#frames + 1] = frame end
      assert.is_true(#frames >= 2, "expected several redraws: " .. screen)
      assert.matches("^%[#+%] 10/10 100%%  %d+/s  0 failed  limit 1  ETA ", frames[#frames])
      assert.is_nil(screen:find("progress:", 1, true))
      assert.matches('\n{\r?\n  "elapsed": ', screen)
    end)
  end)

  describe("secrets", function()
    it("never appear in any output, also with --verbose, errors and 401 retries", function()
      local pkey = amy().PKey
      emu:clear_requests()
      local verbose = expect(0, campaign({"--verbose", "profile", "update", pkey, "phone=0123", "--verify"}))
      assert.matches("GET", verbose.err)
      assert.matches("PATCH", verbose.err)
      emu:faults{{method = "GET", status = 503, headers = {["Retry-After"] = "0"}, times = 1}}
      local retried = expect(0, campaign({"-v", "get", "profileAndServices/profile/" .. pkey}))
      assert.matches("retry", retried.err)
      local env = ims_env()
      env.CAMPAIGN_CLIENT_ID, env.CAMPAIGN_CLIENT_SECRET = nil, nil
      env.CAMPAIGN_ACCESS_TOKEN = "not-a-valid-token-0123456789"
      local denied = expect(1, campaign({"-v", "get", "profileAndServices/profile"}, {env = env}))
      assert.matches("401", denied.err)
      local wrong_secret = ims_env()
      wrong_secret.CAMPAIGN_CLIENT_SECRET = "wrong-secret-0123456789"
      expect(1, campaign({"-v", "token"}, {env = wrong_secret}))

      -- Even a secret stored in a record is masked on the way out.
      emu:call("PATCH", "profileAndServices/profile/" .. pkey, {lastName = emu.client_secret})
      local masked = json_out(expect(0, campaign({"profile", "get", pkey})))
      assert.equal("***", masked.lastName)

      local secrets = {emu.api_key, emu.client_secret, emu.access_token, "not-a-valid-token-0123456789",
        "wrong-secret-0123456789"}
      for _, request in ipairs(emu:requests()) do
        local headers = request.headers or {}
        local authorization = headers.authorization or headers.Authorization
        local token = authorization and authorization:match("^Bearer (.+)$")
        if token then secrets[#secrets + 1] = token end
      end
      assert.is_true(#secrets > 5, "the request log shows the tokens the CLI used")
      for _, text in ipairs(outputs) do
        for _, secret in ipairs(secrets) do
          assert(not text:find(secret, 1, true), "a secret appears in the output: " .. text)
        end
      end
    end)
  end)
end)
