-- Large answers (docs/client.md "Memory"): a transfer's response buffers are given back as soon
-- as its result is in Lua, in single calls and in batch, so an idle client holds no big buffer
-- (client:stats().buffered). The answers come from a child Lua process serving a body of a
-- given size to each connection.
local campaign = require "campaign"

local LUA = os.getenv("CAMPAIGN_TEST_LUA") or (jit and "luajit" or "lua5.4")
local MiB = 1024 * 1024

local SERVER = [[
local socket = require "socket"
local size, count = tonumber(arg[1]), tonumber(arg[2])
local s = assert(socket.bind("127.0.0.1", 0, 64))
local _, port = s:getsockname()
io.stdout:write(port, "\n")
io.stdout:flush()
s:settimeout(10)
local body = '"' .. string.rep("x", size - 2) .. '"'
for _ = 1, count do
  local c = s:accept()
  if not c then break end
  c:settimeout(10)
  repeat local line = c:receive("*l") until not line or line == ""
  c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n")
  c:send(body)
  c:close()
end
]]

-- Starts the server for `count` connections; returns its port and a function that waits for
-- its end.
local function serve(size, count)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(SERVER)
  f:close()
  local pipe = assert(io.popen(LUA .. " " .. path .. " " .. size .. " " .. count))
  local port = assert(tonumber(pipe:read("*l")), "the server did not start")
  return port, function()
    pipe:close()
    os.remove(path)
  end
end

local function client(port)
  return campaign.new{org = "acme", api_key = "k", token = "t", base_url = "http://127.0.0.1:" .. port,
    retries = 0, timeout = 30, http2 = false}
end

describe("large answers", function()
  it("a batch of 8 MiB answers leaves no big buffer behind", function()
    local size, n = 8 * MiB, 6
    local port, wait = serve(size, n)
    local c = client(port)
    local requests = {}
    for i = 1, n do requests[i] = {"GET", "big/" .. i, nil, {raw = true}} end
    local held = {}
    local results = c:batch(requests, {concurrency = 3, on_result = function(i)
      held[i] = c:stats().buffered -- the others may still be receiving theirs
    end})
    wait()
    for i = 1, n do
      assert.equal(200, results[i].status)
      assert.equal(size, #results[i].body)
    end
    local stats = c:stats()
    assert.equal(4, stats.transfers) -- the single transfer and a pool of 3
    assert.truthy(stats.buffered < MiB, stats.buffered .. " bytes still buffered")
    -- while it ran, three transfers at most held an answer each
    for i = 1, n do assert.truthy(held[i] <= 3 * (size + MiB), "item " .. i .. ": " .. held[i]) end
    c:close()
  end)

  it("a single call's 8 MiB answer is not kept either", function()
    local port, wait = serve(8 * MiB, 1)
    local c = client(port)
    local body, res = c:get("big", {raw = true})
    wait()
    assert.equal(200, res.status)
    assert.equal(8 * MiB, #body)
    assert.truthy(c:stats().buffered < MiB, c:stats().buffered .. " bytes still buffered")
    c:close()
  end)

  it("stats raises on a closed client", function()
    local c = campaign.new{org = "acme", api_key = "k", token = "t"}
    assert.is_number(c:stats().buffered)
    c:close()
    assert.has_error(function() c:stats() end, "campaign.stats: client is closed")
  end)
end)
