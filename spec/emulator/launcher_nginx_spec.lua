-- emulator/campaign-emulator finds nginx where a normal user's PATH does not reach (Debian's
-- is /usr/sbin/nginx) and, when it cannot start it, says why: nginx missing, a bad
-- CAMPAIGN_EMULATOR_NGINX, or nginx's own error (the bind failure, not "see error.log").
local emulator = require "emulator"

local run, q = emulator.run, emulator.shell_quote
local launcher = emulator.launcher

-- A normal user's PATH on Debian: no /usr/sbin, /sbin or /usr/local/sbin.
local USER_PATH = "/usr/local/bin:/usr/bin:/bin"

local function sh(command)
  local p = assert(io.popen(command .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function tmpdir()
  local dir = (sh("mktemp -d"):gsub("%s+$", ""))
  assert(dir:match("^/"), dir)
  return dir
end

-- Skipped where nginx itself sits on USER_PATH: then the PATH case proves nothing.
local nginx_off_user_path = select(2, sh("env PATH=" .. USER_PATH .. " sh -c 'command -v nginx'")) ~= 0

describe("campaign-emulator finding nginx", function()
  it("starts with a normal user's PATH (no /usr/sbin)", function()
    if not nginx_off_user_path then pending("nginx is on " .. USER_PATH .. " here") return end
    local prefix = tmpdir()
    finally(function()
      run(q(launcher) .. " stop --prefix " .. q(prefix))
      run("rm -rf " .. q(prefix))
    end)
    local out, code = sh("env -u CAMPAIGN_EMULATOR_NGINX PATH=" .. USER_PATH .. " " .. q(launcher)
      .. " start --profiles 2 --prefix " .. q(prefix))
    assert.equal(0, code, out)
    assert.matches("base_url=http://127%.0%.0%.1:%d+", out)
  end)

  it("a CAMPAIGN_EMULATOR_NGINX that is no executable: one clear line, exit 1", function()
    local prefix = tmpdir()
    finally(function() run("rm -rf " .. q(prefix)) end)
    local out, code = sh("env CAMPAIGN_EMULATOR_NGINX=/nonexistent/nginx " .. q(launcher)
      .. " start --prefix " .. q(prefix))
    assert.equal(1, code)
    assert.equal("campaign-emulator: CAMPAIGN_EMULATOR_NGINX=/nonexistent/nginx is not an executable\n", out)
  end)

  it("no nginx anywhere: says so and how to install it, not 'see error.log'", function()
    -- A copy of the launcher and its find-nginx, whose list of places names nothing that
    -- exists, run with a PATH without nginx; nginx.conf.in and lua/ through symlinks.
    local dir = tmpdir()
    finally(function() run("rm -rf " .. q(dir)) end)
    local source = emulator.launcher:match("^(.*)/[^/]+$")
    local copy = dir .. "/campaign-emulator"
    run("cp " .. q(launcher) .. " " .. q(source .. "/find-nginx") .. " " .. q(dir))
    run("ln -s " .. q(source .. "/nginx.conf.in") .. " " .. q(source .. "/lua") .. " " .. q(dir))
    run("sed -i 's|^NGINX_PLACES=(.*)$|NGINX_PLACES=(/nonexistent/nginx)|' " .. q(dir .. "/find-nginx"))
    -- PATH: a directory with the commands the launcher runs, nginx not among them.
    local path = dir .. "/bin"
    run("mkdir -p " .. q(path) .. " && for c in bash env dirname readlink mkdir chmod od tr head base64 id"
      .. " cat sed grep printf sleep seq curl awk mv rm; do ln -s \"$(command -v $c)\" " .. q(path) .. "/;"
      .. " done")
    local out, code = sh("env -u CAMPAIGN_EMULATOR_NGINX PATH=" .. q(path) .. " "
      .. q(copy) .. " start --prefix " .. q(dir .. "/prefix"))
    assert.equal(1, code, out)
    assert.equal("campaign-emulator: nginx not found (not on PATH, nor /nonexistent/nginx); install nginx "
      .. "and libnginx-mod-http-lua (scripts/bootstrap prints the apt-get line) or set "
      .. "CAMPAIGN_EMULATOR_NGINX\n",
      out)
  end)

  it("nginx failing to start: its own error is printed (a port in use)", function()
    local socket = require "socket"
    local busy = assert(socket.bind("127.0.0.1", 0))
    local _, port = busy:getsockname()
    local prefix = tmpdir()
    finally(function()
      busy:close()
      run(q(launcher) .. " stop --prefix " .. q(prefix))
      run("rm -rf " .. q(prefix))
    end)
    local out, code = sh(q(launcher) .. " start --port " .. port .. " --prefix " .. q(prefix))
    assert.equal(1, code, out)
    assert.matches("bind() to 127.0.0.1:" .. port .. " failed (98: Address already in use)", out, 1, true)
    assert.matches("campaign%-emulator: [^\n]*nginx did not start %(log: [^\n]*/logs/error%.log%)\n$", out)
  end)
end)
