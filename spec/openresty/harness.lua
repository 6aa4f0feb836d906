-- Starts and drives a test nginx (spec/openresty/nginx.conf) from busted on Lua 5.4.
--   local harness = require "openresty.harness"
--   local srv = harness.start{workers = 1, upstream = emu.base_url, cafile = emu.cafile}
--   local result = srv:eval([[ return client():get("...") ]], {emu = ...})
--   srv:stop()
-- Requests go out with curl (io.popen), so nothing here needs the C module.
local cjson = require("cjson").new()

local harness = {}
local server = {}
server.__index = server

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function repo_root()
  local out = sh("pwd")
  return (out:gsub("%s+$", ""))
end

local function free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function render(text, vars)
  return (text:gsub("%${([%u_]+)}", function(name)
    return assert(vars[name], "no value for ${" .. name .. "}")
  end))
end

harness.repo = repo_root()

-- The nginx binary, as emulator/campaign-emulator finds it (emulator/find-nginx:
-- $CAMPAIGN_EMULATOR_NGINX, else PATH, else Debian's /usr/sbin/nginx, which is not on a normal
-- user's PATH, or OpenResty's); raises its one-line reason when there is none.
local nginx_bin, lua_is_static

local function find_nginx()
  if nginx_bin then return nginx_bin end
  local out, code = sh(quote(harness.repo .. "/emulator/find-nginx"))
  out = out:gsub("%s+$", "")
  if code ~= 0 then error(out, 3) end
  nginx_bin = out
  -- nginx built with ngx_lua inside (OpenResty) has no module to load: Debian's is dynamic.
  local built = sh(quote(out) .. " -V")
  lua_is_static = built:find("%-%-add%-module=%S*ngx_lua") ~= nil
    or built:find("%-%-add%-module=%S*lua%-nginx%-module") ~= nil
  return nginx_bin
end
harness.find_nginx = find_nginx

