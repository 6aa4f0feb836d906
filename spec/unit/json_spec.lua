-- campaign.encode / campaign.decode / campaign.null / campaign.array / campaign.is_array:
-- every rule of design.md's JSON table, both ways (docs/json.md).
local campaign = require "campaign"
local cjson = require "cjson"

local encode, decode = campaign.encode, campaign.decode
local has_integers = math.type ~= nil          -- Lua 5.3+; LuaJIT, 5.1 and 5.2 have doubles only
local unpack = table.unpack or unpack

local same = require "same" -- spec/support/same.lua: deep equality, numbers by value

-- Like same(), and on Lua 5.3+ an integer must stay an integer and a float a float.
local function identical(a, b)
  if type(a) == "number" and type(b) == "number" and has_integers then
    return math.type(a) == math.type(b) and a == b and (a ~= 0 or 1 / a == 1 / b)
  end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not identical(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- The message of the error raised by f(...), or nil.
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return nil end
  return tostring(err)
end

-- A reference escaper, written from RFC 8259 §7, to compare encode's fast paths against.
local function reference_string(s)
  local short = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
    return short[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

describe("campaign JSON", function()

  describe("module surface", function()
    it("exports encode, decode, array, is_array and null", function()
      assert.is_function(campaign.encode)
      assert.is_function(campaign.decode)
      assert.is_function(campaign.array)
      assert.is_function(campaign.is_array)
      assert.equal("userdata", type(campaign.null))
    end)

    it("uses the same null as lua-cjson, so values from either library mix", function()
      assert.equal(cjson.null, campaign.null)
      assert.equal("null", encode(cjson.null))
      assert.equal(cjson.null, decode("null"))
      assert.equal('{"a":null}', cjson.encode(decode('{"a":null}')))
      assert.equal('[null]', encode(cjson.decode("[null]")))
    end)
  end)

  describe("integers", function()
    it("round-trips 123456789012345 exactly, where lua-cjson 2.1.0 keeps 14 digits", function()
      assert.equal("123456789012345", encode(123456789012345))
      assert.equal(123456789012345, decode("123456789012345"))
      assert.equal(123456789012345, decode(encode({ id = 123456789012345 })).id)
      if cjson._VERSION == "2.1.0" then   -- Debian's build: the reason the client does not use it
        assert.equal("1.2345678901234e+14", cjson.encode(123456789012345))
        assert.not_equal(123456789012345, cjson.decode(cjson.encode(123456789012345)))
      end
    end)

    it("writes integers without a fraction and reads them back as integers", function()
      for _, n in ipairs { 0, 1, -1, 42, -2147483648, 4294967296, 999999999999 } do
        assert.equal(string.format("%d", n), encode(n))
        assert.is_true(identical(n, decode(string.format("%d", n))))
      end
    end)

    if has_integers then
      it("is exact over the whole 64-bit range (Lua 5.3+)", function()
        local cases = {
          { math.maxinteger, "9223372036854775807" },
          { math.mininteger, "-9223372036854775808" },
          { 9007199254740993, "9007199254740993" },           -- 2^53 + 1
          { -9007199254740993, "-9007199254740993" },
          { 1234567890123456789, "1234567890123456789" },
        }
        for _, case in ipairs(cases) do
          local n, text = case[1], case[2]
          assert.equal(text, encode(n))
          local back = decode(text)
          assert.equal("integer", math.type(back))
          assert.equal(n, back)
        end
      end)

      it("reads integers beyond 64 bits as floats (Lua 5.3+)", function()
        local above = decode("9223372036854775808")
        assert.equal("float", math.type(above))
        assert.equal(2.0 ^ 63, above)
        local below = decode("-9223372036854775809")
        assert.equal("float", math.type(below))
        assert.equal(-(2.0 ^ 63), below)
        assert.equal("float", math.type(decode("123456789012345678901234567890")))
      end)

      it("reads a number with a fraction or an exponent as a float (Lua 5.3+)", function()
        for _, text in ipairs { "1.0", "1e2", "1E2", "-0.5", "10e-1", "0e0" } do
          assert.equal("float", math.type(decode(text)), text)
        end
        assert.equal(100.0, decode("1e2"))
        assert.equal("integer", math.type(decode("-0")))
      end)
    else
      it("reads every number as a double, exact up to 2^53 (LuaJIT, Lua 5.1 and 5.2)", function()
        assert.equal(9007199254740992, decode("9007199254740992"))
        assert.equal(2 ^ 53, decode("9007199254740993"))     -- rounded to the nearest double
        assert.equal(2 ^ 63, decode("9223372036854775807"))
        assert.equal(-(2 ^ 63), decode("-9223372036854775808"))
        assert.equal("9007199254740991", encode(2 ^ 53 - 1))
      end)
    end
  end)

  describe("floats", function()
    it("writes the shortest text that reads back to the same double", function()
      local cases = {
        { 0.1, "0.1" }, { 1.5, "1.5" }, { -2.25, "-2.25" }, { 1e300, "1e+300" },
        { 1 / 3, "0.3333333333333333" }, { 0.1 + 0.2, "0.30000000000000004" },
        { 2.5e-8, "2.5e-08" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 4.9406564584124654e-324, "5e-324" }, { 2.2250738585072014e-308, "2.2250738585072014e-308" },
        { 1e-310, "1e-310" }, { 123.456, "123.456" },
      }
      for _, case in ipairs(cases) do
        assert.equal(case[2], encode(case[1]))
        assert.equal(case[1], decode(case[2]))
      end
    end)

    it("round-trips many doubles exactly", function()
      local seed = 7
      for _ = 1, 2000 do
        seed = (seed * 69069 + 1) % 4294967296
        local x = (seed / 4294967296 - 0.5) * 10 ^ (seed % 40 - 20)
        local text = encode(x)
        assert.equal(x, decode(text), text)
        assert.is_true(#text <= 24, text)
      end
    end)

    it("writes integral floats below 2^53 as integers", function()
      assert.equal("3", encode(3.0))
      assert.equal("-12", encode(-12.0))
      assert.equal("9007199254740991", encode(2.0 ^ 53 - 1))
      assert.equal("0", encode(0.0))
      if has_integers then assert.equal("integer", math.type(decode(encode(3.0)))) end
    end)

    it("writes integral floats from 2^53 on so that they read back as floats", function()
      assert.equal("9007199254740992.0", encode(2.0 ^ 53))
      assert.equal("1e+100", encode(1e100))
      assert.equal(2.0 ^ 53, decode("9007199254740992.0"))
      assert.equal(2.0 ^ 63, decode(encode(2.0 ^ 63)))
      if has_integers then
        assert.equal("float", math.type(decode(encode(2.0 ^ 53))))
        assert.equal("float", math.type(decode(encode(2.0 ^ 63))))
      end
    end)

    it("writes -0.0 as -0.0 so that it reads back as -0.0", function()
      local text = encode(-0.0)
      assert.equal("-0.0", text)
      local back = decode(text)
      assert.equal(0, back)
      assert.equal(-math.huge, 1 / back)
    end)

    it("uses '.' as the decimal point whatever the C locale says", function()
      local previous = os.setlocale(nil, "numeric")
      local locale
      for _, name in ipairs { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" } do
        if os.setlocale(name, "numeric") then
          locale = name
          break
        end
      end
      if not locale then
        -- scripts/run-tests builds one (localedef into build/locale, LOCPATH); by hand the same
        pending("no locale with a decimal comma is installed")
        return
      end
      finally(function() os.setlocale(previous, "numeric") end)
      local text = encode({ 1.5, 0.1, -2.5e-8, 1e300, 2.0 ^ 53 })
      local values = decode("[1.5,2.5e-3,-0.125E1]")
      os.setlocale(previous, "numeric")
      assert.equal("[1.5,0.1,-2.5e-08,1e+300,9007199254740992.0]", text)
      assert.is_true(same({ 1.5, 0.0025, -1.25 }, values))
    end)

    it("refuses NaN and infinities, naming the key path", function()
      assert.matches("NaN at %$%.score$", raised(encode, { score = 0 / 0 }))
      assert.matches("infinity at %$%.list%[2%]$", raised(encode, { list = { 1, math.huge } }))
      assert.matches("infinity at %$$", raised(encode, -math.huge))
    end)

    it("reads numbers beyond the range of a double as an error, tiny ones as 0", function()
      local v, err = decode("[1, 1e400]")
      assert.is_nil(v)
      assert.equal("json", err.kind)
      assert.equal(4, err.offset)
      assert.is_nil((decode("-1e999")))
      assert.equal(0, decode("1e-400"))
    end)
  end)

  describe("strings", function()
    it("escapes quotes, backslashes and control characters, and not '/'", function()
      assert.equal([["a\"b\\c/d"]], encode('a"b\\c/d'))
      assert.equal([["\b\f\n\r\t"]], encode("\b\f\n\r\t"))
      assert.equal([["\u0000\u0001\u001f"]], encode("\0\1\31"))
      assert.equal('"\127"', encode("\127"))
      assert.equal("a/b", decode([["a\/b"]]))
    end)

    it("agrees with a reference escaper wherever the special byte falls", function()
      local specials = { '"', "\\", "\n", "\0", "\31", "\127", "é", "€", "𝄞" }
      for _, special in ipairs(specials) do
        for before = 0, 19 do
          for _, after in ipairs { 0, 1, 7, 8, 9 } do
            local s = ("a"):rep(before) .. special .. ("z"):rep(after)
            assert.equal(reference_string(s), encode(s))
            assert.equal(s, decode(encode(s)))
          end
        end
      end
    end)

    it("passes valid UTF-8 through unescaped", function()
      local s = "café – 日本 – 𝄞 – \244\143\191\191"  -- U+10FFFF as bytes: \u{} is 5.3+ only
      assert.equal('"' .. s .. '"', encode(s))
      assert.equal(s, decode('"' .. s .. '"'))
    end)

    it("reads \\u escapes, surrogate pairs included, as UTF-8", function()
      assert.equal("é", decode([["\u00e9"]]))
      assert.equal("€", decode([["\u20AC"]]))
      assert.equal("𝄞", decode([["\ud834\udd1e"]]))
      assert.equal("\244\143\191\191", decode([["\uDBFF\uDFFF"]]))
      assert.equal('"\\', decode([["\"\\"]]))
    end)

    it("reads \\u0000 as an embedded NUL, and writes NUL as \\u0000", function()
      local s = decode([["a\u0000b"]])
      assert.equal(3, #s)
      assert.equal("a\0b", s)
      assert.equal([["a\u0000b"]], encode("a\0b"))
      assert.equal("k\0", next(decode([[{"k\u0000":1}]])))
    end)

    local invalid_utf8 = {
      ["a lone continuation byte"] = "\128",
      ["a truncated sequence"] = "\226\130",
      ["an overlong '/'"] = "\192\175",
      ["an overlong 3-byte NUL"] = "\224\128\128",
      ["a UTF-16 surrogate encoded in UTF-8"] = "\237\160\128",
      ["a code point above U+10FFFF"] = "\244\144\128\128",
      ["an invalid lead byte"] = "\255",
      ["Latin-1 text"] = "\233t\233",
    }

    for what, bytes in pairs(invalid_utf8) do
      it("refuses " .. what .. " in a string or a key, both ways, with the key path", function()
        assert.matches("invalid UTF%-8 in string at %$%.location%.city$",
          raised(encode, { location = { city = "x" .. bytes } }))
        assert.matches("invalid UTF%-8 in string at %$%[2%]$", raised(encode, { "ok", bytes }))
        assert.matches("invalid UTF%-8 in key at %$%.a%[\"", raised(encode, { a = { [bytes] = 1 } }))
        local v, err = decode('["ok","x' .. bytes .. '"]')
        assert.is_nil(v)
        assert.equal("json", err.kind)
        assert.equal(8, err.offset)
        assert.matches("offset 8", err.message)
        assert.is_nil((decode('{"' .. bytes .. '":1}')))
        assert.is_nil((decode('["\\n' .. bytes .. '"]')))    -- the string with escapes path
      end)
    end

    it("refuses lone UTF-16 surrogates in \\u escapes", function()
      for _, text in ipairs { [["\ud800"]], [["\udc00"]], [["x\ud800\u0041"]], [["\ud800\ud800"]],
                              [["\udd1e\ud834"]], [[{"\ud800":1}]] } do
        local v, err = decode(text)
        assert.is_nil(v, text)
        assert.matches("surrogate", err.message)
      end
      local _, err = decode([["abc\ud800"]])
      assert.equal(4, err.offset)
    end)
  end)

  describe("tables", function()
    it("writes keys 1..n as an array and string keys as an object", function()
      assert.equal("[1,2,3]", encode { 1, 2, 3 })
      assert.equal('{"a":1}', encode { a = 1 })
      assert.equal('[[],{"x":[true,false]}]', encode { campaign.array(), { x = { true, false } } })
      local t = { 1, 2, 3 }
      t[4] = 4
      t[5] = 5
      assert.equal("[1,2,3,4,5]", encode(t))
    end)

    it("writes arrays whose keys sit in the hash part in index order", function()
      local t = {}
      for i = 50, 1, -1 do t[i] = i end
      local expected = {}
      for i = 1, 50 do expected[i] = tostring(i) end
      assert.equal("[" .. table.concat(expected, ",") .. "]", encode(t))
    end)

    it("writes an empty table as an object unless it carries the array metatable", function()
      assert.equal("{}", encode {})
      assert.equal("[]", encode(campaign.array {}))
      assert.equal("[]", encode(campaign.array()))
      assert.equal('{"data":{},"tags":[]}',
        encode({ tags = campaign.array(), data = {} }, { sort_keys = true }))
    end)

    it("reads arrays as tables with the array metatable, so [] stays []", function()
      local v = decode('{"tags":[],"data":{},"list":[1,[2]]}')
      assert.is_true(campaign.is_array(v.tags))
      assert.is_false(campaign.is_array(v.data))
      assert.is_false(campaign.is_array(v))
      assert.is_true(campaign.is_array(v.list))
      assert.is_true(campaign.is_array(v.list[2]))
      assert.equal('{"data":{},"list":[1,[2]],"tags":[]}', encode(v, { sort_keys = true }))
      assert.equal("[]", encode(decode("[]")))
      assert.equal("{}", encode(decode("{}")))
    end)

    it("keeps the length of arrays that hold nulls", function()
      local v = decode("[null,1,null]")
      assert.equal(3, #v)
      assert.equal(campaign.null, v[1])
      assert.equal(campaign.null, v[3])
      assert.equal("[null,1,null]", encode(v))
    end)

    it("refuses mixed keys, naming the key path", function()
      assert.matches("mixed string and integer keys at %$$", raised(encode, { 1, 2, x = 3 }))
      assert.matches("mixed string and integer keys at %$%.a%.b$",
        raised(encode, { a = { b = { x = 1, [1] = 2 } } }))
    end)

    it("refuses sparse arrays, naming the key path", function()
      assert.matches("sparse array.* at %$%.tags$", raised(encode, { tags = { 1, nil, 3 } }))
      assert.matches("sparse array.* at %$$", raised(encode, { [2] = "b" }))
      assert.matches("sparse array.* at %$%[1%]$", raised(encode, { { [1] = 1, [10] = 10 } }))
      assert.matches("out of range.* at %$%.z$", raised(encode, { z = { [0] = 1, 2 } }))
      assert.matches("out of range.* at %$$", raised(encode, { [-1] = 1 }))
    end)

    it("refuses keys that are neither strings nor integers", function()
      assert.matches("non%-integer number key 1%.5 at %$$", raised(encode, { [1.5] = 1 }))
      assert.matches("key of type boolean at %$%.a$", raised(encode, { a = { [true] = 1 } }))
      assert.matches("key of type table at %$$", raised(encode, { [{}] = 1 }))
      assert.matches("non%-integer number key", raised(encode, { a = 1, [2.5] = 1 }))
    end)

    it("refuses string keys in a table marked as an array", function()
      assert.matches("string key in a table marked as an array at %$%.t$",
        raised(encode, { t = campaign.array { x = 1 } }))
      assert.matches("string key in a table marked as an array",
        raised(encode, campaign.array { 1, x = 1 }))
    end)

    it("refuses functions, threads and userdata other than null, naming the key path", function()
      assert.matches("cannot encode a function at %$%.f$", raised(encode, { f = print }))
      assert.matches("cannot encode a thread at %$%[1%]$",
        raised(encode, { coroutine.create(function() end) }))
      assert.matches("cannot encode a userdata at %$%.out$", raised(encode, { out = io.stdout }))
      assert.matches("cannot encode a function at %$$", raised(encode, print))
    end)

    it("detects cycles and says so", function()
      local t = {}
      t.self = t
      assert.matches("cycle at %$%.self %(the same table as %$%)", raised(encode, t))
      local a = { name = "a", list = {} }
      a.list[1] = { parent = a }
      assert.matches("cycle at %$%.list%[1%]%.parent %(the same table as %$%)", raised(encode, a))
      local inner = {}
      inner[1] = inner
      assert.matches("cycle at %$%.x%[1%] %(the same table as %$%.x%)", raised(encode, { x = inner }))
    end)

    it("accepts the same table twice when it is not its own ancestor", function()
      local shared = { 1, 2 }
      assert.equal('{"a":[1,2],"b":[1,2]}', encode({ a = shared, b = shared }, { sort_keys = true }))
    end)

    local function nested(depth)
      local root = {}
      local t = root
      for _ = 2, depth do
        t[1] = {}
        t = t[1]
      end
      return root
    end

    it("accepts 1000 levels of nesting and refuses 1001, both ways", function()
      local text = encode(nested(1000))
      assert.equal(("["):rep(999) .. "{}" .. ("]"):rep(999), text)
      assert.is_table(decode(text))
      assert.matches("nesting deeper than 1000 at %$%[1%]%[1%].*%(%d+ more%)", raised(encode, nested(1001)))
      local deep = ("["):rep(1001) .. ("]"):rep(1001)
      local v, err = decode(deep)
      assert.is_nil(v)
      assert.equal("json", err.kind)
      assert.equal(1000, err.offset)
      assert.matches("nesting deeper than 1000", err.message)
      assert.is_table(decode(("["):rep(1000) .. ("]"):rep(1000)))
    end)

    it("survives a very deep document without crashing", function()
      local v, err = decode(("["):rep(100000))
      assert.is_nil(v)
      assert.equal(1000, err.offset)
      v, err = decode(('{"a":'):rep(100000))
      assert.is_nil(v)
      assert.equal("json", err.kind)
    end)

    it("quotes keys that are not identifiers in key paths", function()
      assert.matches('at %$%["first name"%]$', raised(encode, { ["first name"] = print }))
      assert.matches('at %$%.a%["%[x%]\\"y"%]$', raised(encode, { a = { ['[x]"y'] = print } }))
      assert.matches('at %$%["\\x01"%]$', raised(encode, { ["\1"] = print }))
      assert.matches('at %$%["café"%]$', raised(encode, { ["café"] = print }))
    end)

    it("ignores metatables other than the array one, and reads tables raw", function()
      local t = setmetatable({ a = 1 }, { __index = function() return "x" end,
                                          __pairs = function() error("not used") end })
      assert.equal('{"a":1}', encode(t))
    end)
  end)

  describe("campaign.array and campaign.is_array", function()
    it("marks a table (or a new one) and returns it", function()
      local t = { 1, 2 }
      assert.equal(t, campaign.array(t))
      assert.is_true(campaign.is_array(t))
      assert.equal(t, campaign.array(t))                 -- marking twice is fine
      local fresh = campaign.array()
      assert.is_table(fresh)
      assert.is_nil(next(fresh))
      assert.is_true(campaign.is_array(fresh))
    end)

    it("refuses a table that already has another metatable, and non-tables", function()
      assert.matches("another metatable", raised(campaign.array, setmetatable({}, {})))
      assert.matches("table expected", raised(campaign.array, "x"))
    end)

    it("is_array is false for anything else", function()
      assert.is_false(campaign.is_array({}))
      assert.is_false(campaign.is_array(setmetatable({}, {})))
      assert.is_false(campaign.is_array("[]"))
      assert.is_false(campaign.is_array(nil))
    end)
  end)

  describe("encode", function()
    it("writes scalars at the top level", function()
      assert.equal('"x"', encode("x"))
      assert.equal("true", encode(true))
      assert.equal("false", encode(false))
      assert.equal("null", encode(campaign.null))
      assert.equal("null", encode(nil))
      assert.equal("7", encode(7))
    end)

    it("raises when called without a value", function()
      assert.matches("bad argument #1", raised(encode))
    end)

    it("sorts keys by bytes with sort_keys = true", function()
      local v = { b = 1, a = 2, B = 3, ["é"] = 4, aa = 5, c = { z = 1, y = { 2, { d = 1, c = 2 } } } }
      assert.equal('{"B":3,"a":2,"aa":5,"b":1,"c":{"y":[2,{"c":2,"d":1}],"z":1},"é":4}',
        encode(v, { sort_keys = true }))
    end)

    it("writes pretty JSON with 2-space indents and sorted keys", function()
      local v = { name = "x", tags = campaign.array(), data = {},
                  list = { 1, { b = true, a = campaign.null } } }
      local expected = table.concat({
        "{",
        '  "data": {},',
        '  "list": [',
        "    1,",
        "    {",
        '      "a": null,',
        '      "b": true',
        "    }",
        "  ],",
        '  "name": "x",',
        '  "tags": []',
        "}",
      }, "\n")
      assert.equal(expected, encode(v, { pretty = true }))
      assert.equal("1", encode(1, { pretty = true }))
      assert.equal("[\n  1,\n  2\n]", encode({ 1, 2 }, { pretty = true }))
      assert.is_true(same(v, decode(encode(v, { pretty = true }))))
    end)

    it("refuses unknown or ill-typed options", function()
      assert.matches("unknown option 'indent'", raised(encode, {}, { indent = 2 }))
      assert.matches("option 'pretty' must be a boolean", raised(encode, {}, { pretty = 1 }))
      assert.matches("table expected", raised(encode, {}, "pretty"))
      assert.equal("{}", encode({}, nil))
    end)

    it("recovers after an error deep inside a large document", function()
      local big = {}
      for i = 1, 5000 do big[i] = { id = i, name = ("n"):rep(20) } end
      big[4000].name = print
      assert.matches("cannot encode a function at %$%[4000%]%.name$", raised(encode, big))
      big[4000].name = "ok"
      local text = encode(big)
      assert.is_true(#text > 100000)
      assert.is_true(same(big, decode(text)))
    end)

    it("can be called with sorted keys on objects too big for the first buffer", function()
      local t = {}
      for i = 1, 3000 do t["key" .. i] = { i, { ["k" .. i] = i } } end
      assert.is_true(same(t, decode(encode(t, { sort_keys = true }))))
      assert.is_true(same(t, decode(encode(t, { pretty = true }))))
    end)
  end)

  describe("decode", function()
    it("raises when the argument is not a string", function()
      assert.matches("bad argument #1.*string expected, got number", raised(decode, 12))
      assert.matches("string expected, got no value", raised(decode))
      assert.matches("string expected, got nil", raised(decode, nil))
      assert.matches("string expected, got table", raised(decode, {}))
    end)

    it("returns nil and a json error with the byte offset for invalid JSON", function()
      local cases = {
        { "[1,2", 4 }, { "", 0 }, { "   ", 3 }, { '{"a":1}x', 7 }, { "[1,]", 3 }, { "[1 2]", 3 },
        { '{"a" 1}', 5 }, { "{]", 1 }, { "  x", 2 }, { '["a\tb"]', 3 }, { "[01]", 1 },
        { "[true, fals]", nil }, { '{"a":tru}', nil }, { '{"a":"b",}', nil }, { "[1,2,3]]", nil },
      }
      for _, case in ipairs(cases) do
        local v, err = decode(case[1])
        assert.is_nil(v, case[1])
        assert.equal("json", err.kind)
        assert.is_number(err.offset)
        assert.is_true(err.offset >= 0 and err.offset <= #case[1])
        if case[2] then assert.equal(case[2], err.offset, case[1]) end
        assert.matches("offset " .. err.offset, err.message)
        assert.matches("offset " .. err.offset, tostring(err))
      end
    end)

    it("refuses form feed and vertical tab as whitespace but reads them escaped", function()
      for _, text in ipairs { "[\f]", "[1,\f2]", "\f1", "{\v}" } do
        local v, err = decode(text)
        assert.is_nil(v, text)
        assert.equal(text:find("[\f\v]") - 1, err.offset)
      end
      assert.equal("\f\v", decode([["\f\u000b"]]))
      assert.is_nil((decode('["\f"]')))                      -- a raw control character
      assert.is_true(same({ 1 }, decode(" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n")))
    end)

    -- json.c decodes texts up to 2 KiB with memory on the C stack and starts again with heap
    -- memory when one needs more (many tokens, deep nesting): both ways must agree.
    it("decodes documents of every size and shape around the small-document limit alike", function()
      for n = 600, 1100, 7 do
        local items = {}
        for i = 1, n do items[i] = tostring(i % 10) end
        local text = "[" .. table.concat(items, ",") .. "]"
        local v = assert(decode(text))
        assert.equal(n, #v)
        assert.equal(text, encode(v))
        local _, err = decode(text:sub(1, -2) .. ",]")      -- the same with an error at the end
        assert.equal(#text, err.offset)                     -- the offending "]"
      end
      for depth = 20, 60 do
        local text = ("["):rep(depth) .. '"x"' .. ("]"):rep(depth)
        assert.equal(text, encode(assert(decode(text))))
        local v, err = decode(("["):rep(depth) .. '"\255"' .. ("]"):rep(depth))
        assert.is_nil(v)
        assert.equal(depth + 1, err.offset)
      end
      local keys = {}
      for i = 1, 150 do keys[i] = string.format('"k%03d":"%s"', i, ("v"):rep(i % 5)) end
      local text = "{" .. table.concat(keys, ",") .. "}"
      local v = assert(decode(text))
      assert.equal("vvvv", v.k004)
      assert.equal(text, encode(v, { sort_keys = true }))
    end)

    it("lets the last of duplicate keys win", function()
      assert.equal(2, decode('{"a":1,"a":2}').a)
      assert.equal(campaign.null, decode('{"a":1,"a":null}').a)
    end)

    it("reads top-level scalars", function()
      assert.equal(1, decode("1"))
      assert.equal("x", decode('"x"'))
      assert.equal(true, decode("true"))
      assert.equal(false, decode(" false "))
      assert.equal(campaign.null, decode("null"))
    end)

    it("reads an ACS profile and writes it back unchanged", function()
      local text = '{"PKey":"@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb","age":34,"birthDate":"1985-08-17",' ..
        '"blackList":false,"created":"2019-09-25 00:19:14.569Z","cusScore":12.75,' ..
        '"cusCrmId":12345678901234,"email":"johndoe@mail.com","gender":"unknown",' ..
        '"location":{"city":"Zürich","zipCode":"8001"},"tags":[],"title":null,' ..
        '"subscriptions":{"href":"https://mc.adobe.io/acme/campaign/profileAndServices/profile/@x/' ..
        'subscriptions/"}}'
      local profile = assert(decode(text))
      assert.equal(text:len(), encode(profile):len())
      assert.is_true(identical(profile, decode(encode(profile))))
      local sorted = encode(profile, { sort_keys = true })
      assert.equal(sorted, encode(decode(encode(profile)), { sort_keys = true }))
      assert.equal(12345678901234, profile.cusCrmId)
      assert.equal("Zürich", profile.location.city)
    end)

    it("round-trips random documents exactly", function()
      local seed = 99
      local function rand(n)
        seed = (seed * 69069 + 1) % 4294967296
        return math.floor(seed / 65536) % n
      end
      local function value(depth)
        local pick = rand(depth > 3 and 6 or 8)
        if pick == 0 then return rand(2) == 0
        elseif pick == 1 then return campaign.null
        elseif pick == 2 then return rand(2000000) - 1000000
        elseif pick == 3 then return (rand(2000000) * 2 - 1999999) / 64     -- never integral
        elseif pick == 4 or pick == 5 then
          local chars = { "a", "é", "\n", '"', "\\", "/", "\0", "𝄞", "z", " " }
          local s = {}
          for i = 1, rand(12) do s[i] = chars[rand(#chars) + 1] end
          return table.concat(s)
        elseif pick == 6 then
          local t = campaign.array()
          for i = 1, rand(5) do t[i] = value(depth + 1) end
          return t
        else
          local t = {}
          for _ = 1, rand(5) do t["k" .. rand(100)] = value(depth + 1) end
          return t
        end
      end
      for _ = 1, 300 do
        local v = value(0)
        local text = encode(v, { sort_keys = true })
        local back = decode(text)
        assert.is_true(identical(v, back), text)
        assert.equal(text, encode(back, { sort_keys = true }))
      end
    end)
  end)

  describe("cross-check with lua-cjson", function()
    -- Values lua-cjson handles: numbers with at most 14 significant digits, no '/'.
    local samples = {
      { a = 1, b = "two", c = { 1, 2, 3 }, d = { e = { f = false } }, g = cjson.null },
      { "é", "€", "𝄞", "\0", "\n\t\"\\", 0.5, -1.25, 1e-7, 123456789012 },
      { profile = { email = "amy.dakota@mail.com", age = 34, blackList = false,
                    location = { city = "Paris", zipCode = "75001" } } },
      { 1, { 2, { 3, { 4 } } } },
      "plain", 42, -0.75, true,
    }

    it("decodes what lua-cjson encodes to the same values", function()
      for _, v in ipairs(samples) do
        assert.is_true(same(v, decode(cjson.encode(v))), cjson.encode(v))
      end
    end)

    it("encodes what lua-cjson decodes to the same values", function()
      for _, v in ipairs(samples) do
        assert.is_true(same(v, cjson.decode(encode(v))), encode(v))
      end
    end)

    it("reads lua-cjson's output of a listing of profiles the same way lua-cjson does", function()
      local listing = { content = {}, count = { href = "x" }, serverSidePagination = true }
      for i = 1, 200 do
        listing.content[i] = { PKey = "@" .. i, age = i % 90, email = "p" .. i .. "@mail.com",
                               score = i / 4, tags = { "a", "b" } }
      end
      local text = cjson.encode(listing)
      assert.is_true(same(cjson.decode(text), decode(text)))
      assert.is_true(same(listing, cjson.decode(encode(listing))))
    end)
  end)

  describe("ASCII", function()
    it("round-trips every ASCII byte and escapes it like the reference escaper", function()
      local bytes = {}
      for b = 0, 127 do bytes[#bytes + 1] = b end
      local s = string.char(unpack(bytes))
      assert.equal(s, decode(encode(s)))
      assert.equal(reference_string(s), encode(s))
    end)
  end)
end)
