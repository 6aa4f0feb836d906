rockspec_format = "3.0"
package = "lua-campaign"
version = "0.1.0-1"
-- The release: the tag v0.1.0 of the repository the scm-1 rockspec builds from. Its version is
-- CMakeLists.txt's project(VERSION) and CHANGELOG.md's latest entry (spec/lint/release_spec.lua).
source = {
  url = "git+file:///work/main",
  tag = "v0.1.0",
}
description = {
  summary = "Adobe Campaign Standard REST API client: a libcurl C module with Lua workflows",
  detailed = [[
`require "campaign"` loads a C module (libcurl, exact JSON on yajl) whose client does
get/patch/post/delete/request/batch against the ACS REST API with tokens, retries and
structured errors; plain-Lua layers add IMS tokens, every ACS operation, pagination,
update-and-verify and bulk updates.]],
  license = "MIT",
  labels = { "adobe", "campaign", "http", "json", "openresty" },
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  -- by library: Debian keeps curl/curl.h in a multiarch folder that luarocks does not search
  CURL = { library = "curl" },
  YAJL = { header = "yajl/yajl_parse.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_C_FLAGS = "$(CFLAGS)",
    CAMPAIGN_WERROR = "OFF",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
  },
  install = {
    bin = { campaign = "bin/campaign" },
  },
}
