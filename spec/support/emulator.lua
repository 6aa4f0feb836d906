-- Test support for the ACS emulator (emulator/campaign-emulator), for every part's specs.
-- Pure Lua (5.1/LuaJIT and 5.4); talks HTTP through the curl command, so it does not need
-- the project's C module.
--
--   local emulator = require "emulator"
--   local emu = emulator.shared()      -- the test runner's emulator (CAMPAIGN_EMU_* env), or
--                                      -- one started once per process and stopped at exit
--   emu.base_url, emu.ims_url, emu.org, emu.api_key, emu.client_id, emu.client_secret,
--   emu.access_token, emu.prefix, emu.cafile
--   local e2 = emulator.start{tls = true, http2 = true, token_ttl = 2, profiles = 10}
--   finally(function() e2:stop() end)
--   emu:reset()  emu:requests()  emu:clear_requests()  emu:faults{...}  emu:clear_faults()
--   emu:fresh()  (reset + clear_faults + clear_requests)
--   emu:expire_tokens()  emu:config{...}  emu:profiles()  emu:client_options(extra)
--   emu:call(method, path, body, opts) -> status, decoded body, raw body, headers
local json_ok, cjson = pcall(require, "cjson")
local json
if json_ok then
  json = { encode = cjson.encode, decode = cjson.decode, null = cjson.null }
else
  local dkjson = require "dkjson"
  json = { encode = dkjson.encode, decode = function(s) return dkjson.decode(s, 1, dkjson.null) end,
    null = dkjson.null }
end

local M = { json = json }
M.__index = M

local ENV_KEYS = { "base_url", "ims_url", "org", "api_key", "client_id", "client_secret", "access_token",
  "cafile", "prefix" }

