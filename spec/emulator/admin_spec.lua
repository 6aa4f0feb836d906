-- The admin API under /_emulator/: request log, faults, reset, config.
local emulator = require "emulator"

local PATH = "profileAndServices/profile"

describe("emulator admin API", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function() emu:reset() end)
  after_each(function() emu:clear_faults() end)
  teardown(function() emu:reset() end)

  describe("requests log", function()
    it("records method, uri, headers, body and time of every API request", function()
      emu:clear_requests()
      local before = os.time()
      local _, _, _, headers = emu:call("GET", PATH .. "?_lineCount=2", nil,
        { headers = { ["Cache-Control"] = "no-cache" } })
      emu:call("POST", PATH, { email = "logged@mail.com" })
      local log = emu:requests()
      assert.equals(2, #log)
      assert.equals("GET", log[1].method)
      assert.equals("/acme/campaign/" .. PATH .. "?_lineCount=2", log[1].uri)
      assert.equals("Bearer " .. emu.access_token, log[1].headers.authorization)
      assert.equals(emu.api_key, log[1].headers["x-api-key"])
      assert.equals("no-cache", log[1].headers["cache-control"])
      assert.is_true(log[1].time >= before - 1 and log[1].time <= os.time() + 1)
      assert.equals("POST", log[2].method)
      assert.equals('{"email":"logged@mail.com"}', log[2].body)
      assert.equals("application/json;charset=utf-8", log[2].headers["content-type"])
      assert.is_true(log[2].seq > log[1].seq)
      -- each answer carries X-Request-Id, logged with its request
      assert.matches("^%x+$", headers["x-request-id"])
      assert.equals(headers["x-request-id"], log[1].request_id)
      assert.are_not.equal(log[1].request_id, log[2].request_id)
    end)

    it("logs IMS calls and failed calls too, and not admin calls", function()
      emu:clear_requests()
      emu:call("GET", PATH, nil, { auth = false })
      emu:call("POST", "/ims/token/v3", nil, { auth = false, form = "grant_type=x" })
      emu:health()
      local log = emu:requests()
      assert.equals(2, #log)
      assert.equals("/ims/token/v3", log[2].uri)
    end)

    it("requests(since) answers only the newer entries", function()
      emu:call("GET", PATH)
      local log = emu:requests()
      local last = log[#log].seq
      emu:call("GET", PATH .. "?_lineCount=3")
      local newer = emu:requests(last)
      assert.equals(1, #newer)
      assert.equals("/acme/campaign/" .. PATH .. "?_lineCount=3", newer[1].uri)
    end)

    it("clear_requests empties the log", function()
      emu:call("GET", PATH)
      emu:clear_requests()
      assert.equals(0, #emu:requests())
    end)
  end)

  describe("faults", function()
    it("answers a status with headers and body, once by default", function()
      emu:faults{ { method = "GET", path = "/profile$", status = 503, headers = { ["Retry-After"] = "2" },
        body = { code = 503, message = "busy" } } }
      local status, body, _, headers = emu:call("GET", PATH)
      assert.equals(503, status)
      assert.same({ code = 503, message = "busy" }, body)
      assert.equals("2", headers["retry-after"])
      assert.equals(200, (emu:call("GET", PATH)))
    end)

    it("matches method and Lua pattern on the path; absent keys match everything", function()
      emu:faults{ { method = "PATCH", status = 502 }, { path = "/service", status = 429 } }
      assert.equals(200, (emu:call("GET", PATH)))
      assert.equals(429, (emu:call("GET", "profileAndServices/service")))
      local status, body = emu:call("PATCH", PATH .. "/@x", { phone = "1" })
      assert.equals(502, status)
      assert.equals(502, body.code)
      emu:faults{ { status = 504 } }
      assert.equals(504, (emu:call("DELETE", PATH .. "/@x")))
    end)

    it("applies faults in order and counts `times`; negative times never run out", function()
      emu:faults{ { status = 500, times = 2 }, { status = 502 } }
      assert.equals(500, (emu:call("GET", PATH)))
      assert.equals(500, (emu:call("GET", PATH)))
      assert.equals(502, (emu:call("GET", PATH)))
      assert.equals(200, (emu:call("GET", PATH)))
      emu:faults{ { path = "/service", status = 503, times = -1 } }
      for _ = 1, 3 do assert.equals(503, (emu:call("GET", "profileAndServices/service"))) end
      emu:clear_faults()
      assert.equals(200, (emu:call("GET", "profileAndServices/service")))
    end)

    it("a 200 fault answers a PATCH without applying it", function()
      local _, list = emu:call("GET", PATH .. "?_lineCount=1")
      local pkey = list.content[1].PKey
      emu:faults{ { method = "PATCH", status = 200, body = { PKey = pkey, href = "x" } } }
      local status, body = emu:call("PATCH", PATH .. "/" .. pkey, { firstName = "Changed" })
      assert.equals(200, status)
      assert.equals(pkey, body.PKey)
      local _, profile = emu:call("GET", PATH .. "/" .. pkey)
      assert.equals("Amy", profile.firstName)
    end)

    it("delays a request that then goes on to its handler", function()
      emu:faults{ { delay_ms = 300, headers = { ["X-Delayed"] = "yes" } } }
      local t0 = os.time()
      local status, _, _, headers = emu:call("GET", PATH .. "?_lineCount=1")
      assert.equals(200, status)
      assert.equals("yes", headers["x-delayed"])
      assert.is_true(os.time() - t0 < 5)
      local log = emu:requests()
      assert.equals(1, #log)
    end)

    it("drops the connection without an answer", function()
      emu:faults{ { drop = true } }
      local status = emu:call("GET", PATH)
      assert.equals(0, status)
      assert.equals(200, (emu:call("GET", PATH)))
    end)

    it("truncates a body after announcing its full length", function()
      emu:faults{ { truncate = 10, body = { content = { "0123456789", "abcdefghij" } } } }
      local out = emulator.run("curl -s -g -o /dev/null -w '%{http_code} %{size_download}' "
        .. emu.base_url .. "/acme/campaign/" .. PATH)
      local code, size = out:match("(%d+) (%d+)")
      assert.equals("200", code)
      assert.equals("10", size)
      -- without a body: half of a listing, and curl reports the cut (exit 18)
      emu:faults{ { truncate = true } }
      local head, ok, rc = emulator.run("curl -s -g -D - -o /dev/null " .. emu.base_url
        .. "/acme/campaign/" .. PATH)
      assert.is_false(ok)
      assert.equals(18, rc)
      assert.is_true(tonumber(head:match("[Cc]ontent%-[Ll]ength: (%d+)")) > 100)
    end)

    it("serves an invalid JSON body and an HTML error page", function()
      emu:faults{ { invalid = true }, { html = true } }
      local status, body, raw = emu:call("GET", PATH)
      assert.equals(200, status)
      assert.is_nil(body)
      assert.is_true(#raw > 0)
      local status2, body2, raw2, headers = emu:call("GET", PATH)
      assert.equals(502, status2)
      assert.is_nil(body2)
      assert.matches("<html>", raw2)
      assert.matches("^text/html", headers["content-type"])
    end)

    it("applies to IMS as well", function()
      emu:faults{ { path = "^/ims/", status = 503 } }
      local status = emu:call("POST", "/ims/token/v3", nil, { auth = false,
        form = "grant_type=client_credentials&client_id=" .. emu.client_id .. "&client_secret="
          .. emu.client_secret })
      assert.equals(503, status)
    end)

    it("lists pending faults and rejects malformed ones", function()
      emu:faults{ { status = 500, times = 3 } }
      emu:call("GET", PATH)
      local _, pending = emu:call("GET", "/_emulator/faults", nil, { auth = false })
      assert.equals(1, #pending)
      assert.equals(2, pending[1].times)
      for _, bad in ipairs { { { colour = "red" } }, { { status = "500" } }, { { path = "[" } },
        { { status = 99 } } } do
        local status = emu:call("POST", "/_emulator/faults", bad, { auth = false })
        assert.equals(400, status)
      end
    end)
  end)

  describe("reset and config", function()
    it("reset restores the seed data, the printed token, and clears faults and config", function()
      local _, list = emu:call("GET", PATH .. "?_lineCount=1")
      local pkey = list.content[1].PKey
      emu:call("DELETE", PATH .. "/" .. pkey)
      emu:call("POST", PATH, { email = "extra@mail.com" })
      emu:config{ wrap_single_get = true }
      emu:faults{ { status = 500, times = -1 } }
      emu:expire_tokens()
      emu:reset()
      local status, body = emu:call("GET", PATH .. "/_count")
      assert.equals(200, status)
      assert.same({ count = 100 }, body)
      local _, amy = emu:call("GET", PATH .. "/" .. pkey)
      assert.equals("Amy", amy.firstName)
      local _, config = emu:call("GET", "/_emulator/config", nil, { auth = false })
      assert.is_false(config.wrap_single_get)
      assert.equals(0, #select(2, emu:call("GET", "/_emulator/faults", nil, { auth = false })))
      -- a new profile gets the same PKey after each reset
      local _, a = emu:call("POST", PATH, { email = "same@mail.com" })
      emu:reset()
      local _, b = emu:call("POST", PATH, { email = "same@mail.com" })
      assert.equals(a.PKey, b.PKey)
    end)

    it("config rejects unknown keys and wrong types", function()
      assert.equals(400, (emu:call("POST", "/_emulator/config", { nope = true }, { auth = false })))
      assert.equals(400, (emu:call("POST", "/_emulator/config", { big_table_threshold = "5" },
        { auth = false })))
      assert.equals(404, (emu:call("GET", "/_emulator/nothing", nil, { auth = false })))
    end)

    it("profiles() lists the stored profiles with their Ext fields", function()
      local profiles = emu:profiles()
      assert.equals(100, #profiles)
      assert.equals("amy.dakota@mail.com", profiles[1].email)
      assert.is_string(profiles[1].href)
      assert.is_table(profiles[1].orgUnit)
    end)

    it("client_options points campaign.new at the emulator", function()
      local opts = emu:client_options{ retries = 0 }
      assert.equals(emu.org, opts.org)
      assert.equals(emu.api_key, opts.api_key)
      assert.equals(emu.access_token, opts.token)
      assert.equals(emu.base_url, opts.base_url)
      assert.equals(0, opts.retries)
    end)
  end)
end)
