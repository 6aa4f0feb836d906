-- Every error kind of the C client, as returned (nil, err) against the emulator.
local campaign = require "campaign"
local h = require "integration.client_helper"

-- Fails when a secret appears in any string field of err or in tostring(err).
local function assert_no_secret(err, emu)
  local texts = {tostring(err)}
  for _, v in pairs(err) do
    if type(v) == "string" then texts[#texts + 1] = v end
  end
  for _, text in ipairs(texts) do
    assert.is_nil(text:find(emu.access_token, 1, true), "token leaked: " .. text)
    assert.is_nil(text:find(emu.api_key, 1, true), "API key leaked: " .. text)
  end
end

describe("client errors", function()
  local emu, client
  before_each(function()
    emu = h.fresh()
    client = h.client(emu, {retries = 0})
  end)
  after_each(function() client:close() end)

  it("404: kind http with the ACS message, the request and a one-line tostring", function()
    -- a well-formed PKey no record has (a malformed one is a 500, below)
    local missing = "@" .. ("NoSuchProfile0"):rep(8)
    local path = "profileAndServices/profile/" .. missing
    local body, err = client:get(path)
    assert.is_nil(body)
    assert.is_true(campaign.is_error(err))
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("GET", err.method)
    assert.equal(emu.base_url .. "/" .. emu.org .. "/campaign/" .. path, err.url)
    assert.equal(path, err.path)
    assert.equal(1, err.attempts)
    assert.is_table(err.body)
    assert.is_string(err.message)
    local lines = {}
    for line in err.message:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("campaign: GET " .. path .. " -> 404 Not Found: " .. table.concat(lines, " / "),
                 tostring(err))
    assert.same({"RST-360011", "XTK-170036"}, err.codes)
    assert_no_secret(err, emu)
  end)

  it("a malformed PKey: 500 with ACS's chained message, its cause in tostring", function()
    local body, err = client:get("profileAndServices/profile/@gibberish")
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert.equal(1, err.attempts) -- a 500 is never retried
    assert.equal("RST-360011", err.codes[1])
    assert.matches("'@gibberish' is not a valid constant", tostring(err), 1, true)
    assert.is_nil(tostring(err):find("\n"))
  end)

  it("500 validation error: code, message, ACS codes, never retried", function()
    local c = h.client(emu, {retries = 3})
    local pkey = h.first_pkey(c)
    local body, err = c:patch("profileAndServices/profile/" .. pkey, {gender = "invalid"})
    c:close()
    assert.is_nil(body)
    assert.equal("http", err.kind)
    assert.equal(500, err.status)
    assert.equal(500, err.code)
    assert.equal(1, err.attempts)
    assert.matches("RST%-360011", err.message)
    assert.equal("RST-360011", err.codes[1])
    assert.matches("^campaign: PATCH profileAndServices/profile/@[%w_-]+ %-> 500 Internal Server Error: "
                   .. "RST%-360011", tostring(err))
    assert.is_nil(tostring(err):find("\n", 1, true))
  end)

  it("401 from the gateway: error_code and message; a string token is not retried", function()
    local c = h.client(emu, {token = "not-a-valid-token", retries = 3})
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal(401, err.status)
    assert.equal("401013", err.code)
    assert.is_string(err.message)
    assert.equal(1, err.attempts)
    assert.is_nil(tostring(err):find("not-a-valid-token", 1, true))
  end)

  it("an HTML error page gives its title as the message and the page as body", function()
    emu:faults{method = "GET", path = "/htmlpage$", status = 502, html = true}
    local _, err = client:get("htmlpage")
    assert.equal("http", err.kind)
    assert.equal(502, err.status)
    assert.equal("502 Bad Gateway", err.message)
    assert.matches("^<html>", err.body)
    assert.equal("campaign: GET htmlpage -> 502 Bad Gateway: 502 Bad Gateway", tostring(err))
  end)

  it("a plain-text error body is the message, trimmed, every line kept", function()
    emu:faults{method = "POST", path = "/signal$", status = 409,
               body = "\n Signal activity locked for 10 minutes\nsecond line\n\n"}
    local _, err = client:post("signal", {source = "API"})
    assert.equal(409, err.status)
    assert.equal("Signal activity locked for 10 minutes\nsecond line", err.message)
    assert.equal("\n Signal activity locked for 10 minutes\nsecond line\n\n", err.body)
    assert.equal("campaign: POST signal -> 409 Conflict: Signal activity locked for 10 minutes / second line",
                 tostring(err))
  end)

  it("an ACS message sent as plain text keeps its cause and every code", function()
    emu:faults{method = "PATCH", path = "/plainacs$", status = 500, body =
      "RST-360011 An error has occurred - please contact your administrator.\n"
      .. "Cannot update the 'age' property that is read-only.\nXTK-170006 Unable to parse expression.\n"
      .. "PGS-220000 PostgreSQL error"}
    local _, err = client:patch("plainacs", {age = 3})
    assert.equal(500, err.status)
    assert.same({"RST-360011", "XTK-170006", "PGS-220000"}, err.codes)
    assert.matches("Cannot update the 'age' property that is read-only. / XTK-170006", tostring(err), 1, true)
  end)

  it("an error body that is a JSON string is read as the message", function()
    emu:faults{method = "GET", path = "/jsonstring$", status = 500,
               body = '  "RST-360011 An error has occurred.\\nXTK-170036 Unable to parse expression."'}
    local _, err = client:get("jsonstring")
    assert.equal("RST-360011 An error has occurred.\nXTK-170036 Unable to parse expression.", err.message)
    assert.equal(err.message, err.body)
    assert.same({"RST-360011", "XTK-170036"}, err.codes)
  end)

  it("reads a nested {error = {code, message}} body", function()
    emu:faults{method = "GET", path = "/nested$", status = 400,
               body = {error = {code = "BadRequest", message = "Missing parameter"}}}
    local _, err = client:get("nested")
    assert.equal("BadRequest", err.code)
    assert.equal("Missing parameter", err.message)
  end)

  it("keeps only the first 4 KiB of a large non-JSON error body", function()
    emu:faults{method = "GET", path = "/bigerror$", status = 503, body = ("x"):rep(10000)}
    local _, err = client:get("bigerror")
    assert.equal(4096, #err.body)
  end)

  it("reads the request id and Retry-After of an error response", function()
    emu:faults{method = "GET", path = "/ratelimited$", status = 429,
               headers = {["X-Request-Id"] = "req-42", ["Retry-After"] = "7"}}
    local _, err = client:get("ratelimited")
    assert.equal(429, err.status)
    assert.equal("429050", err.code)
    assert.equal("req-42", err.request_id)
    assert.equal(7, err.retry_after)
    assert.equal("req-42", err.headers["x-request-id"])
  end)

  it("a 2xx with invalid JSON: kind json with the byte offset and the text", function()
    emu:faults{method = "GET", path = "/badjson$", status = 200, invalid = true}
    local body, err = client:get("badjson")
    assert.is_nil(body)
    assert.equal("json", err.kind)
    assert.equal(200, err.status)
    assert.is_number(err.offset)
    assert.matches("^{\"PKey\"", err.body)
    assert.matches("^campaign: GET badjson %-> json: ", tostring(err))
    -- raw = true does not decode, so the same answer succeeds
    emu:faults{method = "GET", path = "/badjson$", status = 200, invalid = true}
    local text = assert(client:get("badjson", {raw = true}))
    assert.matches("^{\"PKey\"", text)
  end)

  it("a body over max_body: kind too_large, not retried", function()
    local c = h.client(emu, {max_body = 100, retries = 2})
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("too_large", err.kind)
    assert.equal(1, err.attempts)
    assert.equal(100, err.max_body)
  end)

  it("nothing listening: kind network", function()
    local c = campaign.new{org = "acme", api_key = "k", token = "secret-token", retries = 0,
                           base_url = "http://127.0.0.1:" .. h.closed_port()}
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.is_nil(err.status)
    assert.matches("^campaign: GET profileAndServices/profile %-> network: ", tostring(err))
    assert.is_nil(tostring(err):find("secret-token", 1, true))
  end)

  it("goes through opts.proxy (here one that is down: kind network)", function()
    local c = h.client(emu, {proxy = "http://127.0.0.1:" .. h.closed_port(), retries = 0})
    local body, err = c:get("profileAndServices/profile")
    c:close()
    assert.is_nil(body)
    assert.equal("network", err.kind)
    assert.equal(0, #h.logged(emu, "/profileAndServices/profile"))
  end)

  it("a slow answer: kind timeout", function()
    local c = h.client(emu, {timeout = 0.3, retries = 0})
    emu:faults{method = "GET", path = "/slow$", delay_ms = 2000, status = 200}
    local t0 = h.now()
    local body, err = c:get("slow")
    local took = h.now() - t0
    c:close()
    assert.is_nil(body)
    assert.equal("timeout", err.kind)
    assert.truthy(took < 1.5, "took " .. took)
    assert.matches("%-> timeout: ", tostring(err))
  end)

  it("a dropped connection: kind network", function()
    emu:faults{method = "GET", path = "/dropped$", drop = true}
    local _, err = client:get("dropped")
    assert.equal("network", err.kind)
    assert.is_nil(err.status)
  end)

  it("a truncated body: kind network", function()
    emu:faults{method = "GET", path = "/truncated$", status = 200, body = {a = ("x"):rep(1000)},
               truncate = true}
    local _, err = client:get("truncated")
    assert.equal("network", err.kind)
  end)

  it("the client still works after each failure (the handle is reset per request)", function()
    emu:faults{method = "GET", path = "/dropped$", drop = true}
    assert.is_nil((client:get("dropped")))
    local body = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
    assert.equal(1, #body.content)
  end)
end)
