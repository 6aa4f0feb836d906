--- bin/campaign as a subprocess for the CLI specs: a clean environment (`env -i`, PATH and HOME
-- kept) holding only the variables given; stdin is a file of the given text, or /dev/null.
local M = {}

--- word quoted for sh.
function M.quote(word)
  return "'" .. tostring(word):gsub("'", "'\\''") .. "'"
end

local read_file = require("files").read

--- The emulator's settings with its static access token.
function M.token_env(emu)
  return {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_ACCESS_TOKEN = emu.access_token, CAMPAIGN_CAFILE = emu.cafile,
  }
end

--- The emulator's OAuth client credentials: each run fetches its own token from IMS, so a spec
-- does not depend on a token that another spec may have expired.
function M.ims_env(emu)
  return {
    CAMPAIGN_ORG = emu.org, CAMPAIGN_API_KEY = emu.api_key, CAMPAIGN_BASE_URL = emu.base_url,
    CAMPAIGN_CLIENT_ID = emu.client_id, CAMPAIGN_CLIENT_SECRET = emu.client_secret,
    CAMPAIGN_IMS_URL = emu.ims_url, CAMPAIGN_CAFILE = emu.cafile,
  }
end

--- The sh command line of `lua5.4 bin/campaign argv...` with exactly the variables of env.
function M.command_line(env, argv)
  local words = { "env", "-i", "PATH=" .. os.getenv("PATH"), "HOME=" .. (os.getenv("HOME") or "/tmp") }
  for key, value in pairs(env) do
    if value then words[#words + 1] = key .. "=" .. value end
  end
  words[#words + 1] = "lua5.4"
  words[#words + 1] = "bin/campaign"
  for _, word in ipairs(argv) do words[#words + 1] = word end
  local quoted = {}
  for i, word in ipairs(words) do quoted[i] = M.quote(word) end
  return table.concat(quoted, " ")
end

--- Runs it with env, and stdin (text) as standard input -> {code =, out =, err =}.
function M.exec(env, argv, stdin)
  local out_path, err_path = os.tmpname(), os.tmpname()
  local in_path
  if stdin then
    in_path = os.tmpname()
    local file = assert(io.open(in_path, "wb"))
    file:write(stdin)
    file:close()
  end
  local _, _, code = os.execute(M.command_line(env, argv) .. " >" .. out_path .. " 2>" .. err_path
    .. " <" .. (in_path or "/dev/null"))
  local result = { code = code, out = read_file(out_path), err = read_file(err_path) }
  os.remove(out_path)
  os.remove(err_path)
  if in_path then os.remove(in_path) end
  return result
end

--- Runs it against emu with its static token, plus `extra` variables -> {code =, out =, err =}.
function M.run(emu, argv, extra)
  local env = M.token_env(emu)
  for key, value in pairs(extra or {}) do env[key] = value end
  return M.exec(env, argv)
end

return M
