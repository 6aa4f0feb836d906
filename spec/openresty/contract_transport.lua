-- A user-given transport function for spec/openresty/contract_spec.lua: what a user would write
-- from docs/openresty.md "The transport hook" (HTTP/1.0 over ngx.socket.tcp, one connection per
-- request, the whole answer read until the server closes). It keeps to the hook's contract:
-- `req = {method, url, headers, body, timeout, connect_timeout, max_body}` in, and
-- `{status, headers (lower-case names), body}` or `nil, kind, message, sent` out, with
-- sent = false only when the connection was never made. Retries, the 401 rule, max_body and
-- the error object stay the client's.
local str_lower, str_match, concat = string.lower, string.match, table.concat

return function(req)
  local host, port, target = str_match(req.url, "^http://([^:/]+):(%d+)(.*)$")
  if not host then return nil, "network", "this test transport speaks plain http only", false end
  local sock = ngx.socket.tcp()
  sock:settimeouts(req.connect_timeout * 1000, req.timeout * 1000, req.timeout * 1000)
  local ok, err = sock:connect(host, tonumber(port))
  if not ok then
    return nil, err == "timeout" and "timeout" or "network", "connect: " .. tostring(err), false
  end
  local lines = { req.method .. " " .. (target ~= "" and target or "/") .. " HTTP/1.0",
    "Host: " .. host .. ":" .. port }
  for name, value in pairs(req.headers) do lines[#lines + 1] = name .. ": " .. value end
  if req.body then lines[#lines + 1] = "Content-Length: " .. #req.body end
  local sent
  sent, err = sock:send(concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or ""))
  if not sent then
    sock:close()
    return nil, err == "timeout" and "timeout" or "network", "send: " .. tostring(err), true
  end
  local function failed(e)
    sock:close()
    return nil, e == "timeout" and "timeout" or "network", "receive: " .. tostring(e), true
  end
  local status_line
  status_line, err = sock:receive("*l")
  if not status_line then return failed(err) end
  local status = tonumber(str_match(status_line, "^HTTP/%S+ (%d%d%d)"))
  if not status then return failed("bad status line") end
  local headers = {}
  while true do
    local line
    line, err = sock:receive("*l")
    if not line then return failed(err) end
    if line == "" then break end
    local name, value = str_match(line, "^([^:]+):%s*(.-)%s*$")
    if name then
      name = str_lower(name)
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  local body = ""
  if req.method ~= "HEAD" and status ~= 204 and status ~= 304 then
    local length = tonumber(headers["content-length"])
    if length then
      body, err = sock:receive(length)
    else
      body, err = sock:receive("*a")
    end
    if not body then return failed(err) end
  end
  sock:close()
  return { status = status, headers = headers, body = body }
end
