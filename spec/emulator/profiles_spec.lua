-- Profiles as ACS serves them: listing, pagination, counting, sorting, filters, single GET,
-- POST/PATCH/DELETE and ACS's validation errors.
local emulator = require "emulator"

local BASE = "profileAndServices/profile"

describe("emulator profiles", function()
  local emu
  setup(function() emu = emulator.shared() end)
  before_each(function() emu:reset() end)
  teardown(function() emu:reset() end)

  local function get(path, opts) return emu:call("GET", path, nil, opts) end

  local function first_pkey()
    local _, body = get(BASE .. "?_lineCount=1")
    return body.content[1].PKey
  end

  describe("seed data", function()
    it("starts with Amy Dakota, born 1980-10-24, and has deterministic PKeys", function()
      local _, body = get(BASE .. "?_lineCount=2")
      local amy = body.content[1]
      assert.equals("Amy", amy.firstName)
      assert.equals("Dakota", amy.lastName)
      assert.equals("amy.dakota@mail.com", amy.email)
      assert.equals("1980-10-24", amy.birthDate)
      assert.matches("^@[%w_%-]+$", amy.PKey)
      assert.is_true(#amy.PKey >= 90 and #amy.PKey <= 114)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%dZ$", amy.created)
      local other = emulator.start{ profiles = 2 }
      finally(function() other:stop() end)
      local _, again = other:call("GET", BASE .. "?_lineCount=2")
      assert.equals(amy.PKey, again.content[1].PKey)
      assert.equals(body.content[2].PKey, again.content[2].PKey)
    end)

    it("computes age from birthDate", function()
      local _, amy = get(BASE .. "/" .. first_pkey())
      local now = os.date("!*t")
      local age = now.year - 1980
      if now.month < 10 or (now.month == 10 and now.day < 24) then age = age - 1 end
      assert.equals(age, amy.age)
    end)
  end)

  it("seeds thousands of profiles (--profiles 5000) and pages through them", function()
    local e = emulator.start{ profiles = 5000 }
    finally(function() e:stop() end)
    local _, count = e:call("GET", BASE .. "/_count")
    assert.same({ count = 5000 }, count)
    local _, page = e:call("GET", BASE .. "?_lineCount=1000")
    local n = 0
    while page do
      n = n + #page.content
      page = page.next and select(2, e:call("GET", page.next.href))
    end
    assert.equals(5000, n)
    local _, last = e:call("GET", BASE .. "?_lineCount=1&_order=created%20desc")
    local _, by_email = e:call("GET", BASE .. "/byEmail?email=" .. last.content[1].email:gsub("@", "%%40"))
    assert.equals(last.content[1].PKey, by_email.content[1].PKey)
  end)

  describe("listing", function()
    it("has content, count.href, next.href and serverSidePagination; 25 by default", function()
      local status, body = get(BASE)
      assert.equals(200, status)
      assert.equals(25, #body.content)
      assert.is_true(body.serverSidePagination)
      assert.matches("^" .. emu.base_url:gsub("%p", "%%%0") .. "/acme/campaign/profileAndServices/profile/",
        body.next.href)
      assert.matches("_lineStart=@", body.next.href)
      assert.matches("profile//_count%?", body.count.href)
      for _, p in ipairs(body.content) do
        assert.equals(emu.base_url .. "/acme/campaign/" .. BASE .. "/" .. p.PKey, p.href)
      end
    end)

    it("following next.href visits every profile once, and the last page has no next", function()
      local seen, n, pages = {}, 0, 0
      local url = BASE .. "?_lineCount=30"
      while url do
        local status, body = get(url)
        assert.equals(200, status)
        pages = pages + 1
        for _, p in ipairs(body.content) do
          assert.is_nil(seen[p.PKey])
          seen[p.PKey] = true
          n = n + 1
        end
        url = body.next and body.next.href
      end
      assert.equals(100, n)
      assert.equals(4, pages)
    end)

    it("count.href answers {count = n}, filtered counts too", function()
      local _, body = get(BASE .. "?_lineCount=1")
      local status, count = get(body.count.href)
      assert.equals(200, status)
      assert.same({ count = 100 }, count)
      local _, filtered = get(BASE .. "/byText?text=Dakota")
      local _, fcount = get(filtered.count.href)
      assert.same({ count = 1 }, fcount)
    end)

    it("sorts with _order=field and field%20desc", function()
      local _, asc = get(BASE .. "?_order=email&_lineCount=100")
      local _, desc = get(BASE .. "?_order=email%20desc&_lineCount=100")
      for i = 2, #asc.content do
        assert.is_true(asc.content[i - 1].email <= asc.content[i].email)
      end
      assert.equals(asc.content[1].email, desc.content[100].email)
      assert.equals(asc.content[100].email, desc.content[1].email)
      -- next.href keeps the order
      local _, page = get(BASE .. "?_order=email%20desc&_lineCount=10")
      assert.matches("_order=email%%20desc", page.next.href)
      local _, page2 = get(page.next.href)
      assert.equals(desc.content[11].email, page2.content[1].email)
    end)

    -- A double-encoded valid sort (the Node SDK's email%2520desc) is accepted: sdk_requests_spec.
    it("rejects _order on an unknown field or direction, encoded once or twice (500 RST-360011)", function()
      for _, order in ipairs { "nosuchfield", "nosuchfield%2520desc", "email%2520sideways" } do
        local status, body = get(BASE .. "?_order=" .. order)
        assert.equals(500, status)
        assert.matches("^RST%-360011", body.message)
      end
    end)

    it("omits next above big_table_threshold unless _forcePagination=true", function()
      local e = emulator.start{ profiles = 12 }
      finally(function() e:stop() end)
      e:config{ big_table_threshold = 5 }
      local _, body = e:call("GET", BASE .. "?_lineCount=5")
      assert.equals(5, #body.content)
      assert.is_nil(body.next)
      local _, forced = e:call("GET", BASE .. "?_lineCount=5&_forcePagination=true")
      assert.is_table(forced.next)
      assert.matches("_forcePagination=true", forced.next.href)
      local _, second = e:call("GET", forced.next.href)
      assert.equals(5, #second.content)
    end)

    it("filters byEmail (exact) and byText (prefix, case-sensitive, email and lastName)", function()
      local _, by_email = get(BASE .. "/byEmail?email=amy.dakota%40mail.com")
      assert.equals(1, #by_email.content)
      assert.equals("Amy", by_email.content[1].firstName)
      local _, none = get(BASE .. "/byEmail?email=amy.dakota")
      assert.equals(0, #none.content)
      local _, by_last = get(BASE .. "/byText?text=Dak")
      assert.equals(1, #by_last.content)
      local _, lower = get(BASE .. "/byText?text=dak")
      assert.equals(0, #lower.content)
      local _, by_mail = get(BASE .. "/byText?text=amy.")
      assert.equals(1, #by_mail.content)
      local _, first_name = get(BASE .. "/byText?text=Amy&filterType=firstName")
      assert.equals("Amy", first_name.content[1].firstName)
      local _, not_first = get(BASE .. "/byText?text=Amy")
      assert.equals(0, #not_first.content)
    end)

    it("byEmail follows creates, email changes and deletes", function()
      local _, created = emu:call("POST", BASE, { email = "first@mail.com" })
      local _, found = get(BASE .. "/byEmail?email=first%40mail.com")
      assert.equals(created.PKey, found.content[1].PKey)
      emu:call("PATCH", BASE .. "/" .. created.PKey, { email = "second@mail.com" })
      local _, old = get(BASE .. "/byEmail?email=first%40mail.com")
      assert.equals(0, #old.content)
      local _, new = get(BASE .. "/byEmail?email=second%40mail.com")
      assert.equals(created.PKey, new.content[1].PKey)
      -- two profiles may share an email through PATCH; both are found
      emu:call("PATCH", BASE .. "/" .. first_pkey(), { email = "second@mail.com" })
      local _, both = get(BASE .. "/byEmail?email=second%40mail.com")
      assert.equals(2, #both.content)
      emu:call("DELETE", BASE .. "/" .. created.PKey)
      local _, one = get(BASE .. "/byEmail?email=second%40mail.com")
      assert.equals(1, #one.content)
      assert.equals("Amy", one.content[1].firstName)
    end)

    it("projects one attribute: GET profile/email", function()
      local _, body = get(BASE .. "/email?_lineCount=3")
      assert.same("amy.dakota@mail.com", body.content[1])
      assert.equals(3, #body.content)
    end)
  end)

  describe("single GET", function()
    it("answers the bare record without top-level href", function()
      local pkey = first_pkey()
      local status, body = get(BASE .. "/" .. pkey)
      assert.equals(200, status)
      assert.equals(pkey, body.PKey)
      assert.is_nil(body.content)
      assert.is_nil(body.href)
      assert.equals(emu.base_url .. "/acme/campaign/" .. BASE .. "/" .. pkey .. "/subscriptions/",
        body.subscriptions.href)
      assert.same({ address1 = "", address2 = "", address3 = "", address4 = "", city = "Paris",
        countryCode = "FR", stateCode = "", zipCode = "75001" }, body.location)
    end)

    it("wraps it as {content = {record}} with the wrap_single_get switch", function()
      local e = emulator.start{ profiles = 2 }
      finally(function() e:stop() end)
      local _, list = e:call("GET", BASE)
      local _, bare = e:call("GET", BASE .. "/" .. list.content[1].PKey)
      assert.equals("Amy", bare.firstName)
      e:config{ wrap_single_get = true }
      local _, body = e:call("GET", BASE .. "/" .. list.content[1].PKey)
      assert.equals(1, #body.content)
      assert.equals("Amy", body.content[1].firstName)
      e:config{ wrap_single_get = false }
      local _, bare_again = e:call("GET", BASE .. "/" .. list.content[1].PKey)
      assert.is_nil(bare_again.content)
    end)

    it("builds hrefs from the Host the client used", function()
      local port = emu.base_url:match(":(%d+)$")
      local pkey = first_pkey()
      local _, body = get(BASE .. "/" .. pkey, { headers = { Host = "localhost:" .. port } })
      assert.matches("^http://localhost:" .. port .. "/acme/campaign/", body.subscriptions.href)
    end)

    it("never answers a stale record (answers are cached per record version)", function()
      local pkey = first_pkey()
      local port = emu.base_url:match(":(%d+)$")
      local _, before = get(BASE .. "/" .. pkey)
      emu:call("PATCH", BASE .. "/" .. pkey, { firstName = "Amelia" })
      local _, after = get(BASE .. "/" .. pkey)
      assert.equals("Amelia", after.firstName)
      assert.are_not.equal(before.lastModified, after.lastModified)
      local _, other_host = get(BASE .. "/" .. pkey, { headers = { Host = "localhost:" .. port } })
      assert.matches("^http://localhost:", other_host.subscriptions.href)
      local _, same_host = get(BASE .. "/" .. pkey)
      assert.matches("^http://127%.0%.0%.1:", same_host.subscriptions.href)
      emu:call("DELETE", BASE .. "/" .. pkey)
      assert.equals(404, (get(BASE .. "/" .. pkey)))
      emu:reset()
      local _, again = get(BASE .. "/" .. pkey)
      assert.equals("Amy", again.firstName)
    end)

    it("answers 404 for a well-formed PKey that no record has", function()
      -- the shape ACS and the emulator give PKeys: "@" + at least 64 chars of [A-Za-z0-9_-]
      for _, key in ipairs { "@" .. string.rep("A", 100), "@" .. string.rep("z", 64),
        "@" .. string.rep("a-b_9", 22) } do
        for _, method in ipairs { "GET", "PATCH", "DELETE" } do
          local body_out = method == "PATCH" and { phone = "1" } or nil
          local status, body = emu:call(method, BASE .. "/" .. key, body_out)
          assert.equals(404, status, method .. " " .. key)
          assert.equals(404, body.code)
          assert.equals("RST-360011 An error has occurred - please contact your administrator.\n"
            .. "No 'profile' resource has the key '" .. key .. "'.\n"
            .. "XTK-170036 Unable to parse expression '@id = " .. key .. "'.", body.message)
        end
      end
    end)

    it("answers ACS's 500 for a key that cannot be a PKey", function()
      -- acs-api.md: "'@gibberish' is not a valid constant" (SDK e2e) and "'<x>' attribute
      -- unknown ... XTK-170036 Unable to parse expression '@id = @<x>'" (EC:limitations)
      local cases = {
        ["@gibberish"] = "gibberish", ["@x"] = "x", notapkey = "notapkey",
        ["@" .. string.rep("a", 63)] = string.rep("a", 63),          -- one char short
        ["@" .. string.rep("a", 70) .. "."] = string.rep("a", 70) .. ".",  -- a char no PKey has
        ["@@" .. string.rep("a", 70)] = "@" .. string.rep("a", 70),
      }
      for key, x in pairs(cases) do
        for _, method in ipairs { "GET", "PATCH", "DELETE" } do
          local body_out = method == "PATCH" and { phone = "1" } or nil
          local status, body = emu:call(method, BASE .. "/" .. key, body_out)
          assert.equals(500, status, method .. " " .. key)
          assert.equals(500, body.code)
          assert.equals(table.concat({
            "RST-360011 An error has occurred - please contact your administrator.",
            "'" .. key .. "' is not a valid constant.",
            "'" .. x .. "' attribute unknown.",
            "XTK-170036 Unable to parse expression '@id = @" .. x .. "'." }, "\n"), body.message)
        end
      end
    end)

    it("accepts the .json suffix", function()
      local status, body = get(BASE .. "/" .. first_pkey() .. ".json")
      assert.equals(200, status)
      assert.equals("Amy", body.firstName)
    end)
  end)

  describe("writes", function()
    it("POST answers 201 with the whole record, PKey, href, created, lastModified", function()
      local status, body = emu:call("POST", BASE, { email = "john.doe@mail.com", firstName = "John",
        lastName = "Doe", gender = "male", location = { city = "Lyon" } })
      assert.equals(201, status)
      assert.matches("^@", body.PKey)
      assert.equals(emu.base_url .. "/acme/campaign/" .. BASE .. "/" .. body.PKey, body.href)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%dZ$", body.created)
      assert.equals(body.created, body.lastModified)
      assert.equals("male", body.gender)
      assert.equals("unknown", body.emailFormat)
      assert.equals("Lyon", body.location.city)
      assert.equals("", body.location.zipCode)
      local _, again = get(BASE .. "/" .. body.PKey)
      assert.equals("John", again.firstName)
    end)

    it("PATCH answers 200 {PKey, href} and changes only the sent fields", function()
      local pkey = first_pkey()
      local _, before = get(BASE .. "/" .. pkey)
      local status, body = emu:call("PATCH", BASE .. "/" .. pkey, { phone = "3301020304",
        location = { city = "Nice" } })
      assert.equals(200, status)
      assert.same({ PKey = pkey, href = emu.base_url .. "/acme/campaign/" .. BASE .. "/" .. pkey }, body)
      local _, after = get(BASE .. "/" .. pkey)
      assert.equals("3301020304", after.phone)
      assert.equals("Nice", after.location.city)
      assert.equals(before.location.zipCode, after.location.zipCode)
      assert.equals(before.email, after.email)
      assert.equals(before.created, after.created)
    end)

    it("keeps numbers exactly (shortest round-trip text)", function()
      local pkey = first_pkey()
      local status = emu:call("PATCH", "profileAndServicesExt/profile/" .. pkey, nil,
        { raw = '{"cusLoyaltyPoints": 123456789012345}' })
      assert.equals(200, status)
      local _, _, raw = get("profileAndServicesExt/profile/" .. pkey)
      assert.matches('"cusLoyaltyPoints":123456789012345[,}]', raw)
      emu:call("PATCH", "profileAndServicesExt/profile/" .. pkey, nil, { raw = '{"cusLoyaltyPoints": 0.1}' })
      _, _, raw = get("profileAndServicesExt/profile/" .. pkey)
      assert.matches('"cusLoyaltyPoints":0%.1[,}]', raw)
    end)

    it("applies data policies when the data_policies switch is on", function()
      local e = emulator.start{ profiles = 1 }
      finally(function() e:stop() end)
      local _, list = e:call("GET", BASE)
      local pkey = list.content[1].PKey
      assert.equals(200, (e:call("PATCH", BASE .. "/" .. pkey, { firstName = "jOHN" })))
      local _, raw_value = e:call("GET", BASE .. "/" .. pkey)
      assert.equals("jOHN", raw_value.firstName)
      e:config{ data_policies = true }
      assert.equals(200, (e:call("PATCH", BASE .. "/" .. pkey, { firstName = "jOHN", lastName = "mc doe",
        email = "John.Doe@Mail.COM" })))
      local _, normalised = e:call("GET", BASE .. "/" .. pkey)
      assert.equals("John", normalised.firstName)
      assert.equals("Mc Doe", normalised.lastName)
      assert.equals("john.doe@mail.com", normalised.email)
      local status, body = e:call("POST", BASE, { email = "not an email" })
      assert.equals(500, status)
      assert.matches("not a valid email address", body.message)
      local _, meta = e:call("GET", "profileAndServices/resourceType/profile")
      assert.equals("smartCase", meta.content.firstName.dataPolicy)
    end)

    it("DELETE answers 200, then the profile is gone", function()
      local pkey = first_pkey()
      assert.equals(200, (emu:call("DELETE", BASE .. "/" .. pkey)))
      assert.equals(404, (get(BASE .. "/" .. pkey)))
      assert.equals(404, (emu:call("DELETE", BASE .. "/" .. pkey)))
      assert.equals(404, (emu:call("PATCH", BASE .. "/" .. pkey, { phone = "1" })))
    end)

    local function expect_engine_error(status, body, text)
      assert.equals(500, status)
      assert.equals(500, body.code)
      assert.matches("^RST%-360011 An error has occurred %- please contact your administrator%.\n",
        body.message)
      assert.is_truthy(body.message:find(text, 1, true), body.message)
    end

    it("rejects read-only fields with 500 RST-360011", function()
      local pkey = first_pkey()
      for _, field in ipairs { "PKey", "href", "created", "lastModified", "age" } do
        local status, body = emu:call("PATCH", BASE .. "/" .. pkey, { [field] = field == "age" and 3 or "x" })
        expect_engine_error(status, body, "Cannot update the '" .. field .. "' property that is read-only")
      end
      local status, body = emu:call("POST", BASE, { email = "x@y.z", age = 3 })
      expect_engine_error(status, body, "'age' property that is read-only")
    end)

    it("rejects unknown fields, and Ext fields on the standard API", function()
      local pkey = first_pkey()
      local status, body = emu:call("PATCH", BASE .. "/" .. pkey, { shoeSize = 42 })
      expect_engine_error(status, body, "'shoeSize' property is not valid for the 'profile' resource.")
      status, body = emu:call("PATCH", BASE .. "/" .. pkey, { cusLoyaltyPoints = 1 })
      expect_engine_error(status, body, "'cusLoyaltyPoints' property is not valid")
      status, body = emu:call("PATCH", BASE .. "/" .. pkey, { location = { planet = "Mars" } })
      expect_engine_error(status, body, "'planet' property is not valid")
    end)

    it("rejects bad enumeration names", function()
      local pkey = first_pkey()
      local status, body = emu:call("PATCH", BASE .. "/" .. pkey, { gender = "invalid" })
      expect_engine_error(status, body,
        "The value 'invalid' is not valid for the 'nms:recipient:gender' enumeration of the '@gender' field")
      status, body = emu:call("PATCH", BASE .. "/" .. pkey, { emailFormat = "pdf" })
      expect_engine_error(status, body, "'nms:recipient:emailFormat' enumeration")
      for _, v in ipairs { "unknown", "male", "female" } do
        assert.equals(200, (emu:call("PATCH", BASE .. "/" .. pkey, { gender = v })))
      end
    end)

    it("rejects a duplicate email on create with PGS-220000", function()
      local status, body = emu:call("POST", BASE, { email = "amy.dakota@mail.com" })
      expect_engine_error(status, body, "PGS-220000 PostgreSQL error")
      assert.matches("duplicate key", body.message)
    end)

    it("answers 400 for invalid JSON and a non-object body", function()
      for _, raw in ipairs { '{"email":', "[1,2]", "" } do
        local status, body = emu:call("POST", BASE, nil, { raw = raw })
        assert.equals(400, status, raw)
        assert.equals(400, body.code)
      end
    end)

    it("answers 413 for a body over 1 MiB, and accepts one just under", function()
      local big = '{"salutation":"' .. string.rep("a", 1024 * 1024) .. '"}'
      local status, body = emu:call("PATCH", BASE .. "/" .. first_pkey(), nil, { raw = big })
      assert.equals(413, status)
      assert.equals(413, body.code)
      local fits = '{"salutation":"' .. string.rep("a", 1024 * 1024 - 20) .. '"}'
      status = emu:call("PATCH", BASE .. "/" .. first_pkey(), nil, { raw = fits })
      assert.equals(200, status)    -- read and stored: a value over the field's length is kept as sent
    end)
  end)

  it("answers a request nginx finds malformed with 400 and a JSON body", function()
    local status, body = get(BASE .. "/%ZZ")
    assert.equals(400, status)
    assert.equals(400, body.code)
  end)

  it("answers an unknown API under /<org>/campaign/ with the gateway's 500 Oops", function()
    for _, path in ipairs { "nosuchapi/thing", "nosuchapi", "", "profileAndService/profile",
      "workflows/execution/WKF1", "mcother/EVTcartAbandonment" } do
      for _, method in ipairs { "GET", "POST", "PATCH", "DELETE" } do
        local status, body, _, headers = emu:call(method, path, method ~= "GET" and method ~= "DELETE"
          and { a = 1 } or nil)
        assert.equals(500, status, method .. " " .. path)
        assert.same({ code = 500, message = "Oops. Something went wrong. Check your URI and try again." },
          body)
        assert.equals("none", headers["x-emulator-route"])
      end
    end
    -- the gateway checks come first
    assert.equals(403, (emu:call("GET", "nosuchapi/thing", nil, { headers = { ["X-Api-Key"] = false } })))
    assert.equals(401, (emu:call("GET", "nosuchapi/thing", nil, { token = "nope" })))
  end)

  it("keeps 404 for an unknown resource of a known API and for paths outside /<org>/campaign/", function()
    local status, body = get("profileAndServices/nosuchresource")
    assert.equals(404, status)
    assert.equals(404, body.code)
    for _, path in ipairs { "/elsewhere", "/ims/token/v2", "/acme/other/profileAndServices" } do
      local p_status, p_body, _, headers = get(path, { auth = false })
      assert.equals(404, p_status, path)
      assert.equals(404, p_body.code)
      assert.equals("none", headers["x-emulator-route"])
    end
  end)
end)
