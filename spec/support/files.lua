--- Whole-file reads and writes for specs (binary mode, so that bytes compare exactly).
local M = {}

--- The file's bytes, or nil when it cannot be opened (a missing file is a value to assert on).
function M.read(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

--- Writes text as the whole file (raises when it cannot) and returns the path.
function M.write(path, text)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
  return path
end

return M
