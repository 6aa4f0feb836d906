-- Editor support (docs/editors.md): every public function of the Lua layers carries a LuaCATS
-- block right above its definition (a ---@param for each parameter and at least one
-- ---@return, `---@return nil` for none), and lua/campaign/_meta.lua, the definition file of
-- the C module, declares every name the module exports, every client method, every option
-- campaign.new and campaign.ngx.new accept and every field docs/errors.md lists.
-- lua-language-server itself is not packaged by Debian (bookworm) nor by npm, so its --check
-- runs here only when a `lua-language-server` is on PATH.
local campaign = require "campaign"

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local function lines_of(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

local function list(cmd)
  local pipe = assert(io.popen(cmd))
  local out = {}
  for line in pipe:lines() do out[#out + 1] = line end
  pipe:close()
  return out
end

local META = "lua/campaign/_meta.lua"

-- The Lua layers: every module but the definition file itself.
local function layer_files()
  local files = {}
  for _, path in ipairs(list("ls lua/campaign/*.lua lua/campaign/workflow/*.lua | sort")) do
    if path ~= META then files[#files + 1] = path end
  end
  return files
end

local function escape(s) return (s:gsub("%p", "%%%0")) end

-- The name of the table a module returns (its last top-level `return <name>`).
local function module_name(lines)
  for i = #lines, 1, -1 do
    local name = lines[i]:match("^return%s+([%a_][%w_]*)%s*$")
    if name then return name end
  end
  return nil
end

-- The public functions of a module: {name =, line = n, params = {...}, method = bool}.
-- `function M.name(`, `function M:name(`, `M.name = function(`, and `M.name = f` where f is a
-- local function of the same file (its definition is what must be annotated). Names starting
-- with `_` are internal and left out.
local function public_functions(lines, m)
  local locals = {}
  for i, line in ipairs(lines) do
    local name, args = line:match("^local%s+function%s+([%a_][%w_]*)%s*%(([^)]*)%)")
    if name then locals[name] = { line = i, args = args } end
  end
  local found = {}
  local M = escape(m)
  for i, line in ipairs(lines) do
    local sep, name, args = line:match("^function%s+" .. M .. "([.:])([%a_][%w_]*)%s*%(([^)]*)%)")
    if not name then
      name, args = line:match("^" .. M .. "%.([%a_][%w_]*)%s*=%s*function%s*%(([^)]*)%)")
      sep = "."
    end
    local at = i
    if not name then
      local alias
      name, alias = line:match("^" .. M .. "%.([%a_][%w_]*)%s*=%s*([%a_][%w_]*)%s*$")
      if name and locals[alias] then
        at, args = locals[alias].line, locals[alias].args
      else
        name = nil
      end
    end
    -- `_name`: internal by convention (campaign._error_text, cli._same_file), not required
    if name and name:sub(1, 1) ~= "_" then
      local params = {}
      for p in args:gmatch("[%a_][%w_]*") do params[#params + 1] = p end
      if args:find("...", 1, true) then params[#params + 1] = "..." end
      found[#found + 1] = { name = m .. sep .. name, line = at, params = params, method = sep == ":" }
    end
  end
  return found
end

-- What is wrong with the annotation block right above line n (nil: nothing).
local function annotation_problem(lines, fn)
  local params, returns = {}, 0
  local i = fn.line - 1
  while i >= 1 and lines[i]:match("^%-%-%-@") do
    local p = lines[i]:match("^%-%-%-@param%s+([%a_][%w_]*%.?%.?%.?)")
    if p then params[p] = true end
    if lines[i]:match("^%-%-%-@return%s") then returns = returns + 1 end
    i = i - 1
  end
  if i == fn.line - 1 then return "no ---@param/---@return block right above it" end
  local missing = {}
  for _, p in ipairs(fn.params) do
    if not params[p] then missing[#missing + 1] = p end
  end
  if #missing > 0 then return "no ---@param for " .. table.concat(missing, ", ") end
  if returns == 0 then return "no ---@return (write `---@return nil` when it returns nothing)" end
  return nil
end

local meta_text = read_all(META)
local meta_lines = lines_of(meta_text)

-- The ---@field names of a ---@class block of the definition file.
local function class_fields(class)
  local fields, inside = {}, false
  for _, line in ipairs(meta_lines) do
    local c = line:match("^%-%-%-@class%s+([%w_.]+)")
    if c then
      inside = c == class
    elseif inside then
      local f = line:match("^%-%-%-@field%s+([%w_]+)")
      if f then
        fields[f] = true
      elseif not line:match("^%-%-%-") then
        inside = false
      end
    end
  end
  return fields
end

local function declares(pattern) return meta_text:find(pattern) ~= nil end

describe("LuaCATS annotations", function()
  local files = layer_files()

  it("finds the Lua layers and their public functions", function()
    assert.is_true(#files >= 15, table.concat(files, " "))
    local total = 0
    for _, path in ipairs(files) do
      local lines = lines_of(read_all(path))
      local m = module_name(lines)
      assert.is_string(m, path .. " returns no module table")
      total = total + #public_functions(lines, m)
    end
    assert.is_true(total >= 80, "only " .. total .. " public functions found")
  end)

  for _, path in ipairs(files) do
    it("annotate every public function of " .. path, function()
      local lines = lines_of(read_all(path))
      local problems = {}
      for _, fn in ipairs(public_functions(lines, module_name(lines))) do
        local problem = annotation_problem(lines, fn)
        if problem then
          problems[#problems + 1] = ("%s:%d: %s: %s"):format(path, fn.line, fn.name, problem)
        end
      end
      assert.same({}, problems)
    end)
  end

  it("the checker itself fails on a function without its block, or with a parameter left out", function()
    local lines = lines_of(table.concat({
      "local M = {}",
      "---@param a string", "---@return nil", "function M.ok(a) end",
      "-- a comment only", "function M.bare(a) end",
      "---@param a string", "---@return nil", "function M:half(a, b) end",
      "---@param x any", "function M.noret(x) end",
      "---@return boolean", "local function helper() return true end",
      "M.alias = helper",
      "local function hidden() end", "M.hidden = hidden",
      "M.anon = function(z) return z end",
      "function M._internal(q) end",
      "return M",
    }, "\n"))
    local verdicts = {}
    for _, fn in ipairs(public_functions(lines, module_name(lines))) do
      verdicts[fn.name] = annotation_problem(lines, fn) or "ok"
    end
    assert.same({
      ["M.ok"] = "ok",
      ["M.bare"] = "no ---@param/---@return block right above it",
      ["M:half"] = "no ---@param for b",
      ["M.noret"] = "no ---@return (write `---@return nil` when it returns nothing)",
      ["M.alias"] = "ok",
      ["M.hidden"] = "no ---@param/---@return block right above it",
      ["M.anon"] = "no ---@param/---@return block right above it",
    }, verdicts)
  end)
end)

describe("the definition file " .. META, function()
  it("is a ---@meta file named after the module", function()
    assert.equal("---@meta campaign", meta_lines[1])
    assert.matches("\nreturn campaign\n$", meta_text)
  end)

  it("declares every name the C module exports", function()
    local fields, missing = class_fields("campaign"), {}
    for name, value in pairs(campaign) do
      local ok = fields[name]
      if type(value) == "function" then
        ok = ok or declares("\nfunction campaign%." .. escape(name) .. "%(")
      end
      if not ok then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert.same({}, missing)
    -- the Lua layers the module loads on first use (docs/client.md "Module table")
    for _, layer in ipairs { "api", "auth", "pages", "workflow", "ngx", "cli" } do
      assert.is_true(fields[layer] ~= nil, "no ---@field " .. layer .. " in ---@class campaign")
    end
  end)

  it("declares every client method (the metatable's __index) as a campaign.Client method", function()
    local client = campaign.new { org = "acme", api_key = "k", token = "t", base_url = "http://127.0.0.1:9" }
    local index = getmetatable(client).__index
    assert.is_table(index)
    local row = read_all("docs/client.md"):match("| `campaign%.([%w_/]+)` | the client methods")
    assert.is_string(row, "docs/client.md's Module table lists the client methods")
    local missing = {}
    for name in row:gmatch("[%w_]+") do
      assert.is_function(index[name], name .. " is in docs/client.md but not a method")
      if not declares("\nfunction Client:" .. name .. "%(") then missing[#missing + 1] = "Client:" .. name end
    end
    for name, value in pairs(index) do
      if type(value) == "function" and not declares("\nfunction Client:" .. escape(name) .. "%(")
          and not declares("\nfunction campaign%." .. escape(name) .. "%(") then
        missing[#missing + 1] = name
      end
    end
    client:close()
    assert.same({}, missing)
  end)

  it("declares every option of campaign.new (src/options.c) and no option it refuses", function()
    local names = read_all("src/options.c"):match("OPTION_NAMES%[%]%s*=%s*{(.-)NULL}")
    assert.is_string(names)
    local fields, missing, count = class_fields("campaign.Options"), {}, 0
    for name in names:gmatch('"([%w_]+)"') do
      count = count + 1
      if not fields[name] then missing[#missing + 1] = name end
    end
    assert.is_true(count >= 17)
    assert.same({}, missing)
    for name in pairs(fields) do
      local opts = { org = "acme", api_key = "k", token = "t" }
      opts[name] = coroutine.create(print) -- a wrong type: refused, but not as unknown
      local ok, err = pcall(campaign.new, opts)
      assert.is_false(ok)
      assert.not_matches("unknown option", err)
    end
  end)

  it("declares every option of docs/client.md's table and campaign.ngx.new's", function()
    local doc = read_all("docs/client.md"):match("## `campaign%.new%(opts%)`(.-)\n## ")
    local fields, missing = class_fields("campaign.Options"), {}
    for name in doc:gmatch("\n| `([%w_]+)` |") do
      if not fields[name] then missing[#missing + 1] = name end
    end
    -- campaign.ngx.new's: its own (NGX_OPTIONS), and campaign.new's (the C core validates
    -- them) but those nginx.conf decides (NGINX_OPTIONS)
    local ngx_text = read_all("lua/campaign/ngx.lua")
    local own = ngx_text:match("\nlocal NGX_OPTIONS = {(.-)\n}")
    local refused = ngx_text:match("\nlocal NGINX_OPTIONS = {(.-)\n}")
    local c_names = read_all("src/options.c"):match("OPTION_NAMES%[%]%s*=%s*{(.-)NULL}")
    assert.is_string(own)
    assert.is_string(refused)
    local not_here = {}
    for name in refused:gmatch("\n%s*([%w_]+)%s*=") do not_here[name] = true end
    local ngx_fields = class_fields("campaign.ngx.Options")
    local names = {}
    for name in own:gmatch("([%w_]+)%s*=") do names[#names + 1] = name end
    for name in c_names:gmatch('"([%w_]+)"') do
      if not not_here[name] then names[#names + 1] = name end
    end
    for _, name in ipairs(names) do
      if not ngx_fields[name] then missing[#missing + 1] = "ngx." .. name end
    end
    assert.same({}, missing)
  end)

  it("declares every field of docs/errors.md's error object, and the client's res fields", function()
    local doc = read_all("docs/errors.md"):match("## Fields(.-)\n## ")
    local fields, missing, count = class_fields("campaign.Error"), {}, 0
    for name in doc:gmatch("\n| `([%w_]+)` |") do
      count = count + 1
      if not fields[name] then missing[#missing + 1] = name end
    end
    assert.is_true(count >= 20)
    local res_doc = read_all("docs/client.md"):match("| field | |(.-)\n\n")
    local res_fields = class_fields("campaign.Response")
    for name in res_doc:gmatch("\n%s*| `([%w_]+)` |") do
      if not res_fields[name] then missing[#missing + 1] = "res." .. name end
    end
    assert.same({}, missing)
  end)

  it("names only classes and aliases it defines (or Lua's own types)", function()
    local defined = {}
    for _, text in ipairs { meta_text } do
      for name in text:gmatch("%-%-%-@class%s+([%w_.]+)") do defined[name] = true end
      for name in text:gmatch("%-%-%-@alias%s+([%w_.]+)") do defined[name] = true end
    end
    for _, path in ipairs(layer_files()) do
      for name in read_all(path):gmatch("%-%-%-@class%s+([%w_.]+)") do defined[name] = true end
    end
    local unknown = {}
    for _, path in ipairs(layer_files()) do
      for line in read_all(path):gmatch("%-%-%-@[^\n]*") do
        for name in line:gmatch("campaign[%w_]*%.[%w_.]*[%w_]") do
          if not defined[name] then unknown[#unknown + 1] = path .. ": " .. name end
        end
      end
    end
    for line in meta_text:gmatch("%-%-%-@[^\n]*") do
      if not line:match("^%-%-%-@meta") then
        for name in line:gmatch("campaign[%w_]*%.[%w_.]*[%w_]") do
          if not defined[name] then unknown[#unknown + 1] = META .. ": " .. name end
        end
      end
    end
    assert.same({}, unknown)
  end)
end)

describe("lua-language-server --check", function()
  local pipe = io.popen("command -v lua-language-server 2>/dev/null")
  local luals = pipe and pipe:read("*l")
  if pipe then pipe:close() end
  if not luals or luals == "" then
    pending("lua-language-server is not installed (not in Debian bookworm, not on npm)")
    return
  end
  it("finds no problem in lua/", function()
    local out = os.tmpname()
    os.remove(out)
    local cmd = ("%s --check=lua --checklevel=Warning --logpath=%s 2>&1"):format(luals, out)
    local p = assert(io.popen(cmd))
    local text = p:read("*a")
    p:close()
    assert.matches("no problems found", text:lower())
  end)
end)
