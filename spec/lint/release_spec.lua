-- The release's version is written once, in CMakeLists.txt's project(VERSION); the module's
-- _VERSION, the release rockspec and CHANGELOG.md's latest entry must name the same one, and the
-- release rockspec must install offline (`luarocks make`) a module that reports it.
local campaign = require "campaign"

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local function sh(cmd)
  local pipe = assert(io.popen(cmd .. " 2>&1"))
  local out = pipe:read("*a")
  return pipe:close(), out
end

-- A rockspec is Lua assignments: run it in an empty environment and return that environment.
local function load_rockspec(path)
  local env = {}
  local chunk = assert(load(read_all(path), "@" .. path, "t", env))
  chunk()
  return env
end

local version = read_all("CMakeLists.txt"):match("project%(lua_campaign VERSION (%d+%.%d+%.%d+)")
local release = "rockspec/lua-campaign-" .. tostring(version) .. "-1.rockspec"

describe("the release", function()
  it("has its version in CMakeLists.txt's project(VERSION)", function()
    assert.is_string(version)
  end)

  it("is the version of the C module (campaign._VERSION, from that one place)", function()
    assert.equal(version, campaign._VERSION)
    -- no second copy of it in the C sources: the only literal is the no-cmake fallback
    for _, path in ipairs({ "src/client.h", "src/client.c", "src/campaign.c" }) do
      for literal in read_all(path):gmatch('#%s*define%s+CAMPAIGN_VERSION%s+"([^"]*)"') do
        assert.equal("0.0.0", literal, path)
      end
    end
  end)

  it("has a rockspec named after it, with that version and a tagged source", function()
    local spec = load_rockspec(release)
    local scm = load_rockspec("rockspec/lua-campaign-scm-1.rockspec")
    assert.equal("lua-campaign", spec.package)
    assert.equal(version .. "-1", spec.version)
    assert.equal("v" .. version, spec.source.tag)
    assert.is_nil(spec.source.branch)
    assert.equal(scm.source.url, spec.source.url)   -- the same repository as scm-1
    assert.same(scm.build, spec.build)              -- built the same way
    assert.same(scm.dependencies, spec.dependencies)
  end)

  it("is CHANGELOG.md's latest entry (below Unreleased), with a date", function()
    local changelog = read_all("CHANGELOG.md")
    local latest, date
    for heading in changelog:gmatch("\n## %[([^%]]+)%][^\n]*") do
      if heading ~= "Unreleased" then
        latest = heading
        date = changelog:match("\n## %[" .. heading:gsub("%.", "%%.") .. "%] %- (%d%d%d%d%-%d%d%-%d%d)")
        break
      end
    end
    assert.equal(version, latest)
    assert.is_string(date)
  end)

  it("installs with `luarocks make --deps-mode=none` of the release rockspec and reports it", function()
    local ok, tmp = sh("mktemp -d")
    assert(ok, tmp)
    tmp = tmp:gsub("%s+$", "")
    finally(function() sh("rm -rf '" .. tmp .. "'") end)
    -- a copy of the sources: luarocks builds inside the source folder
    ok = sh(("mkdir -p %s/src && cp -r CMakeLists.txt src lua bin rockspec README.md %s/src/")
      :format(tmp, tmp))
    assert(ok)
    local out
    ok, out = sh(("cd %s/src && luarocks --lua-version 5.4 make --deps-mode=none --tree %s/tree %s")
      :format(tmp, tmp, release))
    assert(ok, out)
    local env = ("LUA_PATH='%s/tree/share/lua/5.4/?.lua' LUA_CPATH='%s/tree/lib/lua/5.4/?.so' ")
      :format(tmp, tmp)
    ok, out = sh(env .. [[lua5.4 -e 'local c = require "campaign"
      assert(package.searchpath("campaign", package.cpath):find("/tree/", 1, true))
      assert(package.searchpath("campaign.api", package.path):find("/tree/", 1, true))
      io.write(c._VERSION)']])
    assert(ok, out)
    assert.equal(version, out)
    ok, out = sh(("cd %s/tree && luarocks --lua-version 5.4 --tree %s/tree list --porcelain")
      :format(tmp, tmp))
    assert(ok, out)
    assert.matches("lua%-campaign\t" .. version:gsub("%.", "%%.") .. "%-1\tinstalled", out)
  end)
end)
