--- campaign.ngx.cosocket: the cosocket transport of campaign.ngx (lua/campaign/ngx.lua):
-- ngx.socket.tcp, TLS by ngx_lua, HTTP/1.1 framing by the C parser (campaign._http_response,
-- src/http_response.c). It works wherever cosockets do: request phases, ngx.timer.at callbacks
-- and the light threads they start. campaign.ngx re-exports cosocket_transport.
local campaign = require "campaign"

local ngx = ngx
local type, tostring, pcall, error = type, tostring, pcall, error
local str_format, str_gsub, str_match = string.format, string.gsub, string.match
local floor = math.floor
local concat = table.concat
local split_url = campaign._url_split

local _M = {}


local new_parser = campaign._http_response
-- Bytes asked for at a time while the parser wants a line (the head, a chunk-size line): under
-- 128. LuaJIT interns every string, and Debian's luajit2 hashes every byte of a string under 128
-- bytes but only a sample of a longer one; heads alike but for a request id, read whole, would
-- all share one chain of the string table (docs/openresty.md "Reading a response" has the
-- measurements). The body, asked for by its length, is one string.
local LINE_READ = 127

-- Reads one response from sock through the parser. Returns the parser, or nil, kind, message.
local function read_response(sock, p)
  local need = "line" -- a new parser wants the status line
  while true do
    local data, err, partial
    if need == "line" then
      -- a well-behaved server sends nothing past the end of the response to the one request
      -- in flight, so reading up to LINE_READ never takes the next response's bytes; a
      -- receive("*l") would hash as well but buffers a line of any length (max_head unkept)
      data, err = sock:receiveany(LINE_READ)
    else
      data, err, partial = sock:receive(need)
    end
    local state, kind, message
    if data then
      state, kind, message = p:feed(data)
    elseif err == "closed" then
      if partial and partial ~= "" then state, kind, message = p:feed(partial) end
      if state ~= nil or partial == nil or partial == "" then state, kind, message = p:feed(nil) end
    else
      return nil, err == "timeout" and "timeout" or "network", err
    end
    if not state then return nil, kind, message end
    if state == "done" then return p end
    need = p:need()
    if not need then return p end
  end
end

