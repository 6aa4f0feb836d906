-- spec/openresty/harness.lua itself: it finds nginx off a normal user's PATH (Debian's is
-- /usr/sbin/nginx), says why nginx did not start, and leaves no nginx and no
-- $TMPDIR/campaign-openresty-* behind when a start fails or a spec never calls stop.
-- Each case runs the harness in a child lua5.4 with its own PATH and TMPDIR.
local harness = require "openresty.harness"

local quote, sh = harness.quote, harness.sh
local USER_PATH = "/usr/local/bin:/usr/bin:/bin"   -- a normal user's on Debian: no /usr/sbin

-- Runs `code` in a child Lua with the harness loaded as `h`; returns its output and exit code.
local function child(env, code)
  local words = { "env", "-u", "CAMPAIGN_EMULATOR_NGINX" }
  for k, v in pairs(env) do words[#words + 1] = quote(k .. "=" .. v) end
  local chunk = "package.path = 'spec/?.lua;' .. package.path; local h = require 'openresty.harness'; "
    .. code
  words[#words + 1] = "lua5.4 -e " .. quote(chunk)
  return sh("cd " .. quote(harness.repo) .. " && " .. table.concat(words, " "))
end

local function tmpdir()
  local dir = (sh("mktemp -d"):gsub("%s+$", ""))
  assert(dir:match("^/"), dir)
  return dir
end

local function entries(dir)
  local out = sh("ls -A " .. quote(dir))
  local list = {}
  for name in out:gmatch("[^\n]+") do list[#list + 1] = name end
  return list
end

local function alive(pid) return select(2, sh("kill -0 " .. pid)) == 0 end

describe("openresty.harness", function()
  it("starts nginx with a normal user's PATH (no /usr/sbin) and removes its prefix on stop", function()
    if select(2, sh("env PATH=" .. USER_PATH .. " sh -c 'command -v nginx'")) == 0 then
      pending("nginx is on " .. USER_PATH .. " here")
      return
    end
    local dir = tmpdir()
    finally(function() sh("rm -rf " .. quote(dir)) end)
    local out, code = child({ PATH = USER_PATH, TMPDIR = dir },
      "local s = h.start {}; print(s:eval('return \"ok\"')); s:stop()")
    assert.equal(0, code, out)
    assert.equal("ok\n", out)
    assert.same({}, entries(dir))
  end)

  it("a start that fails says why and removes its prefix", function()
    local dir = tmpdir()
    finally(function() sh("rm -rf " .. quote(dir)) end)
    -- nginx refusing its configuration: its own message must reach the error.
    local wrapper = dir .. "/bad-nginx"
    local f = assert(io.open(wrapper, "w"))
    f:write("#!/bin/sh\nexec " .. harness.find_nginx() .. " -g 'no_such_directive on;' \"$@\"\n")
    f:close()
    sh("chmod +x " .. quote(wrapper))
    local env = { PATH = os.getenv("PATH"), TMPDIR = dir, CAMPAIGN_EMULATOR_NGINX = wrapper }
    local out, code = child(env,
      "local ok, err = pcall(h.start, {}); print(ok, err)")
    assert.equal(0, code, out)
    assert.matches("^false\t[^\n]*bad%-nginx did not start: [^\n]*unknown directive \"no_such_directive\"",
      out)
    assert.same({ "bad-nginx" }, entries(dir))
  end)

  it("CAMPAIGN_EMULATOR_NGINX that is no executable: one clear error, nothing left", function()
    local dir = tmpdir()
    finally(function() sh("rm -rf " .. quote(dir)) end)
    local env = { PATH = os.getenv("PATH"), TMPDIR = dir, CAMPAIGN_EMULATOR_NGINX = "/nonexistent/nginx" }
    local out, code = child(env,
      "local ok, err = pcall(h.start, {}); print(ok, err)")
    assert.equal(0, code, out)
    assert.matches("^false\t[^\n]*CAMPAIGN_EMULATOR_NGINX=/nonexistent/nginx is not an executable\n$", out)
    assert.same({}, entries(dir))
  end)

  it("a server the spec never stops is stopped when the Lua state closes", function()
    local dir = tmpdir()
    local prefix, pid
    finally(function()
      if pid and alive(pid) then sh("kill -TERM " .. pid) end   -- only what this spec started
      if prefix then sh("rm -rf " .. quote(prefix)) end
      sh("rm -rf " .. quote(dir))
    end)
    local out, code = child({ PATH = os.getenv("PATH"), TMPDIR = dir },
      "local s = h.start {}; io.write(s.prefix, ' ', (io.open(s.prefix .. '/nginx.pid'):read('l')), '\\n')")
    assert.equal(0, code, out)
    prefix, pid = out:match("^(%S+) (%d+)\n$")
    assert.is_string(pid, out)
    for _ = 1, 100 do
      if not alive(pid) then break end
      sh("sleep 0.05")
    end
    assert.is_false(alive(pid))
    assert.is_nil(io.open(prefix .. "/nginx.conf"))
  end)
end)
