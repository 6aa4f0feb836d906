-- examples/openresty: the launcher (`run start ... ` prints url=, `run stop`) and the webhook
-- handler: 200 + verified profile, 409 + error object on a verification mismatch, 502 + error
-- object on any other failure, 400 on a bad request body; no secret in its logs.
local emulator = require "emulator"
local harness = require "openresty.harness"

local quote, sh = harness.quote, harness.sh
-- a well-formed PKey no record has: ACS answers 404 (a malformed one would be a 500)
local MISSING = "@" .. ("NoSuchProfile0"):rep(8)

describe("examples/openresty", function()
  local emu, prefix, url

  local function run(args)
    return sh(quote(harness.repo .. "/examples/openresty/run") .. " " .. args)
  end

  local function post(path, text)
    local file = prefix .. "/body.json"
    local f = assert(io.open(file, "wb"))
    f:write(text)
    f:close()
    local out = sh("curl -s -m 30 -w '\\n%{http_code}' -H 'Content-Type: application/json' --data-binary @"
      .. quote(file) .. " " .. quote(url .. path))
    local body, status = out:match("^(.*)\n(%d+)$")
    local ok, decoded = pcall(harness.json.decode, body or "")
    return tonumber(status), ok and decoded or nil, body
  end

  local function webhook(pkey, changes)
    return post("/webhook", harness.json.encode { PKey = pkey, changes = changes })
  end

  setup(function()
    emu = emulator.shared()
    prefix = (sh("mktemp -d /tmp/campaign-webhook-XXXXXX"):gsub("%s+$", ""))
    local out, code = run(table.concat({ "start", "--base-url", quote(emu.base_url), "--org", quote(emu.org),
      "--api-key", quote(emu.api_key), "--token", quote(emu.access_token), "--workers", "2",
      "--prefix", quote(prefix) }, " "))
    assert(code == 0, "run start failed: " .. out)
    url = out:match("url=(http://127%.0%.0%.1:%d+)")
    assert(url, "run start printed no url=: " .. out)
  end)

  teardown(function()
    if prefix then
      run("stop --prefix " .. quote(prefix))
      sh("rm -rf " .. quote(prefix))
    end
  end)

  before_each(function()
    emu:reset()
    emu:clear_faults()
  end)

  it("start prints url= only once nginx answers", function()
    assert.matches("^http://127%.0%.0%.1:%d+$", url)
    local out = sh("curl -s -m 5 " .. quote(url .. "/health"))
    assert.equal("ok\n", out)
  end)

  it("POST /webhook updates, verifies and answers 200 with the profile", function()
    local pkey = emu:profiles()[4].PKey
    local status, body = webhook(pkey, { firstName = "Webhook", preferredLanguage = "fr_fr" })
    assert.equal(200, status)
    assert.equal(pkey, body.PKey)
    assert.equal("Webhook", body.firstName)
    assert.equal("fr_fr", body.preferredLanguage)
  end)

  it("answers 409 with the error object when the profile does not read back as sent", function()
    local pkey = emu:profiles()[5].PKey
    emu:faults { { method = "PATCH", path = "/profile/@", status = 200,
      body = harness.json.encode { PKey = pkey, href = emu.base_url .. "/x" }, times = 1 } }
    local status, body = webhook(pkey, { lastName = "Ghost" })
    assert.equal(409, status)
    assert.equal("verify", body.kind)
    assert.equal("Ghost", body.mismatches.lastName.expected)
    assert.matches("^campaign: ", body.error)
  end)

  it("answers 502 with the error object for any other failure", function()
    local status, body = webhook(MISSING, { lastName = "X" })
    assert.equal(502, status)
    assert.equal("http", body.kind)
    assert.equal(404, body.status)
    emu:faults { { method = "GET", path = "/profile/@", status = 503, times = 10 } }
    status, body = webhook(emu:profiles()[1].PKey, { lastName = "X" })
    assert.equal(502, status)
    assert.equal(503, body.status)
    assert.equal(4, body.attempts)
  end)

  it("answers 400 for a body that is not {PKey, changes} and for a PKey the client refuses", function()
    assert.equal(400, (post("/webhook", "not json")))
    assert.equal(400, (post("/webhook", harness.json.encode { PKey = "@x" })))
    assert.equal(400, (post("/webhook", harness.json.encode { PKey = "../../x", changes = { a = 1 } })))
  end)

  it("answers 400 naming the problem for a PKey with an encoded separator, and sends nothing", function()
    local _, units = emu:call("GET", "profileAndServicesExt/orgUnitBase")
    local ou = units.content[1]
    emu:clear_requests()
    local escape = "..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F" .. ou.PKey
    for _, pkey in ipairs { escape, "@a\\b", "%2E%2E" } do
      local status, body = webhook(pkey, { label = "X" })
      assert.equal(400, status, pkey)
      assert.matches("^PKey must ", body.error)
    end
    assert.equal(0, #emu:requests())
    local _, after = emu:call("GET", "profileAndServicesExt/orgUnitBase")
    assert.equal(ou.label, after.content[1].label)
  end)

  it("keeps the token and the API key out of its files, logs and answers", function()
    local _, _, raw = webhook(MISSING, { lastName = "X" })
    local files = sh("cat " .. quote(prefix .. "/nginx.conf") .. " " .. quote(prefix .. "/error.log"))
    for _, secret in ipairs { emu.access_token, emu.api_key } do
      assert.is_nil(files:find(secret, 1, true))
      assert.is_nil(raw:find(secret, 1, true))
    end
  end)

  it("stop ends nginx", function()
    local other = (sh("mktemp -d /tmp/campaign-webhook-XXXXXX"):gsub("%s+$", ""))
    finally(function() sh("rm -rf " .. quote(other)) end)
    local out = run(table.concat({ "start", "--base-url", quote(emu.base_url), "--org", emu.org, "--api-key",
      quote(emu.api_key), "--token", quote(emu.access_token), "--prefix", quote(other) }, " "))
    local other_url = out:match("url=(%S+)")
    assert.is_string(other_url)
    local pid = sh("cat " .. quote(other .. "/nginx.pid")):match("%d+")
    run("stop --prefix " .. quote(other))
    assert.is_nil(io.open(other .. "/nginx.pid"))
    local _, alive = sh("kill -0 " .. pid)
    assert.not_equal(0, alive)
    local _, code = sh("curl -s -m 2 -o /dev/null " .. quote(other_url .. "/health"))
    assert.not_equal(0, code)
  end)
end)