--- The built-in cosocket transport: function(req) -> response | nil, kind, message, sent.
-- opts: ssl_verify (default true), pool_size (default 16 per host), pool_idle_timeout (seconds,
-- default 30: under the keep-alive timeout of common servers and load balancers), max_head
-- (default 65536 bytes).
---@param opts? {ssl_verify?: boolean, pool_size?: integer, pool_idle_timeout?: number, max_head?: integer}
---@return fun(req: table): (table|nil, string?, string?, boolean?)
function _M.cosocket_transport(opts)
  opts = opts or {}
  local verify = opts.ssl_verify ~= false
  local pool_size = opts.pool_size or 16
  local idle_ms = floor((opts.pool_idle_timeout or 30) * 1000)
  local max_head = opts.max_head or 65536
  -- a client sends every request to one origin: split it once, not per request
  local origin, scheme, host, port, authority, connect_host, server_name, pool, ssl_session
  local connect_options
  local parser_max_body, parser_options, head_parser_options
  -- The header block (Host, then req.headers, each line CRLF-ended) of the headers table
  -- block_of: the core hands the built-in transports one table per token, so the block is
  -- built once per token, not per request (a request with headers of its own gets a table,
  -- and a block, of its own).
  local block_of, block
  return function(req)
    local url = req.url
    local url_origin, rest = str_match(url, "^(%a[%w+.-]*://[^/?#]*)(.*)$")
    if url_origin ~= origin then
      local split_scheme, split_host, split_port, split_authority = split_url(url)
      if not split_scheme then error("campaign.ngx: not an http(s) URL: " .. url, 3) end
      origin, scheme, host, port = url_origin, split_scheme, split_host, split_port
      authority = split_authority
      -- nginx's resolver reads no /etc/hosts: "localhost" is loopback by definition (RFC 6761)
      connect_host = host == "localhost" and "127.0.0.1" or str_gsub(host, "^%[(.*)%]$", "%1")
      server_name = str_gsub(host, "^%[(.*)%]$", "%1")
      pool = str_format("campaign|%s|%s|%d|%s|%s", scheme, connect_host, port, server_name,
        verify and "verify" or "noverify")
      ssl_session = nil
      connect_options = { pool = pool, pool_size = pool_size } -- read by connect, never kept
      block_of = nil
    end
    if rest == "" then rest = "/" end
    local method, body, headers = req.method, req.body, req.headers
    if headers ~= block_of then
      local parts, n = { "Host: ", authority, "\r\n" }, 3
      for name, value in pairs(headers) do
        parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = name, ": ", value, "\r\n"
        n = n + 4
      end
      block, block_of = concat(parts), headers
    end
    local lines
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
      lines = { method, " ", rest, " HTTP/1.1\r\n", block, "Content-Length: ",
        tostring(body and #body or 0), "\r\n\r\n", body or "" }
    else
      lines = { method, " ", rest, " HTTP/1.1\r\n", block, "\r\n" }
    end
    local timeout_ms, connect_ms = floor(req.timeout * 1000), floor(req.connect_timeout * 1000)
    -- No silent resend on a pooled connection: ngx_lua closes a pooled connection the server
    -- closed while it was idle, and an attempt that fails after the request went out is the
    -- client's retry rule's to judge (a POST is not resent).
    local sock = ngx.socket.tcp()
    sock:settimeouts(connect_ms, timeout_ms, timeout_ms)
    local ok, err = sock:connect(connect_host, port, connect_options)
    if not ok then
      return nil, err == "timeout" and "timeout" or "network",
        str_format("could not connect to %s: %s", authority, tostring(err)), false
    end
    if scheme == "https" and (sock:getreusedtimes() or 0) == 0 then
      -- SNI and verification against lua_ssl_trusted_certificate (docs/openresty.md).
      -- reused_session = false (no session back) is not used: in ngx_lua 0.10.23 it could
      -- return true for a handshake whose verification failed (seen here, ~1 run in 4); a
      -- session object comes back only from a handshake that succeeded. That path can also
      -- raise (lua-resty-core 0.1.25's `assert(rc == FFI_OK)` on the handshake result, seen
      -- here for a refused certificate): a raise is a failed handshake too, never a pass.
      local called, session, herr = pcall(sock.sslhandshake, sock, ssl_session, server_name, verify)
      if not called then session, herr = nil, tostring(session) end
      local st = type(session)
      if st == "userdata" or st == "cdata" then
        ssl_session = session -- resumed by the next new connection to this host
      else
        herr = herr or "certificate verification failed"
      end
      if herr then
        sock:close()
        return nil, "tls", str_format("TLS handshake with %s failed: %s", authority, tostring(herr)), false
      end
    end
    local sent, serr = sock:send(lines)
    if not sent then
      sock:close()
      return nil, serr == "timeout" and "timeout" or "network",
        str_format("could not send to %s: %s", authority, tostring(serr)), true
    end
    -- the parser's options change only with max_body (a client setting): kept, not rebuilt
    local max_body = req.max_body
    if max_body ~= parser_max_body then
      parser_max_body = max_body
      parser_options = { max_body = max_body, max_head = max_head }
      head_parser_options = { max_body = max_body, max_head = max_head, head = true }
    end
    local p, kind, message = read_response(sock,
      new_parser(method == "HEAD" and head_parser_options or parser_options))
    if p then
      local keepalive, response = p:response()
      if keepalive then sock:setkeepalive(idle_ms, pool_size) else sock:close() end
      return response
    end
    sock:close()
    if kind == "too_large" then return nil, "too_large", message, true end
    if kind == "timeout" then
      return nil, "timeout", str_format("no answer from %s within %g s", authority, req.timeout), true
    end
    return nil, "network", str_format("bad response from %s: %s", authority, tostring(message)), true
  end
end

return _M
