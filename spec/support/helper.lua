-- Loaded by busted before every spec file (.busted `helper`).
-- Makes `require "campaign"` find the flavour under test even when busted is run by hand.
local lua = os.getenv("CAMPAIGN_TEST_LUA") or (jit and "luajit" or "lua5.4")
local flavour = lua == "luajit" and "jit" or "5.4"
package.cpath = "build/" .. flavour .. "/?.so;" .. package.cpath