local function here()
  local source = debug.getinfo(1, "S").source
  local dir = source:match("^@(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then dir = (os.getenv("PWD") or ".") .. "/" .. dir end
  return dir
end

-- The launcher, found from this file's place in the repository (spec/support/).
M.launcher = here() .. "/../../emulator/campaign-emulator"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

-- Runs a shell command; returns its stdout, whether it exited 0, and its exit code.
-- The exit code travels on the last line: LuaJIT's pipe:close() does not report it.
local function run(command)
  local pipe = assert(io.popen("(" .. command .. "); echo \"__rc=$?\"", "r"))
  local out = pipe:read("*a")
  pipe:close()
  local body, code = out:match("^(.-)__rc=(%d+)%s*$")
  code = tonumber(code) or -1
  return body or out, code == 0, code
end
M.run = run

local function parse_env(text)
  local info = {}
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then info[k] = v end
  end
  return info
end

local function new(info, owned)
  local self = setmetatable({}, M)
  for _, k in ipairs(ENV_KEYS) do self[k] = info[k] end
  self.owned = owned
  return self
end

-- Starts a private emulator. opts: tls, http2, token_ttl, profiles, port, org, prefix.
-- Raises when it does not start (a spec cannot go on without it).
function M.start(opts)
  opts = opts or {}
  local prefix = opts.prefix
  local made_prefix = false
  if not prefix then
    prefix = run("mktemp -d \"${TMPDIR:-/tmp}/campaign-emu.XXXXXX\""):gsub("%s+$", "")
    assert(prefix ~= "", "mktemp failed")
    made_prefix = true
  end
  local args = { shell_quote(M.launcher), "start", "--prefix", shell_quote(prefix) }
  if opts.tls then args[#args + 1] = "--tls" end
  if opts.http2 then args[#args + 1] = "--http2" end
  if opts.port then args[#args + 1] = "--port " .. tonumber(opts.port) end
  if opts.token_ttl then args[#args + 1] = "--token-ttl " .. tonumber(opts.token_ttl) end
  if opts.profiles then args[#args + 1] = "--profiles " .. tonumber(opts.profiles) end
  if opts.org then args[#args + 1] = "--org " .. shell_quote(opts.org) end
  local out, ok = run(table.concat(args, " ") .. " 2>&1")
  local info = parse_env(out)
  if not ok or not info.base_url then
    if made_prefix then run("rm -rf " .. shell_quote(prefix)) end
    error("campaign-emulator did not start: " .. out, 2)
  end
  local self = new(info, true)
  self.made_prefix = made_prefix
  self:watch_owner()
  return self
end

-- The pid of this Lua process: the parent of the shell io.popen starts.
local function own_pid()
  return (run("echo $PPID")):match("%d+")
end

-- A detached watcher stops the emulator when this process dies without stopping it
-- (killed, crashed, timed out), so no nginx outlives the test run.
-- It watches this emulator's nginx master only, so it never touches a later emulator
-- started on the same prefix.
function M:watch_owner()
  local pid = own_pid()
  local pidfile = self.prefix .. "/logs/nginx.pid"
  local master = (run("cat " .. shell_quote(pidfile) .. " 2>/dev/null")):match("%d+")
  if not pid or not master then return end
  local stop = shell_quote(M.launcher) .. " stop --prefix " .. shell_quote(self.prefix)
  if self.made_prefix then stop = stop .. "; rm -rf " .. shell_quote(self.prefix) end
  local script = "while kill -0 " .. pid .. " 2>/dev/null && kill -0 " .. master .. " 2>/dev/null; do "
    .. "sleep 1; done; "
    .. "if kill -0 " .. master .. " 2>/dev/null && [ \"$(cat " .. shell_quote(pidfile) .. " 2>/dev/null)\" = "
    .. master .. " ]; then " .. stop .. "; fi"
  run("setsid sh -c " .. shell_quote(script) .. " >/dev/null 2>&1 </dev/null &")
end

-- Stops an emulator this process started (the shared one from the runner is left alone).
function M:stop()
  if not self.owned or self.stopped then return end
  self.stopped = true
  run(shell_quote(M.launcher) .. " stop --prefix " .. shell_quote(self.prefix) .. " 2>&1")
  if self.made_prefix then run("rm -rf " .. shell_quote(self.prefix)) end
end

local shared_instance
local shared_guard

-- The emulator every spec shares: the runner's (from CAMPAIGN_EMU_* variables), else one
-- started on first use and stopped when the Lua state closes (best effort).
function M.shared()
  if shared_instance then return shared_instance end
  local base = os.getenv("CAMPAIGN_EMU_BASE_URL")
  if base and base ~= "" then
    local info = {}
    for _, k in ipairs(ENV_KEYS) do
      local v = os.getenv("CAMPAIGN_EMU_" .. k:upper())
      if v ~= "" then info[k] = v end
    end
    shared_instance = new(info, false)
    return shared_instance
  end
  shared_instance = M.start()
  local instance = shared_instance
  local stop = function() instance:stop() end
  if newproxy then                               -- Lua 5.1/LuaJIT: only userdata have __gc
    shared_guard = newproxy(true)
    getmetatable(shared_guard).__gc = stop
  else
    shared_guard = setmetatable({}, { __gc = stop })
  end
  return shared_instance
end

-- ------------------------------------------------------------------ HTTP through curl

-- Sends one request; returns status (number), decoded body (or nil), raw body, headers
-- (lower-case names). path: absolute URL, "/..." from the server root, or a path relative
-- to <base_url>/<org>/campaign/. opts: headers (table), auth (default true: bearer token
-- and API key), raw (string body sent as is), form (string, sent urlencoded), http2,
-- timeout (seconds, default 10).
function M:call(method, path, body, opts)
  opts = opts or {}
  local url
  if path:match("^https?://") then
    url = path
  elseif path:sub(1, 1) == "/" then
    url = self.base_url .. path
  else
    url = self.base_url .. "/" .. self.org .. "/campaign/" .. path
  end
  local headers_file = os.tmpname()
  local body_file
  local args = { "curl -s -S -g --max-time " .. (opts.timeout or 10), "-X", shell_quote(method),
    "-D", shell_quote(headers_file), "-H 'Expect:'" }
  if self.cafile then args[#args + 1] = "--cacert " .. shell_quote(self.cafile) end
  if opts.http2 then args[#args + 1] = "--http2" else args[#args + 1] = "--http1.1" end
  local headers = {}
  if opts.auth ~= false then
    headers["Authorization"] = "Bearer " .. (opts.token or self.access_token)
    headers["X-Api-Key"] = opts.api_key or self.api_key
  end
  local data = opts.raw or opts.form
  if body ~= nil then data = json.encode(body) end
  if data then
    headers["Content-Type"] = opts.form and "application/x-www-form-urlencoded"
      or "application/json;charset=utf-8"
    body_file = os.tmpname()
    local fh = assert(io.open(body_file, "wb"))
    fh:write(data)
    fh:close()
    args[#args + 1] = "--data-binary @" .. shell_quote(body_file)
  end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  for k, v in pairs(headers) do
    if v ~= false then args[#args + 1] = "-H " .. shell_quote(k .. ": " .. v) end
  end
  args[#args + 1] = "-w '\\n%{http_code}'"
  args[#args + 1] = shell_quote(url)
  local out = run(table.concat(args, " ") .. " 2>/dev/null")
  if body_file then os.remove(body_file) end
  local fh = io.open(headers_file, "rb")
  local head = fh and fh:read("*a") or ""
  if fh then fh:close() end
  os.remove(headers_file)
  local raw, code = out:match("^(.*)\n(%d%d%d)$")
  local status = tonumber(code) or 0
  local response_headers = {}
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then response_headers[k:lower()] = v end
  end
  local decoded
  if raw and raw ~= "" then
    local ok, value = pcall(json.decode, raw)
    if ok then decoded = value end
  end
  return status, decoded, raw, response_headers
end

local function admin(self, method, path, body)
  local status, decoded, raw = self:call(method, "/_emulator/" .. path, body, { auth = false })
  if status ~= 200 then
    error("emulator admin " .. method .. " " .. path .. " -> " .. status .. ": " .. tostring(raw), 3)
  end
  return decoded
end

function M:reset() return admin(self, "POST", "reset") end
-- The logged requests, oldest first; only those after sequence number `since` when given.
function M:requests(since)
  return admin(self, "GET", "requests" .. (since and ("?since=" .. tonumber(since)) or ""))
end
function M:clear_requests() return admin(self, "DELETE", "requests") end
function M:clear_faults() return admin(self, "DELETE", "faults") end
-- A clean slate for one spec: seed data back, no faults, an empty request log.
function M:fresh()
  self:reset()
  self:clear_faults()
  self:clear_requests()
  return self
end
function M:expire_tokens() return admin(self, "POST", "tokens/expire") end
function M:config(changes) return admin(self, "POST", "config", changes) end
function M:health() return admin(self, "GET", "health") end

-- Adds faults (a list of fault tables, or one fault table) after the current ones.
function M:faults(list)
  if list[1] == nil then list = { list } end
  return admin(self, "POST", "faults", list)
end

-- A fresh token (valid for ttl seconds, default the emulator's --token-ttl).
function M:new_token(ttl)
  return admin(self, "POST", "tokens", { ttl = ttl }).access_token
end

-- Every stored record of a kind ("profile", "service", ...), rendered like the Ext API.
function M:records(kind)
  return admin(self, "GET", "records/" .. kind)
end

-- Sets stored fields of one record as they are (no ACS validation), e.g.
-- emu:patch_record("event", pkey, {status = "processed"}); returns the stored record.
function M:patch_record(kind, pkey, fields)
  return admin(self, "PATCH", "records/" .. kind .. "/" .. pkey, fields)
end

function M:profiles()
  return self:records("profile")
end

-- Options for campaign.new{} pointing at this emulator, merged with `extra`.
function M:client_options(extra)
  local opts = { org = self.org, api_key = self.api_key, token = self.access_token, base_url = self.base_url,
    cafile = self.cafile }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

return M
