-- wrk script: the request the campaign client sends, so wrk's figure is the server's limit for it.
--   BENCH_METHOD (GET or PATCH), BENCH_BODY (JSON for PATCH), BENCH_TOKEN, BENCH_API_KEY
-- luacheck: globals wrk
local method = os.getenv("BENCH_METHOD") or "GET"
wrk.method = method
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
wrk.headers["X-Api-Key"] = os.getenv("BENCH_API_KEY") or ""
wrk.headers["Cache-Control"] = "no-cache"
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json;charset=utf-8" -- every request, as the client sends it
if method ~= "GET" then
  wrk.body = os.getenv("BENCH_BODY") or "{}"
end
