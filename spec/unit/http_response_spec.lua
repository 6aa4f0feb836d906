-- campaign._http_response: the HTTP/1.1 response parser of campaign.ngx's cosocket transport
-- (src/http_response.c). It runs on every Lua; the transport itself is in spec/openresty.
local campaign = require "campaign"

local function parser(opts) return campaign._http_response(opts) end

-- Feeds text whole (or in pieces of `step` bytes) and returns the parser and the last state.
local function parse(text, opts, step)
  local p = parser(opts)
  local state, kind, msg = "head", nil, nil
  step = step or #text
  local i = 1
  while i <= #text and state do
    state, kind, msg = p:feed(text:sub(i, i + step - 1))
    i = i + step
  end
  return p, state, kind, msg
end

local CL = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
  .. "Set-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n{\"a\":\"xyz\"}"
local CHUNKED = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Y:  v  \r\n\r\n"
  .. "5;name=value;x=\"q\"\r\nhello\r\n7 ; ext\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"

describe("campaign._http_response", function()
  it("parses a Content-Length response: status, lower-case headers joined, body", function()
    local p, state = parse(CL)
    assert.equal("done", state)
    assert.equal(200, p:status())
    local h = p:headers()
    assert.equal("application/json", h["content-type"])
    assert.equal("a=1, b=2", h["set-cookie"])
    assert.equal('{"a":"xyz"}', p:body())
    assert.is_true(p:keepalive())
    assert.is_nil(p:need())
  end)

  it("p:response() gives keepalive and {status, headers, body} in one call, as the four calls do", function()
    for _, text in ipairs { CL, CHUNKED, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n" } do
      local p, state = parse(text)
      assert.equal("done", state)
      local keepalive, response = p:response()
      assert.equal(p:keepalive(), keepalive)
      assert.same({ status = p:status(), headers = p:headers(), body = p:body() }, response)
    end
    local _, response = (parse("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")):response()
    assert.same({ status = 204, headers = { connection = "close" }, body = "" }, response)
    assert.is_false((parse("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")):response())
  end)

  it("parses chunked bodies with extensions and trailers (trailers not in headers)", function()
    local p, state = parse(CHUNKED)
    assert.equal("done", state)
    assert.equal(201, p:status())
    assert.equal("hello, world", p:body())
    assert.equal("v", p:headers()["x-y"])
    assert.is_nil(p:headers()["x-trailer"])
    assert.is_true(p:keepalive())
  end)

  it("gives the same result split at every byte boundary, and byte by byte", function()
    for _, text in ipairs { CL, CHUNKED } do
      local whole = parse(text)
      for cut = 1, #text - 1 do
        local p = parser()
        assert.truthy(p:feed(text:sub(1, cut)))
        assert.equal("done", p:feed(text:sub(cut + 1)), "cut at " .. cut)
        assert.equal(whole:body(), p:body())
        assert.same(whole:headers(), p:headers())
      end
      local p, state = parse(text, nil, 1)
      assert.equal("done", state)
      assert.equal(whole:body(), p:body())
    end
  end)

  it("asks for a line in the head, then the bytes the framing says", function()
    local p = parser()
    assert.equal("line", p:need())
    p:feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert.equal(5, p:need())
    p:feed("ab")
    assert.equal(3, p:need())
    local c = parser()
    c:feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert.equal("line", c:need())
    c:feed("a\r\n")
    assert.equal(12, c:need()) -- the chunk and its CRLF
    c:feed("0123456789\r\n")
    assert.equal("line", c:need())
  end)

  it("reads until close when there is no framing, and ends it on feed(nil)", function()
    local p = parser { max_body = 100 }
    assert.equal("body", p:feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"))
    local n, mode = p:need()
    assert.equal(98, n) -- room left + 1, so a body over max_body shows
    assert.equal("close", mode)
    assert.equal("body", p:feed("def"))
    assert.equal("done", p:feed(nil))
    assert.equal("abcdef", p:body())
    assert.is_false(p:keepalive())
  end)

  it("fails a close before the end of a framed response", function()
    local p = parser()
    p:feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    local state, kind, msg = p:feed(nil)
    assert.is_nil(state)
    assert.equal("protocol", kind)
    assert.matches("closed before the end", msg)
    local _, kind2, msg2 = parser():feed(nil)
    assert.equal("protocol", kind2)
    assert.matches("before any response", msg2)
  end)

  it("has no body for HEAD, 204 and 304, and skips 1xx answers", function()
    local p, state = parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", { head = true })
    assert.equal("done", state)
    assert.equal("", p:body())
    assert.equal("done", select(2, parse("HTTP/1.1 204 No Content\r\n\r\n")))
    local q, s = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert.equal("done", s)
    assert.equal(200, q:status())
    assert.equal("ok", q:body())
  end)

  it("refuses a head larger than max_head", function()
    local text = "HTTP/1.1 200 OK\r\nX-Big: " .. string.rep("a", 200) .. "\r\n\r\n"
    local _, state, kind, msg = parse(text, { max_head = 100 })
    assert.is_nil(state)
    assert.equal("too_large", kind)
    assert.matches("max_head", msg)
    -- fed one byte at a time, too (no unbounded line buffer)
    local _, s1, k1 = parse(text, { max_head = 100 }, 1)
    assert.is_nil(s1)
    assert.equal("too_large", k1)
  end)

  it("refuses a body larger than max_body: Content-Length, chunked and until close", function()
    local _, s1, k1 = parse("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", { max_body = 10 })
    assert.is_nil(s1)
    assert.equal("too_large", k1)
    local _, s2, k2 = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n",
      { max_body = 10 })
    assert.is_nil(s2)
    assert.equal("too_large", k2)
    local _, s3, k3 = parse("HTTP/1.1 200 OK\r\n\r\n" .. string.rep("x", 11), { max_body = 10 })
    assert.is_nil(s3)
    assert.equal("too_large", k3)
    -- exactly max_body is fine
    assert.equal("done", select(2, parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
      { max_body = 10 })))
  end)

  it("refuses malformed status lines, header lines and lengths", function()
    for _, text in ipairs {
      "HTTP/2 200 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    } do
      local _, state, kind = parse(text)
      assert.is_nil(state, text)
      assert.equal("protocol", kind, text)
    end
  end)

  it("refuses bad chunk sizes and chunk data longer than its size", function()
    for _, chunks in ipairs { "zz\r\n", "\r\n", "5 x\r\n", "fffffffffffffffffff\r\n", "3\r\nabcd\r\n" } do
      local _, state, kind = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. chunks)
      assert.is_nil(state, chunks)
      assert.equal("protocol", kind, chunks)
    end
  end)

  it("is not reusable after Connection: close, HTTP/1.0 or bytes past the end", function()
    assert.is_false((parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")):keepalive())
    assert.is_false((parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")):keepalive())
    local kept = parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert.is_true(kept:keepalive())
    assert.is_false((parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab")):keepalive())
  end)

  it("raises for misuse only", function()
    assert.has_error(function() campaign._http_response { max_body = "x" } end)
    assert.has_error(function() campaign._http_response { max_body = -1 } end)
    assert.has_error(function() parser().feed({}, "x") end)
    assert.has_error(function() parser():feed({}) end)
  end)
end)
