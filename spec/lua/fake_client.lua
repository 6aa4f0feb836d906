-- A fake client for the Lua-layer unit specs: the same methods as campaign.new's client
-- (get/patch/post/delete/request/batch), recording every call and answering from a handler.
--   local fake = require "lua.fake_client"
--   local client = fake.new(function(call) return body, res end)
--   client.calls[i] = {method =, path =, body =, opts =, query =}
-- The handler gets the call and returns what the client would: body, res | nil, err.
-- Without a handler every call answers {} with status 200.
local fake = {}

local function default_handler()
  return {}, { status = 200, headers = {}, attempts = 1, elapsed = 0 }
end

function fake.new(handler)
  handler = handler or default_handler
  local client = { calls = {}, batches = {} }

  local function call(method, path, body, opts)
    local c = { method = method, path = path, body = body, opts = opts,
                query = opts and opts.query }
    client.calls[#client.calls + 1] = c
    return handler(c)
  end

  function client.get(_, path, opts) return call("GET", path, nil, opts) end
  function client.delete(_, path, opts) return call("DELETE", path, nil, opts) end
  function client.patch(_, path, body, opts) return call("PATCH", path, body, opts) end
  function client.post(_, path, body, opts) return call("POST", path, body, opts) end
  function client.request(_, method, path, opts)
    return call(method, path, opts and opts.body, opts)
  end

  -- Sequential, in order; records the batch sizes and options so specs can check windows.
  function client.batch(_, requests, opts)
    client.batches[#client.batches + 1] = { size = #requests, opts = opts }
    local results = {}
    for i, r in ipairs(requests) do
      local body, res = call(r[1], r[2], r[3], r[4])
      local result
      if body == nil then
        result = { status = res and res.status, err = res, attempts = res and res.attempts or 1 }
      else
        result = { status = res and res.status or 200, body = body, attempts = res and res.attempts or 1,
                   headers = res and res.headers or {} }
      end
      results[i] = result
      if opts and opts.on_result then opts.on_result(i, result) end
    end
    return results
  end

  return client
end

-- A handler answering from a table keyed "METHOD path" (values: function(call) or {body, res}).
function fake.routes(routes)
  return function(c)
    local r = routes[c.method .. " " .. c.path]
    if type(r) == "function" then return r(c) end
    if r then return r[1], r[2] end
    return {}, { status = 200, headers = {}, attempts = 1 }
  end
end

return fake
