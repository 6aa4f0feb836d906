-- The rockspec builds and installs offline (luarocks make, build type cmake), and what it
-- installs works: the C module, the Lua layers and the CLI.
describe("rockspec/lua-campaign-scm-1.rockspec", function()
  local function sh(cmd)
    local pipe = assert(io.popen(cmd .. " 2>&1"))
    local out = pipe:read("a")
    return pipe:close(), out
  end

  it("installs with `luarocks make --deps-mode=none` into a tree, and the tree works", function()
    local ok, tmp = sh("mktemp -d")
    assert(ok, tmp)
    tmp = tmp:gsub("%s+$", "")
    finally(function() sh("rm -rf '" .. tmp .. "'") end)
    -- a copy of the sources: luarocks builds inside the source folder
    ok = sh(("mkdir -p %s/src && cp -r CMakeLists.txt src lua bin rockspec README.md %s/src/")
      :format(tmp, tmp))
    assert(ok)
    local out
    ok, out = sh(("cd %s/src && luarocks --lua-version 5.4 make --deps-mode=none --tree %s/tree "
                  .. "rockspec/lua-campaign-scm-1.rockspec"):format(tmp, tmp))
    assert(ok, out)
    local env = ("LUA_PATH='%s/tree/share/lua/5.4/?.lua;;' LUA_CPATH='%s/tree/lib/lua/5.4/?.so;;' ")
      :format(tmp, tmp)
    ok, out = sh(env .. [[lua5.4 -e 'local c = require "campaign"
      assert(package.searchpath("campaign", package.cpath):find("/tree/", 1, true))
      assert(c.workflow.update_and_verify and c.api.get_profile)
      io.write(c.encode({n = 123456789012345}))']])
    assert(ok, out)
    assert.equal('{"n":123456789012345}', out)
    ok, out = sh(env .. tmp .. "/tree/bin/campaign --version")
    assert(ok, out)
    assert.matches("lua%-campaign", out)
  end)
end)
