--- The Lua a spec's child process runs: the flavour under test (scripts/run-tests sets
-- CAMPAIGN_TEST_LUA), and under scripts/memcheck the same tool as the spec itself: valgrind (its
-- exit status 99 tells an error), or the sanitized interpreter running the specs (an ASan-built
-- campaign.so cannot load into a plain lua5.4, whose libraries do not start with the ASan
-- runtime).
local M = {}

M.lua = os.getenv("CAMPAIGN_TEST_LUA") or (jit and "luajit" or "lua5.4")
M.flavour = M.lua == "luajit" and "jit" or M.lua:match("^lua(5%.%d)$") or "5.4"
M.memcheck = os.getenv("CAMPAIGN_MEMCHECK")

--- The command line that starts the interpreter (a script path and arguments follow).
function M.command()
  if M.memcheck == "valgrind" then
    return "valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect"
      .. " --errors-for-leak-kinds=definite,indirect --log-file=build/memcheck/valgrind-child.%p.log "
      .. M.lua
  elseif M.memcheck == "asan" then
    local p = assert(io.popen("readlink /proc/$PPID/exe"))
    local exe = p:read("*l")
    p:close()
    return exe
  end
  return M.lua
end

return M