-- The lines of an error log that say why nginx stopped or refused to start.
local function log_errors(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local lines = {}
  for line in f:lines() do
    local level = line:match("%[(%a+)%]")
    if level == "emerg" or level == "alert" or level == "crit" or level == "error" then
      lines[#lines + 1] = line
    end
  end
  f:close()
  return table.concat(lines, "\n", math.max(1, #lines - 14))
end

-- Servers started and not stopped yet: stopped when the Lua state closes (busted exits with
-- os.exit(code, true)), so a spec that fails between start and stop leaves no nginx or
-- /tmp/campaign-openresty-* behind.
local live = {}
local function stop_live()
  for srv in pairs(live) do srv:stop() end
end
if newproxy then                                 -- Lua 5.1/LuaJIT: only userdata have __gc
  harness.guard = newproxy(true)
  getmetatable(harness.guard).__gc = stop_live
else
  harness.guard = setmetatable({}, { __gc = stop_live })
end

--- harness.start{workers = 1, upstream = "http://127.0.0.1:PORT", cafile = nil, lua_path = nil} -> server
-- read_timeout, connect_timeout: nginx times ("400ms") for the internal location's proxy_*_timeout.
-- lua_path (or $CAMPAIGN_OPENRESTY_LUA_PATH): extra `?.lua` entries searched first.
-- cafile: the CA of both proxy_ssl_trusted_certificate and lua_ssl_trusted_certificate.
-- http_extra: directives added to the http {} block (e.g. an init_worker_by_lua_block).
function harness.start(opts)
  opts = opts or {}
  local nginx = find_nginx()
  local made, made_code = sh('mktemp -d "${TMPDIR:-/tmp}/campaign-openresty-XXXXXX"')
  local prefix = made:gsub("%s+$", "")
  assert(made_code == 0 and prefix:match("^/"), "mktemp failed: " .. made)
  local srv = setmetatable({ prefix = prefix, nginx = nginx }, server)
  -- Any failure from here on removes the prefix (and stops nginx if it runs) before raising.
  local ok, err = pcall(function()
    sh("chmod 755 " .. quote(prefix) .. " && mkdir -p " .. quote(prefix .. "/tmp"))
    local port = free_port()
    srv.port, srv.url = port, "http://127.0.0.1:" .. port
    local upstream = (opts.upstream or "http://127.0.0.1:9"):match("^https?://([^/]+)")
    local proxy_conf = read_file(harness.repo .. "/examples/openresty/campaign_proxy.conf")
    if opts.read_timeout then -- a short proxy_read_timeout for the timeout specs
      proxy_conf = proxy_conf:gsub("proxy_read_timeout [^;]+;",
        "proxy_read_timeout " .. opts.read_timeout .. ";")
    end
    if opts.connect_timeout then -- a short proxy_connect_timeout for the connect timeout specs
      proxy_conf = proxy_conf:gsub("proxy_connect_timeout [^;]+;",
        "proxy_connect_timeout " .. opts.connect_timeout .. ";")
    end
    if opts.cafile then
      proxy_conf = proxy_conf:gsub("proxy_ssl_trusted_certificate [^;]+;",
        "proxy_ssl_trusted_certificate " .. opts.cafile .. ";")
    end
    write_file(prefix .. "/campaign_proxy.conf", proxy_conf)
    local is_root = sh("id -u"):match("^0") ~= nil
    local conf = render(read_file(harness.repo .. "/spec/openresty/nginx.conf"), {
      PREFIX = prefix, PORT = tostring(port), WORKERS = tostring(opts.workers or 1), REPO = harness.repo,
      USER_LINE = is_root and "user root;" or "", UPSTREAM_HOSTPORT = upstream,
      LUA_PATH = (opts.lua_path or os.getenv("CAMPAIGN_OPENRESTY_LUA_PATH") or ""),
      -- the cosocket transport verifies against lua_ssl_trusted_certificate (docs/openresty.md)
      LUA_SSL_CA = opts.cafile or "/etc/ssl/certs/ca-certificates.crt",
      HTTP_EXTRA = opts.http_extra or "",
    })
    if lua_is_static then conf = conf:gsub("\nload_module [^\n]*", "") end
    write_file(prefix .. "/nginx.conf", conf)
    live[srv] = true
    local out, code = sh(srv:nginx_command())
    if code ~= 0 then   -- nginx prints its start-up error; else the log says why
      error(nginx .. " did not start: " .. (out:match("%S") and out or log_errors(prefix .. "/error.log")), 0)
    end
    for _ = 1, 100 do
      local _, c = sh("curl -s -o /dev/null --max-time 1 " .. srv.url .. "/eval")
      if c == 0 then return end
      sh("sleep 0.05")
    end
    error(nginx .. " did not answer on " .. srv.url .. "; its error log:\n"
      .. log_errors(prefix .. "/error.log"), 0)
  end)
  if not ok then
    srv:stop()
    error(err, 2)
  end
  return srv
end

-- The nginx command line of this server, with `...` appended (e.g. "-s stop").
function server:nginx_command(...)
  local words = { quote(self.nginx), "-p", quote(self.prefix), "-c", quote(self.prefix .. "/nginx.conf"),
    "-e", quote(self.prefix .. "/error.log"), ... }
  return table.concat(words, " ")
end

--- server:post_json(path, table[, headers]) -> status, decoded body, raw body
-- headers: extra request headers {name = value} (the handler's own request headers).
function server:post_json(path, payload, headers)
  local file = self.prefix .. "/request-" .. tostring(math.random(1e9)) .. ".json"
  write_file(file, cjson.encode(payload))
  local hdrs = ""
  for name, value in pairs(headers or {}) do hdrs = hdrs .. " -H " .. quote(name .. ": " .. value) end
  local out = sh("curl -s -m 60 -w '\\n%{http_code}' -H 'Content-Type: application/json'" .. hdrs
    .. " --data-binary @" .. quote(file) .. " " .. quote(self.url .. path))
  os.remove(file)
  local body, status = out:match("^(.*)\n(%d+)$")
  local ok, decoded = pcall(cjson.decode, body or "")
  return tonumber(status), ok and decoded or nil, body or out
end

--- server:eval(code, params) -> the chunk's result (raises with nginx's error text on failure)
function server:eval(code, params)
  local status, decoded, raw = self:post_json("/eval", { code = code, params = params or {} })
  if status ~= 200 or type(decoded) ~= "table" then
    error("eval failed (" .. tostring(status) .. "): " .. tostring(decoded and decoded.error or raw), 2)
  end
  return decoded.result
end

--- server:eval_parallel(n, code, params) -> list of {status =, time =, result =}, wall seconds
-- Sends the same chunk n times at once (curl processes started together by xargs -P).
function server:eval_parallel(n, code, params)
  local socket = require "socket"
  local file = self.prefix .. "/parallel.json"
  write_file(file, cjson.encode { code = code, params = params or {} })
  local outdir = self.prefix .. "/parallel"
  sh("rm -rf " .. quote(outdir) .. " && mkdir -p " .. quote(outdir))
  local started = socket.gettime()
  sh("seq " .. n .. " | xargs -P " .. n .. " -I{} curl -s -m 60 -o " .. quote(outdir) .. "/{}.json"
    .. " -w '%{http_code} %{time_total}\\n' -H 'Content-Type: application/json' --data-binary @"
    .. quote(file) .. " " .. quote(self.url .. "/eval") .. " > /dev/null")
  local wall = socket.gettime() - started
  local results = {}
  for i = 1, n do
    local f = io.open(outdir .. "/" .. i .. ".json", "rb")
    local text = f and f:read("a") or ""
    if f then f:close() end
    local ok, decoded = pcall(cjson.decode, text)
    results[i] = { ok = ok and type(decoded) == "table" and decoded.result ~= nil,
      result = ok and type(decoded) == "table" and decoded.result or nil,
      error = ok and type(decoded) == "table" and decoded.error or text }
  end
  return results, wall
end

--- harness.emu_params(emu) -> the emulator's fields the handlers need
function harness.emu_params(emu)
  return { base_url = emu.base_url, ims_url = emu.ims_url, org = emu.org, api_key = emu.api_key,
    access_token = emu.access_token, client_id = emu.client_id, client_secret = emu.client_secret }
end

--- harness.suite([start_opts]) -> ctx: what a describe block of campaign.ngx specs shares, one
-- nginx for the block (harness.start{workers = 1, upstream = the shared emulator} plus
-- start_opts) and the shared emulator made fresh before each spec. The block registers
--   setup(ctx.start) teardown(ctx.stop) before_each(ctx.fresh)
-- (busted's hooks exist only in a spec file's environment); ctx.emu, ctx.srv and ctx.params
-- (the handlers' emulator fields) are set by ctx.start.
function harness.suite(start_opts)
  local emulator = require "emulator"
  local ctx = {}
  function ctx.start()
    ctx.emu = emulator.shared()
    local o = { workers = 1, upstream = ctx.emu.base_url }
    for k, v in pairs(start_opts or {}) do o[k] = v end
    ctx.srv = harness.start(o)
    ctx.params = { emu = harness.emu_params(ctx.emu) }
  end
  function ctx.stop()
    if ctx.srv then ctx.srv:stop() end
  end
  function ctx.fresh()
    ctx.emu:fresh()
  end
  return ctx
end

--- server:error_log() -> text of the error log
function server:error_log()
  local f = io.open(self.prefix .. "/error.log", "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

function server:stop()
  if self.stopped then return end
  self.stopped = true
  live[self] = nil
  local pid = (sh("cat " .. quote(self.prefix .. "/nginx.pid") .. " 2>/dev/null"):match("^(%d+)"))
  if pid then sh(self:nginx_command("-s", "stop")) end
  for _ = 1, 100 do -- until the master is gone, so no spec leaves a process behind
    if not pid or select(2, sh("kill -0 " .. pid)) ~= 0 then break end
    sh("sleep 0.05")
  end
  if pid and select(2, sh("kill -0 " .. pid)) == 0 then sh("kill -KILL " .. pid) end
  sh("rm -rf " .. quote(self.prefix))
end

harness.quote = quote
harness.free_port = free_port
harness.sh = sh
harness.json = cjson

return harness
