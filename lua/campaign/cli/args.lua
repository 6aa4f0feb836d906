--- Command-line parsing for the `campaign` CLI: options, and FIELDS (`key=value`, `key:=json`).
-- Pure Lua; nothing here prints or exits. Failures return `nil, message` (a usage error).
local args = {}

--- Splits argv into options and positional words.
-- `known` maps an option name (dashes turned into underscores) to its kind: "flag" (no value),
-- "value" (one value; given twice is an error), "list" (repeatable, values collected in order).
-- `short` maps a one-letter alias ("h") to a name. `--name=value` and `--name value` both work;
-- `--` ends the options. `stop_at` (optional) is a function(word, positional_count) that returns
-- true when the rest of argv must be left untouched (collected in `rest`).
-- Returns {options = {...}, positional = {...}, rest = {...}, seen = {name = true}} or nil, message.
function args.parse(argv, known, short, stop_at)
  local options, positional, rest, seen = {}, {}, {}, {}
  local i, n = 1, #argv
  local only_positional = false
  while i <= n do
    local word = argv[i]
    if only_positional or word == "-" or word:sub(1, 1) ~= "-" then
      positional[#positional + 1] = word
      if not only_positional and stop_at and stop_at(word, #positional) then
        for j = i + 1, n do rest[#rest + 1] = argv[j] end
        break
      end
    elseif word == "--" then
      only_positional = true
    else
      local name, value
      if word:sub(1, 2) == "--" then
        name, value = word:match("^%-%-([^=]+)=(.*)$")
        if not name then name = word:sub(3) end
        name = name:gsub("-", "_")
      else
        local letter = word:sub(2)
        name = short and short[letter]
        if not name then return nil, "unknown option '" .. word .. "'" end
      end
      local kind = known[name]
      -- Only the name: a mistyped `--api-kye=SECRET` must not print the secret.
      if not kind then return nil, "unknown option '" .. word:match("^[^=]*") .. "'" end
      if kind == "flag" then
        if value then return nil, "option '--" .. name:gsub("_", "-") .. "' takes no value" end
        options[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, "option '--" .. name:gsub("_", "-") .. "' needs a value"
          end
        end
        if kind == "list" then
          local list = options[name] or {}
          list[#list + 1] = value
          options[name] = list
        elseif options[name] ~= nil then
          return nil, "option '--" .. name:gsub("_", "-") .. "' given twice"
        else
          options[name] = value
        end
      end
      seen[name] = true
    end
    i = i + 1
  end
  return {options = options, positional = positional, rest = rest, seen = seen}
end

--- Parses `key=value` words into a table: the list of `k=v` strings of `--query`/`--param`.
-- Values stay strings; a key given again collects its values in a list (the client repeats
-- the key in the query string). Returns the table, or nil, message.
function args.pairs(list, what)
  local result = {}
  for _, word in ipairs(list or {}) do
    local key, value = word:match("^([^=]+)=(.*)$")
    if not key then
      return nil, what .. " '" .. word .. "' is not key=value"
    end
    local previous = result[key]
    if previous == nil then
      result[key] = value
    elseif type(previous) == "table" then
      previous[#previous + 1] = value
    else
      result[key] = {previous, value}
    end
  end
  return result
end

--- Parses FIELDS: `key=value` gives the string value (a phone number stays a string),
-- `key:=json` gives the decoded JSON value (`age:=42`, `tags:=[]`, `x:=null`).
-- `decode` is campaign.decode (returns value or nil, err). A key given twice is an error: it is
-- almost always a typo, and silently keeping one of the two would hide it.
-- Returns the fields table (possibly empty) or nil, message.
function args.fields(words, decode)
  local fields, count = {}, 0
  for _, word in ipairs(words) do
    local key, rest = word:match("^([^=]*)=(.*)$")
    if not key or key == "" or key == ":" then
      return nil, "field '" .. word .. "' is not key=value or key:=json"
    end
    local value
    if key:sub(-1) == ":" then
      key = key:sub(1, -2)
      local decoded, err = decode(rest)
      if decoded == nil then
        local why = tostring(err and (err.message or err))
        return nil, "field '" .. key .. "': invalid JSON after ':=' (" .. why .. ")"
      end
      value = decoded
    else
      value = rest
    end
    if fields[key] ~= nil then
      return nil, "field '" .. key .. "' given twice"
    end
    fields[key] = value
    count = count + 1
  end
  return fields, count
end

--- A positive integer from an option value, or nil, message.
function args.positive_integer(value, name)
  local number = tonumber(value)
  if not number or number < 1 or number ~= math.floor(number) then
    return nil, "option '--" .. name .. "' needs a positive integer, got '" .. tostring(value) .. "'"
  end
  return math.floor(number)
end

--- A non-negative number from an option value, or nil, message.
function args.non_negative_number(value, name)
  local number = tonumber(value)
  if not number or number < 0 or number ~= number then
    return nil, "option '--" .. name .. "' needs a non-negative number, got '" .. tostring(value) .. "'"
  end
  return number
end

return args
