-- workflow.gdpr_request_and_fetch against the emulator through the libcurl client: the access
-- request goes new -> processing -> complete (emulator config), then its data file is fetched.
local campaign = require "campaign"
local emulator = require "emulator"
local workflow = require "campaign.workflow"

describe("workflow.gdpr_request_and_fetch against the emulator", function()
  local emu, client
  local REQUEST = { name = "PT11832", namespaceName = "AMCDS2", reconciliationValue = "amy.dakota@mail.com",
    regulation = "gdpr", label = "Access Amy" }

  setup(function() emu = emulator.shared() end)

  before_each(function()
    emu:fresh()
    emu:config { privacy_new = 0.05, privacy_processing = 0.05 }
    client = campaign.new(emu:client_options { retry_base = 0.01, retry_max = 0.05 })
  end)

  teardown(function() emu:fresh() end)

  local function statuses(history)
    local out = {}
    for i, h in ipairs(history) do out[i] = h.status end
    return out
  end

  it("creates an access request, waits until complete, and fetches its data file", function()
    local data, request, history = workflow.gdpr_request_and_fetch(client, REQUEST,
      { poll = 0.02, deadline = 5 })
    assert.is_string(data, tostring(request))
    assert.matches("^<%?xml", data)
    assert.matches('email="amy.dakota@mail.com"', data, 1, true)
    assert.equal("complete", request.status)
    assert.equal("access", request.type)
    assert.same({ "new", "processing", "complete" }, statuses(history))
    local r = emu:requests()
    assert.equal("POST", r[1].method)
    assert.matches("/privacy/privacyTool$", r[1].uri)
    assert.matches('"type":"access"', r[1].body)
    assert.equal("POST", r[#r].method)
    assert.matches("/privacyRequestData/?$", r[#r].uri)
    assert.matches('"name":"PT11832"', r[#r].body)
    assert.is_nil(REQUEST.type) -- the caller's table is left as it was
  end)

  it("an error status is kind 'privacy_failed'; no data file is fetched", function()
    emu:config { privacy_outcome = "errorDataNotFound" }
    local data, err = workflow.gdpr_request_and_fetch(client, REQUEST, { poll = 0.02, deadline = 5 })
    assert.is_nil(data)
    assert.equal("privacy_failed", err.kind)
    assert.equal("errorDataNotFound", err.last_status)
    assert.same({ "new", "processing", "errorDataNotFound" }, statuses(err.status_history))
    for _, r in ipairs(emu:requests()) do assert.is_nil(r.uri:find("RequestData", 1, true)) end
  end)

  it("a stalled request is kind 'timeout' at the deadline", function()
    emu:config { privacy_outcome = "stall" }
    local data, err = workflow.gdpr_request_and_fetch(client, REQUEST, { poll = 0.02, deadline = 0.25 })
    assert.is_nil(data)
    assert.equal("timeout", err.kind)
    assert.equal("new", err.last_status)
    assert.is_true(err.elapsed >= 0.25 and err.elapsed < 1.5, tostring(err.elapsed))
    assert.matches("privacy request PT11832 is still 'new' at the deadline", err.message)
  end)

  it("returns ACS's refusal of the request as the client's error", function()
    local bad = { name = "PT1", namespaceName = "AMCDS2", reconciliationValue = "x", regulation = "hipaa" }
    local data, err = workflow.gdpr_request_and_fetch(client, bad, { poll = 0.02 })
    assert.is_nil(data)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
  end)

  it("raises for misuse: not a table, another type than access, unknown options", function()
    local function raises(pattern, ...)
      local ok, msg = pcall(workflow.gdpr_request_and_fetch, ...)
      assert.is_false(ok)
      assert.matches(pattern, msg)
    end
    raises("bad argument #2 'request' %(table expected", client, "PT1")
    raises("type must be 'access' or absent: a 'delete' request has no data file", client,
      { name = "PT1", type = "delete" })
    raises("unknown opts key 'wait'", client, REQUEST, { wait = 1 })
    assert.equal(0, #emu:requests())
  end)
end)
