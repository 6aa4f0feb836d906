--- bin/campaign as a subprocess for the CLI specs: a clean environment (`env -i`) holding the
-- emulator's settings with its static token, plus `extra` variables; stdin is /dev/null.
local M = {}

--- word quoted for sh.
function M.quote(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

--- Runs `lua5.4 bin/campaign argv...` against emu -> {code =, out =, err =}.
function M.run(emu, argv, extra)
  local words = { "env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp") }
  local env = {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_ACCESS_TOKEN = emu.access_token, CAMPAIGN_CAFILE = emu.cafile,
  }
  for key, value in pairs(extra or {}) do env[key] = value end
  for key, value in pairs(env) do
    if value then words[#words + 1] = key .. "=" .. value end
  end
  words[#words + 1] = "lua5.4"
  words[#words + 1] = "bin/campaign"
  for _, word in ipairs(argv) do words[#words + 1] = word end
  local quoted = {}
  for i, word in ipairs(words) do quoted[i] = M.quote(word) end
  local out_path, err_path = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(table.concat(quoted, " ") .. " >" .. out_path .. " 2>" .. err_path
    .. " </dev/null")
  local result = { code = code, out = read_file(out_path), err = read_file(err_path) }
  os.remove(out_path)
  os.remove(err_path)
  return result
end

return M
