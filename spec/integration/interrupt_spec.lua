-- campaign.trap_signals(): SIGINT and SIGTERM stop the libcurl client promptly (docs/client.md
-- "Interrupts"). Each case runs a child Lua process (the flavour under test) against a loopback
-- server this process plays by hand (accepting, answering or holding connections), sends the
-- child a signal with kill(1), and reads what the child printed.
local socket = require "socket"

local child_lua = require "child_lua"
local FLAVOUR = child_lua.flavour

-- Under scripts/memcheck the children run under the same tool as this process
-- (spec/support/child_lua.lua); the sanitized interpreter is not lua.c: it has no Ctrl-C hook.
-- Both are much slower: the time limits stretch.
local MEMCHECK = child_lua.memcheck
local SLOW = MEMCHECK and 20 or 1
local INTERPRETER = child_lua.command()

-- What every child script starts with: the module, a client on the loopback port (arg[1]),
-- `say(...)`, one tab-separated line on stderr (unbuffered: the parent reads the lines as they
-- come, in order), and `show`, one such line per result.
local PRELUDE = [[
package.cpath = "build/]] .. FLAVOUR .. [[/?.so;" .. package.cpath
package.path = "lua/?.lua;" .. package.path
local campaign = require "campaign"
local port = tonumber(arg[1])
local function client(extra)
  local opts = {org = "acme", api_key = "k", token = "t", base_url = "http://127.0.0.1:" .. port,
    retries = 0, timeout = ]] .. 5 * SLOW .. [[, http2 = false}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return campaign.new(opts)
end
local function say(...)
  local fields = {...}
  for i = 1, select("#", ...) do fields[i] = tostring(fields[i]) end
  io.stderr:write(table.concat(fields, "\t"), "\n")
end
local function show(tag, i, err, attempts)
  say(tag, i, err and err.kind or "ok", err and err.sent, attempts or (err and err.attempts),
    err and err.message or "", err and tostring(err) or "")
end
]]

local unpack = table.unpack or unpack
local children = {}

