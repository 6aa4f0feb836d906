-- Startup (init_by_lua, before nginx forks its worker) and POST /_emulator/reset:
-- both put the emulator back in its launch state.
local state = require "emu.state"
local seed = require "emu.seed"
local load_model = require "emu.load"

local _M = {}

-- Everything but the request log sequence returns to the launch state: seed records,
-- config defaults, the launch load flags (load counters zeroed), no faults, only the launch
-- access token valid, an empty request log.
function _M.reset()
  local settings = state.settings()
  seed.load(settings)
  state.reset_config()
  state.set_faults({})
  state.expire_tokens()
  state.add_token(settings.access_token, settings.token_ttl)
  state.clear_requests()
  load_model.reset()
end

function _M.init(settings)
  state.store_settings(settings)
  load_model.init(settings.load)
  math.randomseed(os.time())
  _M.reset()
end

return _M
