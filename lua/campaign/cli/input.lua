--- Bulk-update input readers: CSV (RFC 4180, header row with a PKey column) and NDJSON.
-- Both stream: one physical line is read at a time, so memory does not grow with the file.
-- Each input item comes out as {line = first line number, pkey = "...", changes = {...}}, or
-- {line = n, error = "why"} when that item cannot be sent (it is reported, never dropped).
-- A problem with the whole file (no PKey column, a header that is not CSV) is returned as
-- nil, message by `open`: that is a usage error.
local input = {}

-- utf8.len is strict in Lua 5.3+ (no surrogates, no overlongs); LuaJIT has no utf8 library,
-- and there the JSON encoder's own check is the last line of defence.
local utf8_len = utf8 and utf8.len

local function valid_utf8(s)
  if not utf8_len then return true end
  return utf8_len(s) ~= nil
end

-- A PKey becomes one path segment: the client raises (a programming error) for control
-- characters and `..`, and a `/` would address another resource. Such a row is refused here,
-- as a failed item, instead of stopping the whole run.
local function bad_pkey(pkey)
  if pkey:find("[%c/]") or pkey == "." or pkey == ".." then
    return "PKey " .. string.format("%q", pkey):gsub("\\\n", "\\n") .. " cannot be a path segment"
  end
end

