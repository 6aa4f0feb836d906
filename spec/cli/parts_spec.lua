-- Unit specs of the CLI's pure parts: argument parsing, FIELDS typing, CSV and NDJSON readers,
-- configuration resolution, secret redaction and progress rendering.
local args = require "campaign.cli.args"
local config = require "campaign.cli.config"
local input = require "campaign.cli.input"
local output = require "campaign.cli.output"
local cjson = require "cjson"

-- campaign.decode's contract (value, or nil + err) on top of cjson, so these specs do not
-- depend on the C module.
local function decode(text)
  local ok, value = pcall(cjson.decode, text)
  if ok then return value end
  return nil, value
end

local function temp_file(content)
  local name = os.tmpname()
  local file = assert(io.open(name, "wb"))
  file:write(content)
  file:close()
  return name
end

local function read_items(content, format, name)
  local path = temp_file(content)
  if name then
    local renamed = path .. name
    assert(os.rename(path, renamed))
    path = renamed
  end
  local iterator, err = input.open(path, format, decode)
  local items = {}
  if iterator then
    for item in iterator do items[#items + 1] = item end
  end
  os.remove(path)
  if not iterator then return nil, err end
  return items
end

describe("cli.args.parse", function()
  local known = {verbose = "flag", org = "value", query = "list", help = "flag"}

  it("separates options from positional words, in any order", function()
    local parsed = assert(args.parse({"get", "--org", "acme", "path", "--verbose", "--query=a=1",
      "--query", "b=2"},
      known))
    assert.same({"get", "path"}, parsed.positional)
    assert.same({org = "acme", verbose = true, query = {"a=1", "b=2"}}, parsed.options)
  end)

  it("turns dashes into underscores and knows short aliases", function()
    local parsed = assert(args.parse({"-h", "--api-key", "k"}, {api_key = "value", help = "flag"},
      {h = "help"}))
    assert.same({api_key = "k", help = true}, parsed.options)
  end)

  it("ends options at --, and keeps '-' as a word", function()
    local parsed = assert(args.parse({"x", "-", "--", "--org"}, known))
    assert.same({"x", "-", "--org"}, parsed.positional)
  end)

  it("refuses unknown options, missing values, values on flags and repeated single values", function()
    assert.matches("unknown option '%-%-nope'", select(2, args.parse({"--nope"}, known)))
    assert.equal("unknown option '--api-kye'", select(2, args.parse({"--api-kye=s3cr3t-value"}, known)))
    assert.matches("needs a value", select(2, args.parse({"--org"}, known)))
    assert.matches("takes no value", select(2, args.parse({"--verbose=1"}, known)))
    assert.matches("given twice", select(2, args.parse({"--org", "a", "--org", "b"}, known)))
  end)

  it("leaves the words after a stop word untouched", function()
    local parsed = assert(args.parse({"--verbose", "emulator", "start", "--port", "0"}, known, nil,
      function(word) return word == "emulator" end))
    assert.same({"emulator"}, parsed.positional)
    assert.same({"start", "--port", "0"}, parsed.rest)
  end)
end)

describe("cli.args.pairs", function()
  it("reads k=v words, a repeated key giving a list", function()
    assert.same({a = "1", b = {"x", "y=z"}, c = ""}, args.pairs({"a=1", "b=x", "b=y=z", "c="}, "--query"))
    assert.matches("%-%-query 'nope' is not key=value", select(2, args.pairs({"nope"}, "--query")))
  end)
end)

describe("cli.args.fields (FIELDS typing)", function()
  it("sends key=value as a string, also when it looks like a number", function()
    local fields = assert(args.fields({"phone=3301020304", "zip=007", "empty="}, decode))
    assert.equal("3301020304", fields.phone)
    assert.equal("007", fields.zip)
    assert.equal("", fields.empty)
  end)

  it("decodes key:=json", function()
    local fields = assert(args.fields({"age:=42", "ok:=true", "tags:=[]", "x:=null", 'loc:={"city":"Paris"}'},
      decode))
    assert.equal(42, fields.age)
    assert.is_true(fields.ok)
    assert.same({}, fields.tags)
    assert.equal(cjson.null, fields.x)
    assert.same({city = "Paris"}, fields.loc)
  end)

  it("splits at the first '=' so values may contain '=' and ':='", function()
    local fields = assert(args.fields({"note=a=b:=c", "url=http://x/?q=1"}, decode))
    assert.equal("a=b:=c", fields.note)
    assert.equal("http://x/?q=1", fields.url)
  end)

  it("refuses words that are not fields, invalid JSON and a key given twice", function()
    assert.matches("not key=value", select(2, args.fields({"phone"}, decode)))
    assert.matches("not key=value", select(2, args.fields({"=x"}, decode)))
    assert.matches("invalid JSON", select(2, args.fields({"age:=4x"}, decode)))
    assert.matches("given twice", select(2, args.fields({"a=1", "a=2"}, decode)))
  end)
end)

describe("cli.input CSV (RFC 4180)", function()
  it("reads a header with a PKey column and string values", function()
    local csv = "PKey,phone,firstName\r\n@a,3301020304,Amy\r\n@b,0600000000,Bob\r\n"
    local items = assert(read_items(csv, "csv"))
    assert.same({
      {line = 2, pkey = "@a", changes = {phone = "3301020304", firstName = "Amy"}},
      {line = 3, pkey = "@b", changes = {phone = "0600000000", firstName = "Bob"}},
    }, items)
  end)

  it("handles quotes, commas, doubled quotes and line breaks inside quotes", function()
    local csv = 'PKey,note\n@a,"one, two"\n@b,"say ""hi"""\n@c,"line1\nline2"\n@d,plain\n'
    local items = assert(read_items(csv))
    assert.equal("one, two", items[1].changes.note)
    assert.equal('say "hi"', items[2].changes.note)
    assert.equal("line1\nline2", items[3].changes.note)
    assert.equal(4, items[3].line)
    assert.equal("plain", items[4].changes.note)
    assert.equal(6, items[4].line)
  end)

  it("keeps UTF-8 and strips a byte order mark", function()
    local items = assert(read_items("\239\187\191PKey,lastName\n@a,Müller-Ørsted 日本\n", "csv"))
    assert.equal("Müller-Ørsted 日本", items[1].changes.lastName)
  end)

  it("skips empty lines", function()
    local items = assert(read_items("\nPKey,phone\n\n@a,1\n\r\n@b,2\n\n", "csv"))
    assert.equal(2, #items)
    assert.equal("@b", items[2].pkey)
  end)

  it("leaves a field alone for an empty cell and sends '' for a quoted empty cell", function()
    local items = assert(read_items('PKey,phone,email\n@a,,x@y.z\n@b,"",x@y.z\n', "csv"))
    assert.same({email = "x@y.z"}, items[1].changes)
    assert.same({phone = "", email = "x@y.z"}, items[2].changes)
  end)

  it("decodes JSON columns marked name:=", function()
    local items = assert(read_items('PKey,blackList:=,phone\n@a,true,"0102"\n', "csv"))
    assert.is_true(items[1].changes.blackList)
    assert.equal("0102", items[1].changes.phone)
  end)

  it("refuses a file without a PKey column, naming the columns", function()
    local items, err = read_items("email,phone\nx@y.z,1\n", "csv")
    assert.is_nil(items)
    assert.matches("no PKey column %(columns: email, phone%)", err)
  end)

  it("reports bad rows as items with an error and goes on", function()
    local items = assert(read_items('PKey,phone\n@a,1,extra\n,2\n@c,\n@d,"4"\n', "csv"))
    assert.equal(4, #items)
    assert.matches("line 2: 3 fields, the header has 2", items[1].error)
    assert.matches("line 3: empty PKey", items[2].error)
    assert.matches("line 4: no field to update", items[3].error)
    assert.same({line = 5, pkey = "@d", changes = {phone = "4"}}, items[4])
  end)

  it("reports invalid UTF-8 in a cell", function()
    local items = assert(read_items("PKey,lastName\n@a,caf\233\n", "csv"))
    assert.matches("not valid UTF%-8", items[1].error)
  end)

  it("stops with a fatal item at an unclosed quote", function()
    local items = assert(read_items('PKey,note\n@a,"never closed\n@b,x\n', "csv"))
    assert.equal(1, #items)
    assert.is_true(items[1].fatal)
    assert.matches("not closed", items[1].error)
  end)
end)

describe("cli.input NDJSON", function()
  it("reads one object per line, every key but PKey being a change", function()
    local items = assert(read_items(
      '{"PKey":"@a","phone":"3301020304","age":42}\n\n  \n{"PKey":"@b","x":null}\n',
      "ndjson"))
    assert.equal(2, #items)
    assert.same({phone = "3301020304", age = 42}, items[1].changes)
    assert.equal(4, items[2].line)
    assert.equal(cjson.null, items[2].changes.x)
  end)

  it("accepts the report's line shape and sends only its changes", function()
    local items = assert(read_items(
      '{"line":7,"PKey":"@a","ok":false,"error":"boom","changes":{"phone":"1"}}\n',
      "ndjson"))
    assert.same({phone = "1"}, items[1].changes)
  end)

  it("refuses a PKey that cannot be one path segment", function()
    local ndjson = '{"PKey":"@a/b","x":"1"}\n{"PKey":"..","x":"1"}\n{"PKey":"@a\\nb","x":"1"}\n'
    local items = assert(read_items(ndjson, "ndjson"))
    assert.matches('line 1: PKey "@a/b" cannot be a path segment', items[1].error)
    assert.matches("line 2: PKey", items[2].error)
    assert.matches('line 3: PKey "@a\\nb" cannot be a path segment', items[3].error)
  end)

  it("reports invalid lines, non-objects and a missing PKey as failed items", function()
    local items = assert(read_items('{"PKey":"@a",\n[1]\n{"phone":"1"}\n{"PKey":"@d"}\n', "ndjson"))
    assert.matches("line 1: invalid JSON", items[1].error)
    assert.matches("line 2: not a JSON object", items[2].error)
    assert.matches("line 3: no PKey", items[3].error)
    assert.matches("line 4: no field to update", items[4].error)
  end)

  it("detects the format from the extension, then from the content", function()
    assert.equal("csv", input.detect_format("x.CSV", "{"))
    assert.equal("ndjson", input.detect_format("x.jsonl", "PKey"))
    assert.equal("ndjson", input.detect_format("/tmp/stdin", '  {"PKey":1}'))
    assert.equal("csv", input.detect_format("/tmp/stdin", "PKey,phone"))
    assert.equal("ndjson", input.detect_format("x.csv", "", "ndjson"))
    assert.is_nil((input.detect_format("x", "", "xml")))
  end)
end)

describe("cli.config.resolve", function()
  local function env(values) return function(name) return values[name] end end

  it("takes flags over the environment", function()
    local settings = assert(config.resolve({org = "flag-org"}, env{
      CAMPAIGN_ORG = "env-org", CAMPAIGN_API_KEY = "key", CAMPAIGN_ACCESS_TOKEN = "tok"}))
    assert.equal("flag-org", settings.org)
    assert.equal("key", settings.api_key)
    assert.same({kind = "static", source = "CAMPAIGN_ACCESS_TOKEN", value = "tok"}, settings.token)
    assert.equal("https://mc.adobe.io", settings.base_url)
  end)

  it("uses client credentials when there is no access token", function()
    local settings = assert(config.resolve({}, env{CAMPAIGN_ORG = "o", CAMPAIGN_API_KEY = "k",
      CAMPAIGN_CLIENT_ID = "id", CAMPAIGN_CLIENT_SECRET = "secret", CAMPAIGN_IMS_URL = "http://ims"}))
    assert.same({kind = "ims", client_id = "id", client_secret = "secret"}, settings.token)
    assert.equal("http://ims", settings.ims_url)
  end)

  it("takes the emulator's values over the environment, with its client credentials", function()
    local emulator = config.parse_kv("base_url=http://127.0.0.1:1\norg=acme\napi_key=ek\nclient_id=ci\n" ..
      "client_secret=cs\naccess_token=at\nims_url=http://127.0.0.1:1\n")
    local settings = assert(config.resolve({}, env{CAMPAIGN_ORG = "real",
      CAMPAIGN_ACCESS_TOKEN = "real-token"},
      emulator))
    assert.equal("acme", settings.org)
    assert.equal("http://127.0.0.1:1", settings.base_url)
    assert.equal("ims", settings.token.kind)
    assert.equal("cs", settings.token.client_secret)
  end)

  it("names every missing setting", function()
    local settings, err = config.resolve({}, env{})
    assert.is_nil(settings)
    assert.matches("tenant id %(%-%-org or CAMPAIGN_ORG%)", err)
    assert.matches("API key %(%-%-api%-key or CAMPAIGN_API_KEY%)", err)
    assert.matches("CAMPAIGN_ACCESS_TOKEN", err)
    local _, half = config.resolve({}, env{CAMPAIGN_ORG = "o", CAMPAIGN_API_KEY = "k",
      CAMPAIGN_CLIENT_ID = "i"})
    assert.matches("client secret .* to go with the client id", half)
  end)
end)

describe("cli.output", function()
  it("redacts every secret, longest first, and leaves short values alone", function()
    local redact = output.redactor({"abcdefgh", "abcdefgh-and-more", "xyz"})
    assert.equal("token=*** key=*** short=xyz", redact("token=abcdefgh-and-more key=abcdefgh short=xyz"))
    assert.equal("a***b***", redact("aabcdefghbabcdefgh"))
  end)

  it("learns secrets later (a token fetched from IMS)", function()
    local redact, add = output.redactor({})
    assert.equal("Bearer eyJ-token-value", redact("Bearer eyJ-token-value"))
    add("eyJ-token-value")
    add(nil)
    assert.equal("Bearer ***", redact("Bearer eyJ-token-value"))
  end)

  it("formats durations", function()
    assert.equal("0.4s", output.duration(0.42))
    assert.equal("12s", output.duration(12.3))
    assert.equal("3m05s", output.duration(185))
    assert.equal("2h01m", output.duration(7260))
  end)

  it("renders the terminal bar and the plain line", function()
    local state = {done = 450, total = 1000, failed = 2, elapsed = 1.5}
    assert.equal("[##########--------------] 450/1000  45%  300/s  2 failed  ETA 1.8s",
      output.progress_bar(state))
    assert.equal("progress: 450/1000 done, 2 failed, 300/s, ETA 1.8s", output.progress_line(state))
    -- bulk-update gives the concurrency limit now (it moves with --concurrency auto)
    state.limit = 16
    assert.equal("[##########--------------] 450/1000  45%  300/s  2 failed  limit 16  ETA 1.8s",
      output.progress_bar(state))
    assert.equal("progress: 450/1000 done, 2 failed, 300/s, limit 16, ETA 1.8s", output.progress_line(state))
    state.total = nil
    assert.equal("progress: 450 done, 2 failed, 300/s, limit 16", output.progress_line(state))
  end)

  it("writes plain lines at the interval off a terminal, and a final line", function()
    local now, written = 0, {}
    local update, finish = output.progress{write = function(text) written[#written + 1] = text end,
      tty = false, clock = function() return now end, interval = 1, total = 4}
    now = 0.5; update(1, 0)
    now = 1.2; update(2, 0)
    now = 1.5; update(3, 1)
    now = 2.0; finish(4, 1)
    assert.same({"progress: 2/4 done, 0 failed, 2/s, ETA 1.2s\n",
      "progress: 4/4 done, 1 failed, 2/s, ETA 0.0s\n"},
      written)
    for _, text in ipairs(written) do assert.is_nil(text:find("\r", 1, true)) end
  end)

  it("redraws one line with carriage returns on a terminal", function()
    local now, written = 0, {}
    local update, finish = output.progress{write = function(text) written[#written + 1] = text end,
      tty = true, clock = function() return now end, total = 2}
    now = 0.2; update(1, 0)
    now = 0.4; finish(2, 0)
    assert.equal("\r", written[1]:sub(1, 1))
    assert.matches("^\r%[#+%] 2/2 100%%", written[2])
    assert.equal("\n", written[3])
  end)
end)
