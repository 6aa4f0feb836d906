-- The shipped internal location keeps every proxy buffer under nginx's request-pool limit.
-- A subrequest allocates from its parent request's pool; a block larger than the pool's limit
-- (4096 bytes less the pool header: 4016 on 64-bit) goes to the pool's "large" list, which
-- ngx_pfree walks from the start on every free, so each subrequest of a batch got slower than
-- the one before (10,000 GETs in one handler: 3,400 req/s with 16k/32k buffers, 19,900 with
-- 4000-byte ones). docs/openresty.md "Throughput".
local harness = require "openresty.harness"

local POOL_LIMIT = 4016

local function bytes(size)
  local n, unit = size:match("^(%d+)([kKmM]?)$")
  assert(n, "unreadable size " .. size)
  local scale = ({ k = 1024, K = 1024, m = 1024 * 1024, M = 1024 * 1024 })[unit] or 1
  return tonumber(n) * scale
end

describe("examples/openresty/campaign_proxy.conf", function()
  local conf

  setup(function()
    local f = assert(io.open(harness.repo .. "/examples/openresty/campaign_proxy.conf"))
    conf = f:read("a"):gsub("#[^\n]*", "")
    f:close()
  end)

  it("keeps proxy_buffer_size under the request pool's limit", function()
    local size = conf:match("proxy_buffer_size%s+(%w+)%s*;")
    assert.is_string(size)
    assert.is_true(bytes(size) <= POOL_LIMIT, "proxy_buffer_size " .. size .. " > " .. POOL_LIMIT)
  end)

  it("keeps each of proxy_buffers under the request pool's limit", function()
    local count, size = conf:match("proxy_buffers%s+(%d+)%s+(%w+)%s*;")
    assert.is_string(size)
    assert.is_true(tonumber(count) >= 8, "too few buffers to stream a large body")
    assert.is_true(bytes(size) <= POOL_LIMIT, "proxy_buffers size " .. size .. " > " .. POOL_LIMIT)
  end)
end)
