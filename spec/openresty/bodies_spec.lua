-- Response bodies far larger than the internal location's proxy buffers (4000 bytes each, kept
-- under nginx's request-pool limit: docs/openresty.md "Throughput") arrive whole and equal to
-- what curl receives, chunked or with Content-Length, one at a time or many at
-- once; max_body still bounds them.
local harness = require "openresty.harness"

describe("campaign.ngx with response bodies larger than the proxy buffers", function()
  local srv, params

  setup(function()
    srv = harness.start { workers = 1 }
    -- the spec server answers /spec/campaign/big itself (spec/openresty/nginx.conf)
    params = { emu = { org = "spec", api_key = "spec-key", access_token = "spec-token",
      base_url = srv.url } }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  local function eval(code, extra)
    local p = { emu = params.emu }
    for k, v in pairs(extra or {}) do p[k] = v end
    return srv:eval(code, p)
  end

  local MB3 = 3 * 1024 * 1024

  for _, framing in ipairs { "chunked", "content-length" } do
    it("returns a 3 MB body (" .. framing .. ") whole, byte for byte as curl receives it", function()
      local query = "bytes=" .. MB3 .. (framing == "content-length" and "&length=1" or "")
      local r = eval([[
        local query = { bytes = params.bytes, length = params.length }
        local body, res = client():get("big", { query = query })
        local raw = client():get("big", { query = query, raw = true })
        return { len = #body.data, head = body.data:sub(1, 30), status = res.status,
          raw_len = #raw, raw_md5 = ngx.md5(raw), chunked = res.headers["content-length"] == nil }
      ]], { bytes = MB3, length = framing == "content-length" and 1 or nil })
      local curl_md5 = harness.sh("curl -sf '" .. srv.url .. "/spec/campaign/big?" .. query
        .. "' | md5sum"):match("^(%x+)")
      assert.equal(200, r.status)
      assert.equal(MB3, r.len)
      assert.equal("abcdefghijklmnopqrstuvwxyzabcd", r.head)
      assert.equal(MB3 + 11, r.raw_len)
      assert.equal(curl_md5, r.raw_md5)
      assert.equal(framing == "chunked", r.chunked)
    end)
  end

  it("runs 40 concurrent 300 KB GETs in a batch, every body whole", function()
    local r = eval([[
      local requests = {}
      for i = 1, 40 do requests[i] = { "GET", "big", nil, { query = { bytes = params.bytes + i } } } end
      local out = {}
      for i, res in ipairs(client():batch(requests, { concurrency = 16 })) do
        out[i] = res.body and #res.body.data or tostring(res.err)
      end
      return out
    ]], { bytes = 300 * 1024 })
    assert.equal(40, #r)
    for i = 1, 40 do assert.equal(300 * 1024 + i, r[i]) end
  end)

  it("fails with kind 'too_large' past max_body, chunked or with Content-Length", function()
    local r = eval([[
      local out = {}
      for _, length in ipairs { false, true } do
        local _, err = client{ max_body = 1024 * 1024 }:get("big",
          { query = { bytes = params.bytes, length = length and 1 or nil } })
        out[#out + 1] = { kind = err and err.kind, max_body = err and err.max_body,
          attempts = err and err.attempts }
      end
      return out
    ]], { bytes = MB3 })
    for _, one in ipairs(r) do
      assert.equal("too_large", one.kind)
      assert.equal(1024 * 1024, one.max_body)
      assert.equal(1, one.attempts)
    end
  end)
end)
