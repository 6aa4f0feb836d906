-- luacheck configuration: `make lint`
std = "max"
codes = true
max_line_length = 110
exclude_files = { "build/**", ".cache/**" }
files["spec/**"] = { std = "+busted" }
files["emulator/**"] = { read_globals = { "ngx" } }
files["lua/campaign/ngx.lua"] = { read_globals = { "ngx" } }
files["examples/openresty/**"] = { read_globals = { "ngx" } }
files["spec/openresty/**"] = { std = "+busted", read_globals = { "ngx" } }
