-- emulator/campaign-emulator: start/stop/status/run, printed keys, side-by-side instances.
local emulator = require "emulator"

local run, q = emulator.run, emulator.shell_quote
local launcher = q(emulator.launcher)

local function masters_for(prefix)
  local out = run("ps -eo pid,args")
  local n = 0
  for line in out:gmatch("[^\n]+") do
    if line:find(prefix .. "/nginx.conf", 1, true) then n = n + 1 end
  end
  return n
end

local function processes_with(text)
  local out = run("ps -eo pid,args")
  local n = 0
  for line in out:gmatch("[^\n]+") do
    if line:find(text, 1, true) and not line:find("ps -eo", 1, true) then n = n + 1 end
  end
  return n
end

local function worker_pids(master)
  local pids = {}
  for line in run("ps -eo pid,ppid"):gmatch("[^\n]+") do
    local pid, ppid = line:match("^%s*(%d+)%s+(%d+)")
    if ppid == tostring(master) then pids[#pids + 1] = pid end
  end
  return pids
end

describe("campaign-emulator", function()
  it("start prints every key and the server answers on base_url", function()
    local e = emulator.start{ profiles = 5 }
    finally(function() e:stop() end)
    assert.matches("^http://127%.0%.0%.1:%d+$", e.base_url)
    assert.equals(e.base_url, e.ims_url)
    assert.equals("acme", e.org)
    for _, k in ipairs { "api_key", "client_id", "client_secret", "access_token", "prefix" } do
      assert.is_string(e[k])
      assert.is_true(#e[k] > 0, k)
    end
    assert.is_nil(e.cafile)
    local status, body = e:call("GET", "profileAndServices/profile")
    assert.equals(200, status)
    assert.equals(5, #body.content)
  end)

  it("two emulators with different prefixes run side by side", function()
    -- busted keeps only the last finally() of a test: one stops both
    local a, b
    finally(function()
      if a then a:stop() end
      if b then b:stop() end
    end)
    a = emulator.start{ profiles = 3 }
    b = emulator.start{ profiles = 4 }
    assert.are_not.equal(a.base_url, b.base_url)
    assert.are_not.equal(a.access_token, b.access_token)
    local _, body_a = a:call("GET", "profileAndServices/profile")
    local _, body_b = b:call("GET", "profileAndServices/profile")
    assert.equals(3, #body_a.content)
    assert.equals(4, #body_b.content)
    -- a token of one emulator is not valid on the other
    assert.equals(401, (a:call("GET", "profileAndServices/profile", nil, { token = b.access_token,
      api_key = a.api_key })))
  end)

  it("status reports running then stopped; stop leaves no nginx process", function()
    local e = emulator.start{ profiles = 1 }
    local out, ok = run(launcher .. " status --prefix " .. q(e.prefix))
    assert.is_true(ok)
    assert.matches("running pid=(%d+)", out)
    local master = out:match("running pid=(%d+)")
    local workers = worker_pids(master)
    assert.is_true(#workers >= 1)
    assert.equals(1, masters_for(e.prefix))
    e.made_prefix = false     -- keep the prefix to ask `status` afterwards
    e:stop()
    finally(function() run("rm -rf " .. q(e.prefix)) end)
    assert.equals(0, masters_for(e.prefix))
    for _, pid in ipairs(workers) do
      assert.is_nil((run("kill -0 " .. pid .. " 2>/dev/null && echo alive")):find("alive"))
    end
    local _, stopped_ok, code = run(launcher .. " status --prefix " .. q(e.prefix))
    assert.is_false(stopped_ok)
    assert.equals(3, code)
    -- stopping again is harmless
    local _, again = run(launcher .. " stop --prefix " .. q(e.prefix))
    assert.is_true(again)
  end)

  it("refuses a second start on a running prefix", function()
    local e = emulator.start{ profiles = 1 }
    finally(function() e:stop() end)
    local out, ok = run(launcher .. " start --prefix " .. q(e.prefix) .. " 2>&1")
    assert.is_false(ok)
    assert.matches("already running", out)
  end)

  it("honours --port", function()
    local probe = emulator.start{ profiles = 1 }
    local port = tonumber(probe.base_url:match(":(%d+)$"))
    probe:stop()
    local e = emulator.start{ profiles = 1, port = port }
    finally(function() e:stop() end)
    assert.equals("http://127.0.0.1:" .. port, e.base_url)
  end)

  it("rejects bad options", function()
    for _, args in ipairs { "--port x", "--profiles -1", "--token-ttl 0", "--bogus", "--http2",
      "--org 'a b'" } do
      local out, ok = run(launcher .. " start --prefix /tmp/campaign-emu-never " .. args .. " 2>&1")
      assert.is_false(ok, args)
      assert.matches("campaign%-emulator", out)
    end
    assert.equals(0, processes_with("/tmp/campaign-emu-never"))
    run("rm -rf /tmp/campaign-emu-never")
  end)

  it("run stays in the foreground and stops on SIGTERM", function()
    local prefix = run("mktemp -d"):gsub("%s+$", "")
    local out_file = prefix .. "/run.out"
    -- the launcher's own pid is recorded so only it is signalled
    run("(" .. launcher .. " run --profiles 2 --prefix " .. q(prefix) .. " >" .. q(out_file)
      .. " 2>/dev/null & echo $! >" .. q(prefix .. "/run.pid") .. ")")
    local pid = run("cat " .. q(prefix .. "/run.pid")):gsub("%s+$", "")
    finally(function()
      -- even when an assertion failed: stop the foreground launcher, then clean up
      run("kill -TERM " .. pid .. " 2>/dev/null; " .. launcher .. " stop --prefix " .. q(prefix))
      run("rm -rf " .. q(prefix))
    end)
    local base
    for _ = 1, 300 do
      local fh = io.open(out_file)
      local text = fh and fh:read("*a") or ""
      if fh then fh:close() end
      base = text:match("base_url=(%S+)")
      if base and text:find("prefix=") then break end
      run("sleep 0.02")
    end
    assert.is_string(base)
    assert.matches('"status":"ok"', (run("curl -s " .. base .. "/_emulator/health")))
    run("kill -TERM " .. pid)
    for _ = 1, 250 do
      if masters_for(prefix) == 0 and not (run("kill -0 " .. pid
        .. " 2>/dev/null && echo alive")):find("alive") then
        break
      end
      run("sleep 0.02")
    end
    assert.equals(0, masters_for(prefix))
  end)
end)
