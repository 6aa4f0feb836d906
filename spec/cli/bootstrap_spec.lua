-- scripts/bootstrap as a non-root user with packages missing: it prints one apt-get line and
-- exits 1, installing nothing. The line must say --no-install-recommends like the root install
-- (on a fresh Debian 12 root: 101 packages instead of 158). `id` and `dpkg-query` are faked
-- on PATH: this user, every package missing.
local sh = require("cli_process").quote

local function run(command)
  local pipe = io.popen(command .. " 2>&1 </dev/null")
  local output = pipe:read("a")
  local _, _, code = pipe:close()
  return code, output
end

local function write_script(path, text)
  local f = assert(io.open(path, "w"))
  f:write("#!/bin/sh\n" .. text .. "\n")
  f:close()
  run("chmod +x " .. sh(path))
end

describe("scripts/bootstrap as a normal user", function()
  it("prints the sudo apt-get line with --no-install-recommends and exits 1", function()
    local _, made = run("mktemp -d")
    local dir = made:gsub("%s+$", "")
    finally(function() run("rm -rf " .. sh(dir)) end)
    write_script(dir .. "/id", 'if [ "$1" = -u ]; then echo 1000; else exec /usr/bin/id "$@"; fi')
    write_script(dir .. "/dpkg-query", "echo 'unknown ok not-installed'")
    -- apt-get and sudo must not run: fakes that would say so
    write_script(dir .. "/apt-get", "echo APT-GET RAN; exit 99")
    write_script(dir .. "/sudo", "echo SUDO RAN; exit 99")
    local code, out = run("env PATH=" .. sh(dir .. ":" .. os.getenv("PATH")) .. " scripts/bootstrap")
    assert.equal(1, code, out)
    assert.is_nil(out:find("RAN", 1, true))
    local line = out:match("\n  (sudo [^\n]*)\n$")
    assert.is_string(line, out)
    assert.matches("^sudo apt%-get update && sudo DEBIAN_FRONTEND=noninteractive apt%-get install %-y "
      .. "%-%-no%-install%-recommends gcc make ", line)
    assert.matches(" nginx libnginx%-mod%-http%-lua ", line)
  end)
end)
