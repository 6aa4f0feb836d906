-- Loaded by busted before every spec file (.busted `helper`).
-- Makes `require "campaign"` find the flavour under test even when busted is run by hand.
-- The flavour is the running interpreter's: build/jit under LuaJIT, build/5.N under Lua 5.N.
local flavour = jit and "jit" or _VERSION:match("%d+%.%d+")
package.cpath = "build/" .. flavour .. "/?.so;" .. package.cpath
