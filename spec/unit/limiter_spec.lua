-- campaign._limiter (src/limiter.c): the adaptive concurrency limit of concurrency = "auto",
-- fed with synthetic samples and a synthetic clock (issue 13, item 3).
local campaign = require "campaign"

-- Feeds n answers of latency rtt(k) (seconds) with the limit in use, one every `step` seconds
-- from *clock; returns the limits seen.
local function feed(l, clock, n, rtt, outcome, step)
  local seen = {}
  for k = 1, n do
    clock.t = clock.t + (step or 0.01)
    local r = type(rtt) == "function" and rtt(k, l:limit()) or rtt
    seen[k] = l:sample(r, outcome or "ok", l:limit(), clock.t)
  end
  return seen
end

describe("campaign._limiter", function()
  it("starts at its start value and grows while the latency holds", function()
    local l = campaign._limiter { start = 4, max = 64 }
    assert.are.equal(4, l:limit())
    local clock = { t = 0 }
    feed(l, clock, 19, 0.1)
    assert.are.equal(4, l:limit())          -- the baseline is measured at the start value
    feed(l, clock, 21, 0.1)
    assert.are.equal(25, l:limit())         -- slow start: one more per good answer
    feed(l, clock, 2000, 0.1)
    assert.are.equal(64, l:limit())         -- never past max
  end)

  it("does not grow a limit that is not in use (held back by pacing or the input)", function()
    local l = campaign._limiter { start = 8, max = 64 }
    for k = 1, 500 do l:sample(0.1, "ok", 2, k * 0.01) end
    assert.are.equal(8, l:limit())
  end)

  it("backs off on a 429/503 and on a timeout, once per round trip", function()
    local l = campaign._limiter { start = 40, max = 64 }
    local clock = { t = 0 }
    feed(l, clock, 30, 0.2)
    local before = l:limit()
    l:sample(0.2, "overload", before, clock.t + 0.01)
    local after = l:limit()
    assert.is_true(after < before and after >= math.floor(before * 0.7) - 1)
    -- the other answers of the same overload moment do not count again
    for k = 1, 10 do l:sample(0.2, "overload", after, clock.t + 0.01 + k * 0.001) end
    assert.are.equal(after, l:limit())
    -- a round trip later they do; a timeout halves
    l:sample(0.2, "timeout", after, clock.t + 1)
    assert.is_true(l:limit() <= math.ceil(after * 0.5))
  end)

  it("backs off when the latency rises past twice its baseline, and holds in the band", function()
    local l = campaign._limiter { start = 16, max = 256 }
    local clock = { t = 0 }
    feed(l, clock, 100, 0.1)
    local top = l:limit()
    assert.is_true(top > 16 and top < 256)
    -- 1.7x: inside the band (once the average got there), neither growth nor back-off
    feed(l, clock, 100, 0.17)
    local held = l:limit()
    feed(l, clock, 300, 0.17)
    assert.are.equal(held, l:limit())
    -- a server that slows down with load: latency 5x the baseline
    feed(l, clock, 400, 0.5, "ok", 0.05)
    assert.is_true(l:limit() < held / 2)
  end)

  it("finds the capacity of a server whose latency grows past N in flight", function()
    -- processor sharing: latency = 50 ms x max(1, inflight / 10)
    local l = campaign._limiter { start = 4, max = 128 }
    local clock = { t = 0 }
    local seen = feed(l, clock, 5000, function(_, limit) return 0.05 * math.max(1, limit / 10) end,
      "ok", 0.005)
    local lo, hi = math.huge, 0
    for k = 4000, 5000 do
      lo, hi = math.min(lo, seen[k]), math.max(hi, seen[k])
    end
    assert.is_true(lo >= 10, "settled too low: " .. lo)      -- keeps the server busy
    assert.is_true(hi <= 24, "settled too high: " .. hi)     -- without queueing for ever
  end)

  it("a jittered latency (50-300 ms) does not hold it back", function()
    local l = campaign._limiter { start = 4, max = 64 }
    local clock = { t = 0 }
    local seed = 12345
    local function uniform()
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    end
    feed(l, clock, 3000, function() return 0.05 + 0.25 * uniform() end)
    assert.is_true(l:limit() >= 48, "limit " .. l:limit())
  end)

  it("recovers after an overload and stays within its bounds", function()
    local l = campaign._limiter { start = 10, min = 2, max = 20 }
    local clock = { t = 0 }
    for k = 1, 50 do l:sample(0.1, "timeout", 10, k) end
    assert.are.equal(2, l:limit())
    feed(l, clock, 50, 0.1)
    clock.t = 100
    feed(l, clock, 3000, 0.1)
    assert.are.equal(20, l:limit())
    for _ = 1, 100 do assert.is_true(l:sample(0.1, "ignore", 20, clock.t) == 20) end
  end)

  it("learns its baseline again at the minimum (a server slower for everyone)", function()
    local l = campaign._limiter { start = 8, max = 32 }
    local clock = { t = 0 }
    feed(l, clock, 200, 0.05)
    -- from now on the server answers in 400 ms whatever the load
    feed(l, clock, 3000, 0.4, "ok", 0.05)
    assert.is_true(l:limit() >= 16, "stuck at " .. l:limit())
  end)

  it("answers misuse with clear errors", function()
    assert.has_error(function() campaign._limiter { max = 0 } end,
      "campaign._limiter: option 'max' must be an integer from 1 to 256")
    assert.has_error(function() campaign._limiter { max = 300 } end,
      "campaign._limiter: option 'max' must be an integer from 1 to 256")
    assert.has_error(function() campaign._limiter { start = 1.5 } end,
      "campaign._limiter: option 'start' must be an integer from 1 to 256")
    assert.has_error(function() campaign._limiter { start = 9, max = 4 } end,
      "campaign._limiter: needs min <= start <= max (got 1, 9, 4)")
    assert.has_error(function() campaign._limiter { speed = 1 } end,
      "campaign._limiter: unknown option 'speed'")
    local l = campaign._limiter()
    assert.are.equal(4, l:limit())
    assert.has_error(function() l:sample(-1, "ok", 1) end)
    assert.has_error(function() l:sample(0.1, "fine", 1) end)
    assert.has_error(function() l:sample(0.1, "ok", -1) end)
    assert.has_error(function() l:sample(0.1, "ok", 1, 0 / 0) end)
  end)
end)
