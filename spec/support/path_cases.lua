-- Paths given as text (client:get(path), client:request, batch paths, hrefs) and what both
-- clients must do with them: the URL they send, or the misuse error they raise before sending.
-- Shared by spec/unit/path_escape_spec.lua (the C client, src/url.c) and
-- spec/openresty/path_escape_spec.lua (campaign.ngx and the C client inside nginx), so that
-- the two clients are held to one table. Base URL: BASE, org "acme".
local BASE = "https://mc.example.test"
local ROOT = BASE .. "/acme/campaign/"

local DOTS = "path segments '.' and '..' are refused"
local ENCODED = "encoded '/' and '\\' (%2F, %5C) are refused in paths (no ACS key contains one)"
local BACKSLASH = "backslashes are refused in paths"
local FRAGMENT = "'#' is refused in paths (a fragment is never sent; encode it as %23)"

return {
  base_url = BASE,
  root = ROOT,
  messages = { dots = DOTS, encoded = ENCODED, backslash = BACKSLASH, fragment = FRAGMENT },

  -- {path, the URL sent}
  accepted = {
    { "profileAndServices/profile/@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb-_x",
      ROOT .. "profileAndServices/profile/@2v1dr3ZKJveMDhAdh0MPnh9hNQQ93qb-_x" },
    -- a key as campaign.api encodes it: '?', '#', '=' and '%' are data inside the segment
    { "profileAndServices/profile/%3F_lineCount%3D1",
      ROOT .. "profileAndServices/profile/%3F_lineCount%3D1" },
    { "profileAndServices/profile/%23", ROOT .. "profileAndServices/profile/%23" },
    { "profileAndServices/profile/100%25", ROOT .. "profileAndServices/profile/100%25" },
    -- a '%' encoded once more is a literal "%2F" for the server, not a separator
    { "profileAndServices/profile/a%252Fb", ROOT .. "profileAndServices/profile/a%252Fb" },
    -- dots that are not a whole dot segment
    { "a/.../b../.c/%2E%2E%2E", ROOT .. "a/.../b../.c/%2E%2E%2E" },
    -- hrefs keep their own query, an encoded '/' or '..' in it included (it is not the path)
    { "profileAndServices/profile//_count?_lineCount=1&_lineStart=@x%2Fy%3D",
      ROOT .. "profileAndServices/profile//_count?_lineCount=1&_lineStart=@x%2Fy%3D" },
    { ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@a+b/../c",
      ROOT .. "profileAndServices/profile/?_lineCount=1&_lineStart=@a+b/../c" },
    { "/acme/campaign/profileAndServices/profile/byText?text=a%5Cb",
      ROOT .. "profileAndServices/profile/byText?text=a%5Cb" },
    { "mcacme/EVTcartAbandonment/@e1", ROOT .. "mcacme/EVTcartAbandonment/@e1" },
  },

  -- {path, the message (after "<function>: ")}
  refused = {
    -- dot segments, also spelled with %2E / %2e
    { "..", DOTS },
    { "a/../b", DOTS },
    { "a/./b", DOTS },
    { "a/%2e%2E/b", DOTS },
    { "a/.%2E/b", DOTS },
    { "a/%2E./b", DOTS },
    { "a/%2e", DOTS },
    { "a/..", DOTS },
    { "/acme/campaign/../x", DOTS },
    { ROOT .. "a/%2E%2E/b", DOTS },
    { "a/..?x=1", DOTS },
    -- encoded separators inside a segment: nginx decodes them, then resolves the dot segments
    { "profileAndServices/..%2F..%2F..%2F_emulator%2Fhealth", ENCODED },
    { "profileAndServices/profile/..%2F..%2FprofileAndServicesExt%2ForgUnitBase%2F@ou", ENCODED },
    { "a/b%2fc", ENCODED },
    { "a/%2F", ENCODED },
    { "a/b%5Cc", ENCODED },
    { "a/b%5cc", ENCODED },
    { "a/%2e%2e%2f", ENCODED },
    { "a%2F?x=1", ENCODED },
    { ROOT .. "profileAndServices/profile/a%2Fb", ENCODED },
    -- backslashes (some servers and proxies read them as '/')
    { "a\\b", BACKSLASH },
    { "a/..\\b", BACKSLASH },
    { "\\", BACKSLASH },
    { ROOT .. "a\\..\\b", BACKSLASH },
    -- a '#' anywhere: dropping the fragment turned "profile/#" into the collection
    { "profileAndServices/profile/#", FRAGMENT },
    { "profileAndServices/profile#fragment", FRAGMENT },
    { "a?x=1#f", FRAGMENT },
    { ROOT .. "a#f", FRAGMENT },
  },
}
