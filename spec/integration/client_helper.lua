-- Shared setup of the C client's integration specs (spec/integration/client_*_spec.lua).
local campaign = require "campaign"
local emulator = require "emulator"

local M = {}

-- The shared emulator, reset with no faults and an empty request log.
function M.fresh()
  return emulator.shared():fresh()
end

-- A client on emu; small retry waits so the specs stay fast.
function M.client(emu, extra)
  local opts = emu:client_options{retry_base = 0.01, retry_max = 0.05, timeout = 5}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return campaign.new(opts)
end

-- The PKey of the first seeded profile.
function M.first_pkey(client)
  local body = assert(client:get("profileAndServices/profile", {query = {_lineCount = 1}}))
  return body.content[1].PKey
end

-- The requests the emulator logged whose URI contains `needle` (plain text).
function M.logged(emu, needle)
  local out = {}
  for _, r in ipairs(emu:requests()) do
    if not needle or r.uri:find(needle, 1, true) then out[#out + 1] = r end
  end
  return out
end

-- A loopback port with nothing listening (bound then released by the kernel's choice).
function M.closed_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

M.now = function()
  local socket = require "socket"
  return socket.gettime()
end

return M