local function start_child(script, port)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(PRELUDE, script)
  f:close()
  local pipe = assert(io.popen("sh -c 'echo $$; exec " .. INTERPRETER .. " " .. path .. " " .. port
    .. "' 2>&1"))
  local pid = assert(tonumber(pipe:read("*l")), "no pid from the child")
  local child = {pid = pid, pipe = pipe, path = path, seen = {}}
  children[#children + 1] = child
  return child
end

-- Reads the child's lines until one equals `text` (a sync point); they are parsed at the end
-- with the rest. Returns whether it came.
local function wait_for(child, text)
  for line in child.pipe:lines() do
    child.seen[#child.seen + 1] = line
    if line == text then return true end
  end
  return false
end

local function signal(child, name)
  child.killed_at = socket.gettime()
  os.execute("kill -" .. name .. " " .. child.pid)
end

-- Waits for the child's end; returns its output parsed: results[i] = {kind, sent, attempts,
-- message, text}, lines[tag] = the other fields of the first line with that tag, and the
-- seconds from the signal to the child's end.
local function finish_child(child)
  child.seen[#child.seen + 1] = child.pipe:read("*a")
  local out = table.concat(child.seen, "\n")
  local _, _, code = child.pipe:close() -- Lua 5.4 only; valgrind runs on 5.4
  assert.are_not.equal(99, code, "valgrind found errors in the child (build/memcheck/valgrind-child.*.log)")
  child.done = true
  os.remove(child.path)
  local took = socket.gettime() - (child.killed_at or socket.gettime())
  local parsed = {results = {}, lines = {}, out = out, took = took}
  for line in out:gmatch("[^\n]+") do
    local fields = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
    if fields[1] == "result" then
      parsed.results[tonumber(fields[2])] = {kind = fields[3], sent = fields[4],
        attempts = tonumber(fields[5]), message = fields[6], text = fields[7]}
    elseif fields[1] ~= "" and parsed.lines[fields[1]] == nil then
      parsed.lines[fields[1]] = {unpack(fields, 2)}
    end
  end
  return parsed
end

local function server(backlog)
  local s = assert(socket.bind("127.0.0.1", 0, backlog))
  local _, port = s:getsockname()
  return s, tonumber(port)
end

-- Accepts one connection and reads its request head; the connection stays open (unanswered).
local function accept(s)
  s:settimeout(5 * SLOW)
  local conn = assert(s:accept())
  conn:settimeout(5 * SLOW)
  local first = conn:receive("*l")
  repeat
    local line = conn:receive("*l")
  until not line or line == ""
  return conn, first
end

-- No connection waits to be accepted (the child sent nothing more).
local function no_more(s)
  s:settimeout(0.2)
  local conn = s:accept()
  if conn then conn:close() end
  return conn == nil
end

describe("campaign.trap_signals", function()
  local open = {}
  local function keep(conn) open[#open + 1] = conn end
  after_each(function()
    for _, c in ipairs(open) do c:close() end
    open = {}
    for _, child in ipairs(children) do -- a failed spec does not leave its child waiting
      if not child.done then
        os.execute("kill -KILL " .. child.pid .. " 2>/dev/null")
        child.pipe:close()
        os.remove(child.path)
      end
    end
    children = {}
  end)

  it("is in the module; interrupted() is nil until a signal arrives", function()
    local campaign = require "campaign"
    assert.is_function(campaign.trap_signals)
    assert.is_nil(campaign.interrupted())
    campaign.clear_interrupt()
    assert.is_nil(campaign.interrupted())
  end)

  it("SIGINT in a batch: aborts what is in flight, starts nothing, reports every item in order", function()
    local s, port = server(32)
    local child = start_child([[
      assert(campaign.trap_signals() == true)
      assert(campaign.trap_signals() == true) -- idempotent
      local c = client()
      local requests = {}
      for i = 1, 8 do requests[i] = {"GET", "hold/" .. i} end
      local calls = {}
      local results = c:batch(requests, {concurrency = 3, on_result = function(i) calls[#calls + 1] = i end})
      say("signal", campaign.interrupted())
      say("calls", table.concat(calls, ","))
      for i = 1, 8 do show("result", i, results[i].err, results[i].attempts) end
      -- once interrupted, every call returns at once and sends nothing
      local events = 0
      local c2 = client{on_event = function() events = events + 1 end}
      local body, err = c2:get("after")
      say("after", body, err.kind, err.sent, err.attempts, events, err.signal)
      local again = c2:batch({{"GET", "again/1"}, {"GET", "again/2"}})
      say("again", again[1].err.kind, again[2].err.kind, again[2].attempts, events)
      campaign.clear_interrupt()
      say("cleared", campaign.interrupted())
    ]], port)
    for _ = 1, 3 do
      local conn, first = accept(s)
      keep(conn)
      assert.matches("^GET /acme/campaign/hold/[123] HTTP/1.1", first)
    end
    signal(child, "INT")
    local r = finish_child(child)
    assert.truthy(r.took < 1.5 * SLOW, "the child ended " .. r.took .. " s after the signal:\n" .. r.out)
    assert.same({"2"}, r.lines.signal, r.out)
    assert.same({"1,2,3,4,5,6,7,8"}, r.lines.calls, r.out)
    for i = 1, 8 do
      local res = r.results[i]
      assert.equal("interrupted", res.kind, r.out)
      assert.equal("interrupted by SIGINT", res.message)
      assert.equal("campaign: GET hold/" .. i .. " -> interrupted: interrupted by SIGINT", res.text)
      if i <= 3 then
        assert.equal("true", res.sent, "item " .. i)
        assert.equal(1, res.attempts, "item " .. i)
      else
        assert.equal("false", res.sent, "item " .. i)
        assert.equal(0, res.attempts, "item " .. i)
      end
    end
    assert.same({"nil", "interrupted", "false", "0", "0", "2"}, r.lines.after, r.out)
    assert.same({"interrupted", "interrupted", "0", "0"}, r.lines.again, r.out)
    assert.same({"nil"}, r.lines.cleared, r.out)
    assert.is_true(no_more(s), "a request went out after the signal")
    s:close()
  end)

  it("a transfer that never reached a connection is interrupted with sent = false", function()
    local s, port = server(0) -- one connection fits the accept queue; the others stay connecting
    local child = start_child([[
      campaign.trap_signals()
      say("ready")
      local results = client():batch({{"GET", "q/1"}, {"GET", "q/2"}, {"GET", "q/3"}}, {concurrency = 3})
      for i = 1, 3 do show("result", i, results[i].err, results[i].attempts) end
    ]], port)
    assert.is_true(wait_for(child, "ready"))
    socket.sleep(MEMCHECK and 2 or 0.5) -- the three connections are tried at once: one goes through
    signal(child, "INT")
    local r = finish_child(child)
    assert.truthy(r.took < 1.5 * SLOW, "took " .. r.took)
    local sent = 0
    for i = 1, 3 do
      assert.equal("interrupted", r.results[i].kind, r.out)
      assert.equal(1, r.results[i].attempts)
      if r.results[i].sent == "true" then sent = sent + 1 end
    end
    assert.equal(1, sent, r.out)
    s:close()
  end)

  it("SIGTERM during a single call: the transfer is aborted, kind interrupted, sent = true", function()
    local s, port = server(32)
    local child = start_child([[
      campaign.trap_signals()
      local body, err = client():get("single")
      say("signal", campaign.interrupted())
      show("result", 1, err)
    ]], port)
    keep((accept(s)))
    signal(child, "TERM")
    local r = finish_child(child)
    assert.truthy(r.took < 1.5 * SLOW, "took " .. r.took .. "\n" .. r.out)
    assert.same({"15"}, r.lines.signal, r.out)
    assert.same({kind = "interrupted", sent = "true", attempts = 1, message = "interrupted by SIGTERM",
      text = "campaign: GET single -> interrupted: interrupted by SIGTERM"}, r.results[1])
    s:close()
  end)

  it("cuts a retry wait short, in a single call and in a batch", function()
    local s, port = server(32)
    local child = start_child([[
      campaign.trap_signals()
      local c = client{retries = 3, retry_max = 60, on_event = function(ev)
        if ev.type == "retry" then say("retry " .. ev.index .. " " .. string.format("%g", ev.wait)) end
      end}
      local results = c:batch({{"GET", "busy"}, {"GET", "hold"}}, {concurrency = 2})
      for i = 1, 2 do show("result", i, results[i].err, results[i].attempts) end
      campaign.clear_interrupt()
      say("single")
      local c1 = client{retries = 3, retry_max = 60, on_event = function(ev)
        if ev.type == "retry" then say("retry 0 " .. string.format("%g", ev.wait)) end
      end}
      local _, err = c1:get("busy")
      show("result", 3, err)
    ]], port)
    local answer = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n"
    local busy
    for _ = 1, 2 do
      local conn, first = accept(s)
      keep(conn)
      if first:find("/busy ", 1, true) then busy = conn end
    end
    busy:send(answer)
    assert.is_true(wait_for(child, "retry 1 30"))
    signal(child, "INT")
    assert.is_true(wait_for(child, "single"))
    local took = socket.gettime() - child.killed_at
    assert.truthy(took < 1.5 * SLOW, "the batch took " .. took)
    local conn = accept(s)
    keep(conn)
    conn:send(answer)
    assert.is_true(wait_for(child, "retry 0 30"))
    signal(child, "INT")
    local r = finish_child(child)
    assert.truthy(r.took < 1.5 * SLOW, "took " .. r.took)
    -- an attempt went out before the wait: sent = true
    for i = 1, 3 do
      assert.equal("interrupted", r.results[i].kind, r.out)
      assert.equal("true", r.results[i].sent, r.out)
      assert.equal(1, r.results[i].attempts, r.out)
    end
    s:close()
  end)

  local lua_c = MEMCHECK == "asan" and pending or it -- lua.c's hook: not in the sanitized interpreter
  lua_c("without trap_signals, lua's own Ctrl-C error raised in on_result stops the batch", function()
    local s, port = server(32)
    local child = start_child([[
      local c = client()
      local requests = {}
      for i = 1, 6 do requests[i] = {"GET", "plain/" .. i} end
      c:batch(requests, {concurrency = 3, on_result = function(i) say("on_result " .. i) end})
      say("batch returned")
    ]], port)
    local conns = {}
    for k = 1, 3 do
      conns[k] = accept(s)
      keep(conns[k])
    end
    signal(child, "INT")
    socket.sleep(0.2 * SLOW)
    -- lua.c's handler raises "interrupted!" in the next Lua code that runs: on_result
    conns[1]:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    local r = finish_child(child)
    assert.truthy(r.took < 1.5 * SLOW, "took " .. r.took .. "\n" .. r.out)
    assert.matches("interrupted!", r.out)
    assert.not_matches("batch returned", r.out)
    assert.not_matches("on_result", r.out)
    assert.is_true(no_more(s), "a request went out after the interrupt")
    s:close()
  end)
end)