--- Splits one CSV record out of a line source. `next_line()` returns the next physical line
-- (without its "\n") or nil. Returns fields, first_line_number, or nil at the end, or
-- false, message for a malformed record (an unterminated quote, a quote inside a bare field).
local function csv_record(next_line, state)
  local line = next_line()
  if line == nil then return nil end
  state.line = state.line + 1
  local first = state.line
  local fields, field, pos = {}, {}, 1
  local quoted, was_quoted = false, false
  while true do
    if line:sub(-1) == "\r" then line = line:sub(1, -2) end
    local len = #line
    while pos <= len do
      local c = line:sub(pos, pos)
      if quoted then
        local stop = line:find('"', pos, true)
        if not stop then
          field[#field + 1] = line:sub(pos)
          pos = len + 1
        elseif line:sub(stop + 1, stop + 1) == '"' then
          field[#field + 1] = line:sub(pos, stop)
          pos = stop + 2
        else
          field[#field + 1] = line:sub(pos, stop - 1)
          quoted = false
          pos = stop + 1
          local after = line:sub(pos, pos)
          if after ~= "" and after ~= "," then
            return false, "line " .. first .. ": text after a closing quote"
          end
        end
      elseif c == "," then
        fields[#fields + 1] = {value = table.concat(field), quoted = was_quoted}
        field, was_quoted = {}, false
        pos = pos + 1
      elseif c == '"' and #field == 0 and not was_quoted then
        quoted, was_quoted = true, true
        pos = pos + 1
      else
        local stop = line:find('[,"]', pos) or len + 1
        if line:sub(stop, stop) == '"' then
          return false, "line " .. first .. ": a quote inside an unquoted field"
        end
        field[#field + 1] = line:sub(pos, stop - 1)
        pos = stop
      end
    end
    if not quoted then break end
    -- A quoted field goes on over the line break (RFC 4180 §2.6); the break is kept as "\n".
    local more = next_line()
    if more == nil then
      return false, "line " .. first .. ": a quoted field is not closed before the end of the input"
    end
    state.line = state.line + 1
    field[#field + 1] = "\n"
    line, pos = more, 1
  end
  fields[#fields + 1] = {value = table.concat(field), quoted = was_quoted}
  return fields, first
end

local function is_blank_record(fields)
  return #fields == 1 and fields[1].value == "" and not fields[1].quoted
end

-- A column header `name:=` marks a JSON-typed column (as `key:=json` in FIELDS); any other
-- header is a string column.
local function csv_columns(header)
  local columns, pkey_index, names = {}, nil, {}
  for i, cell in ipairs(header) do
    local name, json = cell.value, false
    if name:sub(-2) == ":=" then name, json = name:sub(1, -3), true end
    if name == "" then return nil, "CSV header: column " .. i .. " has no name" end
    if names[name] then return nil, "CSV header: column '" .. name .. "' appears twice" end
    names[name] = true
    if name == "PKey" then pkey_index = i end
    columns[i] = {name = name, json = json}
  end
  if not pkey_index then
    return nil, "CSV header has no PKey column (columns: " ..
      table.concat((function()
        local list = {}
        for i, column in ipairs(columns) do list[i] = column.name end
        return list
      end)(), ", ") .. ")"
  end
  return columns, pkey_index
end

-- Strips a UTF-8 byte order mark (spreadsheets write one) from the first line.
local function without_bom(next_line)
  local first = true
  return function()
    local line = next_line()
    if first and line then
      first = false
      if line:sub(1, 3) == "\239\187\191" then line = line:sub(4) end
    end
    return line
  end
end

local function csv_reader(next_line, decode)
  local state = {line = 0}
  local header, first
  repeat
    header, first = csv_record(next_line, state)
    if header == false then return nil, first end
  until header == nil or not is_blank_record(header)
  if header == nil then
    return function() return nil end   -- an empty file: nothing to do
  end
  local columns, pkey_index = csv_columns(header)
  if not columns then return nil, pkey_index end
  return function()
    while true do
      local fields, line = csv_record(next_line, state)
      if fields == nil then return nil end
      if fields == false then
        -- The record's boundaries are unknown after a broken quote: report it and stop here.
        return {line = state.line, error = line, fatal = true}
      end
      if not is_blank_record(fields) then
        if #fields ~= #columns then
          local why = #fields .. " fields, the header has " .. #columns
          return {line = line, error = "line " .. line .. ": " .. why}
        end
        local item = {line = line, changes = {}}
        local count = 0
        for i, cell in ipairs(fields) do
          local column = columns[i]
          if not valid_utf8(cell.value) then
            local why = "column '" .. column.name .. "' is not valid UTF-8"
            return {line = line, error = "line " .. line .. ": " .. why}
          end
          if i == pkey_index then
            item.pkey = cell.value
          elseif cell.value ~= "" or cell.quoted then
            -- An empty bare cell leaves the field alone; a quoted "" sets it to the empty string.
            local value = cell.value
            if column.json then
              local decoded, err = decode(value)
              if decoded == nil then
                return {line = line, error = "line " .. line .. ": column '" .. column.name ..
                  "' is not JSON (" .. tostring(err and (err.message or err)) .. ")"}
              end
              value = decoded
            end
            item.changes[column.name] = value
            count = count + 1
          end
        end
        if item.pkey == "" then
          return {line = line, error = "line " .. line .. ": empty PKey"}
        end
        local why = bad_pkey(item.pkey)
        if why then return {line = line, error = "line " .. line .. ": " .. why} end
        if count == 0 then
          return {line = line, pkey = item.pkey, error = "line " .. line .. ": no field to update"}
        end
        return item
      end
    end
  end
end

local function ndjson_reader(next_line, decode)
  local number = 0
  return function()
    while true do
      local text = next_line()
      if text == nil then return nil end
      number = number + 1
      if text:find("%S") then
        if not valid_utf8(text) then
          return {line = number, error = "line " .. number .. ": not valid UTF-8"}
        end
        local value, err = decode(text)
        if value == nil then
          return {line = number, error = "line " .. number .. ": invalid JSON (" ..
            tostring(err and (err.message or err)) .. ")"}
        end
        if type(value) ~= "table" or value[1] ~= nil then
          return {line = number, error = "line " .. number .. ": not a JSON object"}
        end
        local pkey = value.PKey
        if type(pkey) ~= "string" or pkey == "" then
          return {line = number, error = "line " .. number .. ": no PKey string"}
        end
        local why = bad_pkey(pkey)
        if why then return {line = number, error = "line " .. number .. ": " .. why} end
        local changes
        if type(value.ok) == "boolean" and (value.outcome ~= nil or value.kind ~= nil)
          and type(value.changes) ~= "table" then
          -- A report line of an item that was never read (kind "input"): its own fields
          -- (line, ok, error...) are not changes to send.
          return {line = number, pkey = pkey, error = "line " .. number .. ": a report line without " ..
            "changes (fix line " .. tostring(value.line) .. " of the original input)"}
        end
        if type(value.changes) == "table" and value.changes[1] == nil then
          -- The report's own line shape: {"PKey": ..., "changes": {...}, "ok": false, ...}.
          -- Only its changes are sent, so a rerun on the report's failed lines works.
          changes = value.changes
        else
          changes = {}
          for key, field in pairs(value) do
            if key ~= "PKey" then changes[key] = field end
          end
        end
        if next(changes) == nil then
          return {line = number, pkey = pkey, error = "line " .. number .. ": no field to update"}
        end
        return {line = number, pkey = pkey, changes = changes}
      end
    end
  end
end

--- Chooses the format: "csv" or "ndjson" by the `format` argument, else by the file name's
-- extension (.csv; .ndjson/.jsonl/.json), else by the first non-blank character ('{' = NDJSON).
function input.detect_format(path, first_text, format)
  if format then
    if format == "csv" or format == "ndjson" then return format end
    return nil, "unknown format '" .. format .. "' (csv or ndjson)"
  end
  local lower = (path or ""):lower()
  if lower:match("%.csv$") then return "csv" end
  if lower:match("%.ndjson$") or lower:match("%.jsonl$") or lower:match("%.json$") then return "ndjson" end
  local first = first_text and first_text:match("^[\239\187\191]*%s*(.)")
  if first == "{" then return "ndjson" end
  return "csv"
end

--- Opens a reader over `path` (a regular file). Returns an iterator of items, or nil, message
-- for a whole-file problem. `decode` is campaign.decode. The file is closed when the iterator
-- ends; `close` (second return) closes it early. With `file` (an open handle of `path`), that
-- handle is read from its start and left open: every pass of bulk-update reads the same file
-- even if another one takes its name meanwhile (an editor saving by rename).
function input.open(path, format, decode, file)
  local borrowed = file ~= nil
  if not borrowed then
    local err
    file, err = io.open(path, "rb")
    if not file then return nil, err end
  else
    file:seek("set", 0)
  end
  local head = file:read(4096) or ""
  file:seek("set", 0)
  local kind, why = input.detect_format(path, head, format)
  if not kind then
    if not borrowed then file:close() end
    return nil, why
  end
  local lines = file:lines()
  local closed = false
  local function close()
    if not closed then
      closed = true
      if not borrowed then file:close() end
    end
  end
  local next_line = without_bom(function()
    if closed then return nil end
    local line = lines()
    if line == nil then close() end
    return line
  end)
  local reader, problem
  if kind == "csv" then
    reader, problem = csv_reader(next_line, decode)
  else
    reader, problem = ndjson_reader(next_line, decode)
  end
  if not reader then close(); return nil, problem end
  local stopped = false
  return function()
    if stopped then return nil end
    local item = reader()
    if item == nil or item.fatal then stopped = true end
    return item
  end, close, kind
end

-- Exposed for the unit specs.
input._csv_record = csv_record

return input
