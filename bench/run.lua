-- bench/run.lua: runs every measurement once, in one run, and prints markdown tables where each
-- figure is a ratio against a baseline measured in the same run (the baseline's own req/s is
-- shown so the ratio can be read). Started by scripts/bench, which builds raw_curl, starts the
-- servers and passes them in the environment:
--   BENCH_RAW              path of the raw_curl binary
--   BENCH_LIB              folder holding 5.4/campaign.so and jit/campaign.so (default build)
--   BENCH_SECONDS          seconds per throughput measurement (default 1)
--   BENCH_ROUNDS           rounds per row (default 3): a row's contenders run one after the
--                          other, round after round, and each keeps its best round, so a
--                          burst of load from elsewhere on the machine hits them alike
--   BENCH_STATIC_URL, BENCH_STATIC_TLS_URL, BENCH_STATIC_CAFILE     bench/static-server
--   BENCH_EMU_URL, BENCH_EMU_TLS_URL, BENCH_EMU_CAFILE, BENCH_EMU_ORG, BENCH_EMU_TOKEN,
--   BENCH_EMU_API_KEY, BENCH_EMU_PATH                                the emulator (optional)
--   BENCH_INSTRUCTIONS_CMD a command printing `c_ir= ngx_ir=` (bench/instructions-per-request; optional)
--   BENCH_OPENRESTY_CMD    a command printing `rps=` for the OpenResty client (optional; run
--                          with `--transport capture` and `--transport cosocket`)
--   BENCH_BULK_URL, BENCH_BULK_ORG, BENCH_BULK_TOKEN, BENCH_BULK_API_KEY   an emulator of the
--                          bulk rows' own (its load model is changed), seeded with enough
--                          profiles (optional: no bulk rows without it)
--   BENCH_BULK=0           skips the bulk rows; BENCH_BULK_RSS=0 skips only the 1M-line RSS row
--   BENCH_BULK_ITEMS_16, BENCH_BULK_ITEMS_64 (2000, 4000), BENCH_BULK_SWEEP_ITEMS (1000),
--   BENCH_BULK_SWEEP ("1 2 4 8 16 32 64"), BENCH_BULK_RSS_LINES (1000000): bulk_bench.lua's sizes
-- Exits 1 when a measurement failed (its cell reads "failed"); the tables still print.
local env = os.getenv

local seconds = tonumber(env("BENCH_SECONDS") or "") or 1
local rounds = tonumber(env("BENCH_ROUNDS") or "") or 3
local raw = env("BENCH_RAW") or "build/bench/raw_curl"
local failures = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local lib = env("BENCH_LIB") or "build"
local lua_env = {
  ["5.4"] = "LUA_PATH='bench/?.lua;lua/?.lua;;' LUA_CPATH=" .. q(lib .. "/5.4/?.so;;") .. " lua5.4",
  jit = "LUA_PATH='bench/?.lua;lua/?.lua;;' LUA_CPATH=" .. q(lib .. "/jit/?.so;;") .. " luajit",
}

-- A server: where the profile lives and how to authenticate.
local function server(prefix, tls)
  local base = env(prefix .. (tls and "_TLS_URL" or "_URL"))
  if not base or base == "" then return nil end
  -- a TLS-only setting (BENCH_EMU_TLS_TOKEN) wins over the shared one (BENCH_EMU_TOKEN)
  local function setting(name, default)
    return tls and env(prefix .. "_TLS_" .. name) or env(prefix .. "_" .. name) or default
  end
  local org = setting("ORG", "bench")
  local path = setting("PATH", "profileAndServices/profile/@bench")
  return {
    base = base, org = org, path = path, tls = tls,
    url = base .. "/" .. org .. "/campaign/" .. path,
    cafile = tls and setting("CAFILE") or nil,
    token = setting("TOKEN", "bench-token"),
    api_key = setting("API_KEY", "bench-api-key"),
  }
end

