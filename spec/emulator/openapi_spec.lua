-- Every operationId of Adobe's OpenAPI description (emulator/acs-openapi.json, a copy of
-- shared/spec/acs-openapi.json) reaches a real emulator handler and succeeds.
local emulator = require "emulator"

local json = emulator.json

local function read_spec()
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local fh = assert(io.open(dir .. "/../../emulator/acs-openapi.json", "rb"))
  local text = fh:read("*a")
  fh:close()
  return json.decode(text)
end

describe("emulator coverage of acs-openapi.json", function()
  local emu, spec
  local ids = {}

  setup(function()
    emu = emulator.shared()
    emu:reset()
    spec = read_spec()
    local function first(path)
      local _, body = emu:call("GET", path)
      return body.content[1].PKey
    end
    ids.profile = first("profileAndServices/profile?_lineCount=1")
    ids.service = first("profileAndServices/service?_lineCount=1")
    ids.orgunit = first("profileAndServicesExt/orgUnitBase?_lineCount=1")
    ids.product = first("profileAndServicesExt/cusProduct?_lineCount=1")
    local _, ev = emu:call("POST", "mcacme/EVTcartAbandonment", { email = "a@b.c", ctx = { x = "1" } })
    ids.event = ev.PKey
  end)
  teardown(function() emu:reset() end)

  -- Path parameter values and bodies for each operation (a new operation in the file
  -- fails the spec until it is given a sample here).
  local samples = {
    getAllProfiles = {}, getAllServices = {}, getGDPRRequest = {}, getCustomResources = {},
    getAllOrgUnits = {}, getProfile = {}, getService = {}, getHistoryOfProfile = {},
    getMetadataForResource = { RESOURCE = "profile" },
    getMetadataForResourceExt = { RESOURCE = "resourceType/profile" },
    getWorkflow = {}, getProfileWithOrgUnit = {},
    getAllCustomResources = {}, getAllBasicCustomResources = { RESOURCE = "cusStore" },
    getCustomResource = {},
    getDataFromRelativeUrl = { RELATIVE_URL = "profileAndServices/service" },
    getTransactionalEvent = {},
    createProfile = { body = { email = "openapi.profile@mail.com" } },
    updateProfile = { body = { phone = "3301020304" } },
    createService = { body = { label = "OpenAPI", name = "SVC_OPENAPI", messageType = "email" } },
    createGDPRRequest = { body = { namespaceName = "AMCDS2", reconciliationValue = "amy.dakota@mail.com",
      type = "access", regulation = "gdpr", label = "x", name = "PT1" } },
    sendTransactionalEvent = { body = { email = "a@b.c", ctx = { cartAmount = "$ 1" } } },
    controlWorkflow = { body = { method = "pause" } },
    updateProfileOrgUnit = { body = { orgUnit = { PKey = "ORGUNIT" } } },
    updateOrgUnit = { body = { label = "brand1" } },
    createCustomResource = { body = { name = "OpenAPI product", price = 1 } },
    updateCustomResource = { body = { price = 2 } },
    deleteCustomResource = {},
  }

  local function fill(path, sample)
    local values = {
      EXT = "", FILTERS = "", ORGANIZATION = emu.org, EVENT_ID = "EVTcartAbandonment", EVENT_PKEY = ids.event,
      PROFILE_PKEY = ids.profile, SERVICE_PKEY = ids.service, ORGUNIT_PKEY = ids.orgunit,
      WORKFLOW_ID = "WKF1", CUSTOMRESOURCE = "cusProduct", PKEY = ids.product, RESOURCE = "profile",
    }
    for k, v in pairs(sample) do
      if k ~= "body" then values[k] = v end
    end
    return (path:gsub("{([%w_]+)}", function(name)
      assert(values[name], "no value for path parameter " .. name)
      return values[name]
    end))
  end

  it("answers every operation with 2xx from a real handler (not the unknown-route fallback)", function()
    local operations = {}
    for path, item in pairs(spec.paths) do
      for method, op in pairs(item) do
        if type(op) == "table" and op.operationId then
          operations[#operations + 1] = { path = path, method = method:upper(), id = op.operationId }
        end
      end
    end
    -- the delete runs last: it removes the product the other custom-resource calls use
    table.sort(operations, function(a, b)
      if (a.id == "deleteCustomResource") ~= (b.id == "deleteCustomResource") then
        return b.id == "deleteCustomResource"
      end
      return a.id < b.id
    end)
    assert.is_true(#operations >= 28)
    for _, op in ipairs(operations) do
      local sample = samples[op.id]
      assert.is_table(sample, "no sample for operation " .. op.id)
      local body = sample.body
      if body and body.orgUnit then body = { orgUnit = { PKey = ids.orgunit } } end
      local path = fill(op.path, sample)
      local status, _, raw, headers = emu:call(op.method, path:sub(2), body)
      assert.is_true(status >= 200 and status < 300,
        op.id .. " " .. op.method .. " " .. path .. " -> " .. status .. " " .. tostring(raw))
      assert.is_string(headers["x-emulator-route"], op.id)
      assert.are_not.equal("none", headers["x-emulator-route"], op.id)
    end
  end)

  it("also serves the Ext and filtered variants of the {EXT}/{FILTERS} paths", function()
    local variants = {
      "profileAndServicesExt/profile/", "profileAndServicesExt/service/",
      "profileAndServices/profile/byText?text=Amy&filterType=firstName",
      "profileAndServices/service/byChannel?channel=email",
      "profileAndServicesExt/cusProduct/byCategory?category=gear",
    }
    for _, path in ipairs(variants) do
      local status, body = emu:call("GET", path)
      assert.equals(200, status, path)
      assert.is_true(#body.content > 0, path)
    end
  end)

  it("answers an operation outside the description with the gateway's 500 fallback", function()
    local status, _, _, headers = emu:call("GET", "nosuchapi/nothing")
    assert.equals(500, status)
    assert.equals("none", headers["x-emulator-route"])
  end)
end)
