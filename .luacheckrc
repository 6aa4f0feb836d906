-- luacheck configuration: `make lint`
std = "max"
codes = true
max_line_length = 110
exclude_files = { "build/**", ".cache/**" }
files["spec/**"] = { std = "+busted" }
files["emulator/**"] = { std = "max+ngx_lua" }
files["lua/campaign/ngx.lua"] = { std = "max+ngx_lua" }
files["lua/campaign/ngx/**"] = { std = "max+ngx_lua" }
files["examples/openresty/**"] = { std = "max+ngx_lua" }
files["spec/openresty/**"] = { std = "max+busted+ngx_lua" }