local servers = {
  { name = "static nginx, HTTP", s = server("BENCH_STATIC", false) },
  { name = "static nginx, HTTPS", s = server("BENCH_STATIC", true) },
  { name = "emulator, HTTP", s = server("BENCH_EMU", false) },
  { name = "emulator, HTTPS", s = server("BENCH_EMU", true) },
}

-- Failure reports show the command; tokens and API keys never appear in them.
local function redact(text)
  for _, srv in ipairs(servers) do
    if srv.s then
      for _, secret in ipairs({ srv.s.token, srv.s.api_key }) do
        text = text:gsub(secret:gsub("%p", "%%%0"), "<redacted>")
      end
    end
  end
  return text
end

local patch_body = '{"phone":"3301020304","firstName":"John"}'

-- Runs a command and returns the figures it printed, or nil after recording the failure.
local function measure(label, cmd)
  io.stderr:write("bench: ", label, "\n")
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  local rps = tonumber(out:match("rps=([%d.]+)") or out:match("Requests/sec:%s*([%d.]+)"))
  local non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)") or "0")
  local errors = out:match("Socket errors:[^\n]*")
  if not ok or not rps or non2xx > 0 or errors then
    failures[#failures + 1] = redact(("%s\n  $ %s\n%s"):format(label, cmd, out:sub(1, 1500)))
    return nil
  end
  local figures = { rps = rps }
  for k, v in out:gmatch("([%w_]+)=([%d.]+)") do figures[k] = tonumber(v) end
  return figures
end

-- Runs the contenders of one row in interleaved rounds; returns, per contender key, the
-- figures of its best round (nil when any of its rounds failed).
local function row(label, contenders)
  local best, failed = {}, {}
  for round = 1, rounds do
    for _, c in ipairs(contenders) do
      if not failed[c.key] then
        local f = measure(("%s: %s (round %d)"):format(label, c.key, round), c.cmd)
        if not f then
          failed[c.key] = true
          best[c.key] = nil
        elseif not best[c.key] or f.rps > best[c.key].rps then
          best[c.key] = f
        end
      end
    end
  end
  return best
end

local function raw_cmd(s, o)
  local parts = { q(raw), "--url", q(s.url), "--seconds", seconds,
    "--header", q("Authorization: Bearer " .. s.token), "--header", q("X-Api-Key: " .. s.api_key),
    "--header", q("Cache-Control: no-cache"), "--header", q("Accept: application/json") }
  if s.cafile then parts[#parts + 1] = "--cafile " .. q(s.cafile) end
  if o.method then parts[#parts + 1] = "--method " .. o.method .. " --data " .. q(patch_body) end
  if o.concurrency then parts[#parts + 1] = "--concurrency " .. o.concurrency end
  if o.http2 then parts[#parts + 1] = "--http2" end
  if o.parse then parts[#parts + 1] = o.parse == "lex" and "--lex" or "--parse" end
  return table.concat(parts, " ")
end

local function client_cmd(s, o)
  local parts = { lua_env[o.lua or "5.4"], "bench/client_bench.lua", "--base-url", q(s.base),
    "--org", q(s.org), "--path", q(s.path), "--token", q(s.token), "--api-key", q(s.api_key),
    "--mode", o.mode, "--seconds", seconds, "--http2", o.http2 and "on" or "off" }
  if s.cafile then parts[#parts + 1] = "--cafile " .. q(s.cafile) end
  if o.concurrency then parts[#parts + 1] = "--concurrency " .. o.concurrency end
  if o.extra then parts[#parts + 1] = o.extra end
  return table.concat(parts, " ")
end

local function wrk_cmd(s, o)
  return ("BENCH_METHOD=%s BENCH_BODY=%s BENCH_TOKEN=%s BENCH_API_KEY=%s "
    .. "wrk -t1 -c%d -d%ds -s bench/wrk_request.lua %s"):format(
    o.method or "GET", q(patch_body), q(s.token), q(s.api_key), o.concurrency or 1,
    math.max(1, math.ceil(seconds)), q(s.url))
end

local function luasocket_cmd(s)
  local cmd = lua_env["5.4"] .. " bench/luasocket_bench.lua --url " .. q(s.url) .. " --seconds " .. seconds
    .. " --token " .. q(s.token) .. " --api-key " .. q(s.api_key)
  if s.cafile then cmd = cmd .. " --cafile " .. q(s.cafile) end
  return cmd
end

local function ratio(x, base)
  if not x then return "failed" end
  if not base then return ("%.0f req/s (no baseline)"):format(x.rps) end
  return ("%.2fx"):format(x.rps / base.rps)
end

-- A ratio with its target beside it: "0.93x (target >= 0.95x)".
local function target_ratio(x, base, target)
  local r = ratio(x, base)
  if not x or not base then return r end
  return ("%s (target ≥ %.2fx%s)"):format(r, target, x.rps / base.rps >= target and ": met" or ": not met")
end

local function rps(x)
  return x and ("%.0f"):format(x.rps) or "failed"
end

local out = {}
local function emit(line) out[#out + 1] = line; print(line) end

local function table_header(cols)
  emit("| " .. table.concat(cols, " | ") .. " |")
  local rule = {}
  for i = 1, #cols do rule[i] = "---" end
  emit("|" .. table.concat(rule, "|") .. "|")
end

-- 1. Sequential keep-alive requests on one connection.
emit(("## Sequential requests, one connection (best of %d rounds of %g s)"):format(rounds, seconds))
emit("")
emit("Baseline: raw libcurl, one reused easy handle (bench/raw_curl.c), body not parsed: the limit.")
emit("\"raw + yajl_tree parse\" also parses each body in C into a tree; \"raw + yajl lex\" only runs")
emit("yajl's parser over it with no callbacks (lexed and validated, nothing built): the least any")
emit("decoder on yajl can do, so its ratio is the ceiling of GET + decode.")
emit("Ratios are req/s over the baseline's. Target (issue 12): the campaign client's GET + decode")
emit("≥ 0.95x raw libcurl, on both Luas.")
emit("")
table_header({ "server", "request", "raw libcurl req/s", "raw + yajl lex", "raw + yajl_tree parse",
  "campaign Lua 5.4",
  "campaign LuaJIT", "wrk -c1", "LuaSocket+cjson / LuaSec" })
for _, srv in ipairs(servers) do
  local s = srv.s
  if s then
    for _, method in ipairs({ "GET", "PATCH" }) do
      local o = { method = method ~= "GET" and method or nil, mode = method == "GET" and "get" or "patch" }
      local contenders = {
        { key = "raw", cmd = raw_cmd(s, o) },
        { key = "campaign 5.4", cmd = client_cmd(s, o) },
        { key = "campaign LuaJIT", cmd = client_cmd(s, { mode = o.mode, lua = "jit" }) },
        { key = "wrk -c1", cmd = wrk_cmd(s, o) },
      }
      if method == "GET" then
        contenders[#contenders + 1] = { key = "raw+parse", cmd = raw_cmd(s, { parse = true }) }
        contenders[#contenders + 1] = { key = "raw+lex", cmd = raw_cmd(s, { parse = "lex" }) }
      end
      local with_peer = method == "GET" and srv.name:match("^static")
      if with_peer then contenders[#contenders + 1] = { key = "LuaSocket", cmd = luasocket_cmd(s) } end
      local r = row(srv.name .. " " .. method, contenders)
      emit(("| %s | %s%s | %s | %s | %s | %s | %s | %s | %s |"):format(srv.name, method,
        method == "GET" and " + decode" or "", rps(r.raw),
        method == "GET" and ratio(r["raw+lex"], r.raw) or "-",
        method == "GET" and ratio(r["raw+parse"], r.raw) or "-",
        (method == "GET" and target_ratio or ratio)(r["campaign 5.4"], r.raw, 0.95),
        (method == "GET" and target_ratio or ratio)(r["campaign LuaJIT"], r.raw, 0.95),
        ratio(r["wrk -c1"], r.raw),
        with_peer and ratio(r.LuaSocket, r.raw) or "-"))
    end
  end
end
emit("")

-- 2. Batch PATCH at increasing concurrency, against wrk with as many connections.
emit(("## Batch PATCH (client:batch and workflow.bulk_update, 1000 requests per call; "
  .. "best of %d rounds of %g s)"):format(rounds, seconds))
emit("")
emit("Baseline: wrk with as many connections as the concurrency (the server's limit). The last")
emit("column is campaign batch over raw libcurl multi at the same concurrency (bench/raw_curl.c);")
emit("target (issue 12) at concurrency 16: ≥ 0.9x.")
emit("")
table_header({ "server", "concurrency", "wrk req/s", "raw libcurl multi", "campaign batch (Lua 5.4)",
  "bulk_update (Lua 5.4)", "campaign batch / raw libcurl multi" })
for _, srv in ipairs({ servers[1], servers[3] }) do
  local s = srv.s
  if s then
    for _, c in ipairs({ 1, 4, 16, 64 }) do
      local r = row(("%s PATCH c=%d"):format(srv.name, c), {
        { key = "wrk", cmd = wrk_cmd(s, { method = "PATCH", concurrency = c }) },
        { key = "raw", cmd = raw_cmd(s, { method = "PATCH", concurrency = c }) },
        { key = "campaign", cmd = client_cmd(s, { mode = "batch", concurrency = c }) },
        { key = "bulk", cmd = client_cmd(s, { mode = "bulk", concurrency = c }) },
      })
      emit(("| %s | %d | %s | %s | %s | %s | %s |"):format(srv.name, c, rps(r.wrk), ratio(r.raw, r.wrk),
        ratio(r.campaign, r.wrk), ratio(r.bulk, r.wrk),
        c == 16 and target_ratio(r.campaign, r.raw, 0.9) or ratio(r.campaign, r.raw)))
    end
  end
end
emit("")

emit(("## HTTPS batch PATCH at concurrency 16: HTTP/2 multiplexing vs HTTP/1.1 (best of %d x %g s)"):format(
  rounds, seconds))
emit("")
emit("Baseline: wrk -c16 over HTTPS (HTTP/1.1, 16 connections; wrk has no HTTP/2).")
emit("")
table_header({ "server", "wrk req/s", "raw HTTP/1.1", "raw HTTP/2", "campaign HTTP/1.1", "campaign HTTP/2" })
for _, srv in ipairs({ servers[2], servers[4] }) do
  local s = srv.s
  if s then
    local r = row(srv.name .. " PATCH c=16", {
      { key = "wrk", cmd = wrk_cmd(s, { method = "PATCH", concurrency = 16 }) },
      { key = "raw h1", cmd = raw_cmd(s, { method = "PATCH", concurrency = 16 }) },
      { key = "raw h2", cmd = raw_cmd(s, { method = "PATCH", concurrency = 16, http2 = true }) },
      { key = "campaign h1", cmd = client_cmd(s, { mode = "batch", concurrency = 16 }) },
      { key = "campaign h2", cmd = client_cmd(s, { mode = "batch", concurrency = 16, http2 = true }) },
    })
    emit(("| %s | %s | %s | %s | %s | %s |"):format(srv.name, rps(r.wrk), ratio(r["raw h1"], r.wrk),
      ratio(r["raw h2"], r.wrk), ratio(r["campaign h1"], r.wrk), ratio(r["campaign h2"], r.wrk)))
  end
end
emit("")

-- 3. The OpenResty client, when its runner exists.
local openresty = env("BENCH_OPENRESTY_CMD")
if openresty and openresty ~= "" and servers[3].s then
  emit("## OpenResty client vs C client, 16 concurrent GETs (emulator, HTTP)")
  emit("")
  emit("Baseline: the C client's client:batch of GETs at concurrency 16 on LuaJIT (the VM nginx embeds);")
  emit("the OpenResty client: campaign.ngx batches at concurrency 16 inside one nginx worker, with each")
  emit("transport: capture (ngx.location.capture through examples/openresty/campaign_proxy.conf, keep-alive")
  emit("upstream) and cosocket (the built-in one, straight to the server). Each contender runs one")
  emit("untimed batch of 1000 GETs first (connections, JIT traces): the row compares steady states.")
  emit("Target (issue 12): cosocket ≥ 0.9x.")
  emit("")
  table_header({ "C client (LuaJIT) req/s", "campaign.ngx, capture transport",
    "campaign.ngx, cosocket transport" })
  local r = row("16 concurrent GETs", {
    { key = "C", cmd = client_cmd(servers[3].s, { mode = "batch", concurrency = 16,
      extra = "--batch-method GET --warmup 1", lua = "jit" }) },
    { key = "capture", cmd = openresty .. " --transport capture --warmup 1" },
    { key = "cosocket", cmd = openresty .. " --transport cosocket --warmup 1" },
  })
  emit(("| %s | %s | %s |"):format(rps(r.C), ratio(r.capture, r.C), target_ratio(r.cosocket, r.C, 0.9)))
  emit("")
end

-- 3b. Instructions per GET (bench/instructions-per-request): counts, so steady on a loaded host.
local instructions = env("BENCH_INSTRUCTIONS_CMD")
if instructions and instructions ~= "" and servers[3].s then
  emit("## Instructions per GET at concurrency 16, campaign.ngx vs C client (callgrind, LuaJIT, emulator)")
  emit("")
  emit("valgrind's instruction count (user space) per GET: the C client's client:batch (3000 GETs")
  emit("minus 1000), and campaign.ngx's cosocket transport in one nginx process (one batch of 1000")
  emit("instrumented). Not a target: it says how much of the throughput ratio above is the client's work.")
  emit("")
  table_header({ "C client Ir/GET", "campaign.ngx Ir/GET", "campaign.ngx / C client" })
  local m = measure("instructions per GET", instructions)
  if m then
    emit(("| %d | %d | %.2fx |"):format(m.c_ir, m.ngx_ir, m.ngx_ir / m.c_ir))
  else
    emit("| failed | failed | failed |")
  end
  emit("")
end

-- 4. Memory.
if servers[1].s then
  emit("## Memory (campaign client, Lua 5.4, static nginx over HTTP)")
  emit("")
  local m = measure("memory", client_cmd(servers[1].s, { mode = "memory", concurrency = 64,
    extra = "--checkpoints 10000,100000 --batch-size 10000" }))
  table_header({ "peak RSS after 10k GETs", "peak RSS after 100k GETs", "growth",
    "bytes per batch item (10k PATCH at concurrency 64, all held)", "bytes per transfer in flight" })
  if m then
    emit(("| %d KiB | %d KiB | %.2fx | %d | %d |"):format(m.rss_kb_10000, m.rss_kb_100000,
      m.rss_kb_100000 / m.rss_kb_10000, m.bytes_per_batch_item, m.bytes_per_inflight))
  else
    emit("| failed | failed | failed | failed | failed |")
  end
  emit("")
end

-- 4b. Pacing accuracy (bench/pacing_bench.lua): rate 50 over BENCH_PACING_SECONDS (60).
if servers[1].s then
  local s, pace_seconds = servers[1].s, tonumber(env("BENCH_PACING_SECONDS") or "") or 60
  emit("## Pacing (campaign batch, Lua 5.4, rate = 50, burst = 1, concurrency 8, static nginx over HTTP)")
  emit("")
  local cmd = { lua_env["5.4"], "bench/pacing_bench.lua", "--base-url", q(s.base), "--org", q(s.org),
    "--path", q(s.path), "--token", q(s.token), "--api-key", q(s.api_key), "--rate 50 --burst 1",
    "--seconds", pace_seconds }
  if s.cafile then cmd[#cmd + 1] = "--cafile " .. q(s.cafile) end
  local m = measure("pacing", table.concat(cmd, " "))
  table_header({ "seconds", "sent", "of rate x seconds", "max in any 1 s window (rate + burst = 51)" })
  if m then
    emit(("| %d | %d | %.2f%% | %d |"):format(pace_seconds, m.sent, 100 * m.sent / m.expected, m.max1s))
  else
    emit("| failed | failed | failed | failed |")
  end
  emit("")
end

-- 4c. Bulk jobs (bench/bulk_bench.lua) against an emulator of their own, with its load model.
local bulk_base = env("BENCH_BULK_URL")
if bulk_base and bulk_base ~= "" and env("BENCH_BULK") ~= "0" then
  local function knob(name, default) return tonumber(env(name) or "") or default end
  local bulk_cmd = function(mode, extra, limit)
    -- `timeout`: every run is bounded in time, whatever happens to the server or the client
    return ("timeout %d env %s bench/bulk_bench.lua --base-url %s --org %s --token %s --api-key %s"
      .. " --mode %s %s"):format(limit, lua_env["5.4"], q(bulk_base), q(env("BENCH_BULK_ORG") or "acme"),
      q(env("BENCH_BULK_TOKEN") or ""), q(env("BENCH_BULK_API_KEY") or ""), mode, extra)
  end
  local function secs(x) return x and ("%.2f s"):format(x.seconds) or "failed" end

  emit("## Bulk jobs: workflow.bulk_update against a distant tenant (emulator load model, Lua 5.4)")
  emit("")
  emit("One run per row (each takes seconds to minutes; no best-of rounds). Every run checks that the")
  emit("emulator's records equal the input afterwards (the last row of each PKey), that every item was")
  emit("reported exactly once and applied, and that the emulator got exactly one PATCH per item; any")
  emit("loss fails the row.")
  emit("")
  emit("### Bulk vs the bound: PATCH latency uniform in [50, 300) ms (seed 7)")
  emit("")
  emit("Baseline: the bound concurrency / mean latency, where the mean latency is what the emulator")
  emit("really slept, read from its admin API (GET /_emulator/calls: delay_ms / delayed, this run's")
  emit("PATCHes only). Target (issue 13): ≥ 0.9x at c16 and c64.")
  emit("")
  table_header({ "concurrency", "items", "mean latency applied", "bound req/s", "bulk_update req/s",
    "bulk / bound", "time" })
  for _, c in ipairs({ 16, 64 }) do
    local n = knob("BENCH_BULK_ITEMS_" .. c, c == 16 and 2000 or 4000)
    local m = measure(("bulk vs bound c=%d"):format(c), bulk_cmd("bound",
      ("--concurrency %d --items %d --latency 50 --jitter 250 --seed 7"):format(c, n), 900))
    if m then
      emit(("| %d | %d | %.1f ms | %.1f | %.1f | %.2fx (target ≥ 0.90x: %s) | %.1f s |"):format(c, n,
        m.mean_ms, m.bound, m.rps, m.ratio, m.ratio >= 0.9 and "met" or "not met", m.seconds))
    else
      emit(("| %d | %d | failed | failed | failed | failed | failed |"):format(c, n))
    end
  end
  emit("")

  local sweep_items = knob("BENCH_BULK_SWEEP_ITEMS", 1000)
  emit(("### Concurrency auto vs the best fixed one: capacity mode (latency 10 ms x max(1, inflight / 8)), "
    .. "%d items"):format(sweep_items))
  emit("")
  emit("A server that slows down past 8 requests in flight: the sweep finds the best fixed concurrency;")
  emit("baseline: its time. Goal (issue 13): auto within 1.2x of it, nothing lost.")
  emit("")
  table_header({ "concurrency", "time", "over the best fixed" })
  local sweep, best = {}, nil
  for c in (env("BENCH_BULK_SWEEP") or "1 2 4 8 16 32 64"):gmatch("%d+") do
    local m = measure("bulk sweep c=" .. c, bulk_cmd("fixed",
      ("--concurrency %s --items %d --latency 10 --capacity 8"):format(c, sweep_items), 600))
    sweep[#sweep + 1] = { c = c, m = m }
    if m and (not best or m.seconds < best.seconds) then best = m end
  end
  local function over(m)
    if not m then return "failed" end
    return best and ("%.2fx"):format(m.seconds / best.seconds) or "-"
  end
  for _, e in ipairs(sweep) do emit(("| %s | %s | %s |"):format(e.c, secs(e.m), over(e.m))) end
  local auto = measure("bulk auto", bulk_cmd("auto",
    ("--items %d --latency 10 --capacity 8"):format(sweep_items), 600))
  if auto and auto.unavailable then
    emit("| auto | n/a (concurrency auto not available) | n/a |")
  elseif auto then
    emit(("| auto | %s | %s (goal ≤ 1.20x: %s; nothing lost) |"):format(secs(auto), over(auto),
      best and auto.seconds / best.seconds <= 1.2 and "met" or "not met"))
  else
    emit("| auto | failed | failed |")
  end
  emit("")

  if env("BENCH_BULK_RSS") ~= "0" then
    local lines = knob("BENCH_BULK_RSS_LINES", 1000000)
    local small = math.min(10000, lines)
    emit(("### Memory of a %d-line NDJSON bulk-update (bin/campaign, Lua 5.4, --concurrency 64)"):format(
      lines))
    emit("")
    emit("Peak RSS (VmHWM, /usr/bin/time's %M) of the CLI process, no added latency, rows cycling over")
    emit(("the emulator's profiles. Baseline: the same command on the first %d lines. "
      .. "Target (issue 13):"):format(small))
    emit("≤ 64 MiB. `BENCH_BULK_RSS=0` skips this row, `BENCH_BULK_RSS_LINES` changes its size.")
    emit("")
    table_header({ "lines", "peak RSS", "over the small run", "of 64 MiB", "time", "items/s" })
    local file = (env("BENCH_OUT") or "build/bench") .. "/bulk-rss.ndjson"
    local base_rss
    for _, n in ipairs(small < lines and { small, lines } or { lines }) do
      local m = measure(("bulk RSS %d lines"):format(n), bulk_cmd("rss",
        ("--lines %d --concurrency 64 --file %s --campaign bin/campaign --timeout 3000"):format(n, q(file)),
        3600))
      if n == small then base_rss = m end
      if m then
        emit(("| %d | %.1f MiB | %s | %.2fx (%s) | %.1f s | %.0f |"):format(n, m.rss_kb / 1024,
          base_rss and ("%.2fx"):format(m.rss_kb / base_rss.rss_kb) or "-",
          m.rss_kb / 65536, m.rss_kb <= 65536 and "met" or "not met", m.seconds, m.rps))
      else
        emit(("| %d | failed | failed | failed | failed | failed |"):format(n))
      end
    end
    os.remove(file)
    emit("")
  end
end

-- 5. JSON (bench/json_bench.lua, written with the codec).
local jf = io.open("bench/json_bench.lua")
if jf then
  jf:close()
  emit("## JSON (bench/json_bench.lua)")
  emit("")
  io.stderr:write("bench: JSON\n")
  local p = io.popen(lua_env["5.4"] .. " bench/json_bench.lua 2>&1")
  local text = p:read("a")
  if not p:close() then failures[#failures + 1] = "bench/json_bench.lua\n" .. text end
  emit("```")
  for line in (text:gsub("%s+$", "") .. "\n"):gmatch("(.-)\n") do emit(line) end
  emit("```")
  emit("")
end

local f = io.open(env("BENCH_OUTPUT") or "build/bench/results.md", "w")
if f then
  f:write(table.concat(out, "\n"), "\n")
  f:close()
end

if #failures > 0 then
  io.stderr:write(("\nbench: %d measurement(s) failed:\n"):format(#failures))
  for _, text in ipairs(failures) do io.stderr:write(text, "\n") end
  os.exit(1)
end
