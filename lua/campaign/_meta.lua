---@meta campaign
-- lua-language-server definitions (LuaCATS) of the C module `campaign` (src/*.c): its
-- functions, campaign.new's options, the client's methods, the result, batch and error
-- objects, and the option tables the Lua layers take. Declarations only: nothing here runs
-- (do not require this file; `require "campaign"` loads the C module). docs/editors.md says
-- how to point lua-language-server at it. spec/lint/annotations_spec.lua fails when a name
-- the C module exports is missing here.
-- luacheck: no unused args, no max comment line length

---@class campaign
---@field _VERSION string the release, e.g. "0.1.0" (CMakeLists.txt's project(VERSION))
---@field null campaign.null JSON null (a light userdata); `campaign.null == campaign.null`
---@field api campaign.api loaded on first use (require "campaign.api")
---@field auth campaign.auth loaded on first use
---@field pages campaign.pages loaded on first use
---@field workflow campaign.workflow loaded on first use
---@field ngx campaign.ngx loaded on first use (OpenResty only)
---@field cli {main: fun(argv: string[], env?: campaign.cli.Env): integer} the CLI, loaded on first use
local campaign = {}

---@class campaign.null: lightuserdata

---A token provider: called with `false` before a call (unless the token it last gave with an
---`expires_in` is still valid) and with `true` after a 401.
---@alias campaign.TokenProvider fun(force_refresh: boolean): (token: string|nil, expires_in_or_err: number|string|campaign.Error|nil)

---A query table: values are strings, numbers, booleans, or a list of those (the key repeats).
---@alias campaign.Query table<string, string|number|boolean|(string|number|boolean)[]>

---A request body: a table is encoded as JSON, a string is sent as is (it must be JSON).
---@alias campaign.Body table|string

---The libcurl client or the OpenResty client: the Lua layers take either.
---@alias campaign.AnyClient campaign.Client|campaign.ngx.Client

---campaign.new's option table (docs/client.md "campaign.new(opts)"). Unknown keys raise.
---@class campaign.Options
---@field org string required: the tenant id in the URL (letters, digits, `-`, `_`, `.`)
---@field api_key string required: sent as `X-Api-Key`
---@field token string|campaign.TokenProvider|false required: a token, a provider, or `false` (no Authorization header)
---@field base_url? string default "https://mc.adobe.io"; https://, or http:// to a loopback host
---@field allow_http? boolean default false: true accepts an http:// base_url to any host (cleartext)
---@field timeout? number seconds for a whole attempt, > 0 (default 30)
---@field connect_timeout? number seconds to connect, > 0 (default 10)
---@field retries? integer retries after the first attempt, 0..100 (default 3; transient failures only)
---@field retry_base? number seconds, first backoff ceiling, >= 0 (default 0.5)
---@field retry_max? number seconds, cap of every wait (Retry-After included), >= 0 (default 30)
---@field cafile? string CA bundle (PEM) (default: the system store)
---@field insecure? boolean default false: true turns TLS verification off (never against ACS)
---@field proxy? string CURLOPT_PROXY (default: libcurl's environment, https_proxy, no_proxy...)
---@field user_agent? string default "lua-campaign/<version> libcurl/<ver> <Lua release>"
---@field max_body? integer bytes, > 0 (default 64 MiB): larger answers fail with kind "too_large"
---@field http2? boolean default true: HTTP/2 over TLS when the server offers it
---@field on_event? fun(ev: campaign.Event) a hook per attempt (protected: its errors are ignored)
---@field rate? number requests per second for every attempt, > 0 (default: not paced; docs/client.md "Pacing and budget")
---@field burst? integer requests that may start at once after an idle time, >= 1 (default 1; needs rate)
---@field budget? integer|campaign.BudgetSpec at most that many requests, then kind "budget" before sending

---A rolling 24 h budget kept in a file (lua/campaign/budget.lua).
---@class campaign.BudgetSpec
---@field calls integer at most this many requests in any rolling 24 h
---@field per "day"
---@field file? string the file of the counts (required by the C client; the OpenResty client counts in shared_dict)

---What `on_event` receives (no header values, no token, no API key).
---@class campaign.Event
---@field type "request"|"response"|"error"|"retry"
---@field method string
---@field url string the full URL with its query
---@field attempt integer
---@field index? integer the request's index in a batch
---@field status? integer response, retry
---@field elapsed? number seconds of this attempt (response, error)
---@field kind? string error, retry: the failure's kind
---@field message? string error, retry
---@field wait? number retry: seconds before the next attempt

---A request's options (unknown keys raise).
---@class campaign.RequestOpts
---@field query? campaign.Query appended after the path's own query, keys sorted
---@field headers? table<string, string> extra headers (not Authorization, X-Api-Key, Host, Content-Length, Transfer-Encoding)
---@field raw? boolean true: the body text instead of the decoded JSON
---@field body? campaign.Body client:request only

---`res`, the second value of a successful call.
---@class campaign.Response
---@field status integer the HTTP status (2xx)
---@field headers table<string, string> lower-case names, repeated ones joined with ", "
---@field attempts integer tries made
---@field elapsed number seconds from the call until the answer, waits included
---@field new_connections? integer connections the last attempt opened (0: kept-alive reuse)
---@field http_version? string "1.1", "2", ...

---The error object (docs/errors.md): `tostring(err)` is one line, never a secret.
---@class campaign.Error
---@field kind "http"|"json"|"network"|"timeout"|"tls"|"too_large"|"auth"|"verify"|"interrupted"|"callback"|"pagination"|"not_found"|"ambiguous"|"event_failed"|"privacy_failed"|"workflow_failed"|string
---@field message string from the ACS error body, else a readable summary
---@field status? integer the HTTP status, when an answer arrived
---@field code? string|integer `error_code` of the gateway or `code` of the engine, as sent
---@field codes string[] every `[A-Z]{3}-\d{6}` code in message, in order (maybe empty)
---@field body? table|string the decoded JSON error body, or the first 4 KiB of a text body
---@field headers? table<string, string> response headers
---@field retry_after? number seconds (Retry-After)
---@field request_id? string X-Request-Id and the like
---@field attempts? integer tries made (0: the token provider failed first)
---@field method? string
---@field url? string the full URL with its query
---@field path? string the URL relative to <base_url>/<org>/campaign/, without the query
---@field offset? integer kind json: byte offset of the JSON error
---@field max_body? integer kind too_large: the limit exceeded
---@field curl_code? integer transport kinds: libcurl's CURLcode
---@field sent? boolean network, timeout, tls, interrupted: false = certainly never reached the server
---@field signal? integer kind interrupted: 2 (SIGINT) or 15 (SIGTERM)
---@field mismatches? table<string, campaign.Mismatch> kind verify
---@field read_only? string[] kind verify with opts.check_read_only: the fields refused, sorted
---@field report? campaign.BulkReport kinds interrupted, callback raised by workflow.bulk_update
---@field cause? any kinds interrupted, callback: the value originally raised
---@field href? string kind pagination: the refused next.href, printable
---@field pkey? string kind verify of upsert_profile's create: the profile was created
---@field pkeys? string[] kind ambiguous: the PKeys that matched
---@field more? boolean kind ambiguous: the listing had more pages
---@field activities? string[] kinds ambiguous, not_found of signal_and_wait
---@field service? any kind not_found: the service asked for
---@field deadline? number a wait's timeout: opts.deadline
---@field elapsed? number a wait's seconds
---@field polls? integer a wait's reads
---@field last_status? string a wait's last status (or workflow state)
---@field status_history? campaign.StatusChange[] a wait's status changes
---@field record? table a wait's last record read

---@class campaign.Mismatch
---@field expected any what was sent
---@field got any what was read back
---@field cause? "data_policy" the values differ only in letter case (ACS's dataPolicy)
---@field data_policy? string the field's dataPolicy when opts.metadata names it

---@class campaign.StatusChange
---@field status string the status (a workflow's state)
---@field elapsed number seconds since the workflow call began

---A request of client:batch: `{method, path, body_or_nil, opts_or_nil}` or the named form.
---@class campaign.BatchRequest
---@field [1] string method
---@field [2] string path
---@field [3]? campaign.Body
---@field [4]? campaign.RequestOpts
---@field method? string
---@field path? string
---@field body? campaign.Body
---@field opts? campaign.RequestOpts

---@class campaign.BatchOpts
---@field concurrency? integer|"auto" transfers in flight, 1..256 (default 16); "auto": an adaptive limit (docs/bulk.md "Concurrency")
---@field concurrency_max? integer with "auto": the most the limit may reach, 1..256 (default 64)
---@field concurrency_start? integer with "auto": the limit at first, 1..concurrency_max (default 4)
---@field on_result? fun(i: integer, result: campaign.BatchResult, limit: integer) called as each request finishes (limit: the concurrency limit now); a raise stops the batch (required with a source)

---A source of client:batch: called each time a slot is free; the next request, `false` (nothing
---ready until a request in flight settles) or `nil` (the end).
---@alias campaign.BatchSource fun(): campaign.BatchRequest|false|nil

---What client:batch returns for a source (its results go only to on_result).
---@class campaign.BatchSummary
---@field count integer requests taken from the source
---@field ok integer
---@field failed integer
---@field interrupted? integer the signal that stopped the batch

---@class campaign.BatchResult
---@field status? integer
---@field body? any the decoded answer (nil on failure)
---@field err? campaign.Error
---@field attempts integer
---@field headers? table<string, string>
---@field elapsed? number on success
---@field new_connections? integer on success

---@class campaign.Stats
---@field buffered integer bytes of response buffers the client holds now
---@field transfers integer easy handles

---@class campaign.EncodeOpts
---@field sort_keys? boolean keys sorted (byte order)
---@field pretty? boolean 2-space indent, keys sorted

---The libcurl client (a userdata; `tostring(client)` is "campaign.Client(<org>)").
---@class campaign.Client
local Client = {} -- luacheck: ignore 241

---A client. Raises on a bad option, naming it.
---@param opts campaign.Options
---@return campaign.Client
function campaign.new(opts) end

---@param path string relative to <base_url>/<org>/campaign/, or an absolute href of the same origin
---@param opts? campaign.RequestOpts
---@return any|nil body the decoded JSON (`{}` for an empty body; the text with raw = true)
---@return campaign.Response|campaign.Error res_or_err
function Client:get(path, opts) end

---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function Client:patch(path, fields, opts) end

---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function Client:post(path, fields, opts) end

---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function Client:delete(path, opts) end

---Any method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS); the body in opts.body.
---@param method string
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function Client:request(method, path, opts) end

---Many requests at once. A list: results in request order, a misuse anywhere raises before
---anything is sent. A source function: results only to opts.on_result, a summary returned.
---@param requests campaign.BatchRequest[]|campaign.BatchSource
---@param opts? campaign.BatchOpts
---@return campaign.BatchResult[]|campaign.BatchSummary
function Client:batch(requests, opts) end

---The URL a call would use; sends nothing, raises like the calls do.
---@param path string
---@param opts? {query?: campaign.Query}
---@return string
function Client:url(path, opts) end

---Frees every handle and buffer; idempotent. Later calls raise "client is closed".
function Client:close() end

---@return campaign.Stats
function Client:stats() end

-- The module table is the client's method table: campaign.get(client, path) == client:get(path).

---@param client campaign.Client
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function campaign.get(client, path, opts) end

---@param client campaign.Client
---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function campaign.patch(client, path, fields, opts) end

---@param client campaign.Client
---@param path string
---@param fields campaign.Body
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function campaign.post(client, path, fields, opts) end

---@param client campaign.Client
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function campaign.delete(client, path, opts) end

---@param client campaign.Client
---@param method string
---@param path string
---@param opts? campaign.RequestOpts
---@return any|nil body
---@return campaign.Response|campaign.Error res_or_err
function campaign.request(client, method, path, opts) end

---@param client campaign.Client
---@param requests campaign.BatchRequest[]|campaign.BatchSource
---@param opts? campaign.BatchOpts
---@return campaign.BatchResult[]|campaign.BatchSummary
function campaign.batch(client, requests, opts) end

---@param client campaign.Client
---@param path string
---@param opts? {query?: campaign.Query}
---@return string
function campaign.url(client, path, opts) end

---@param client campaign.Client
function campaign.close(client) end

---@param client campaign.Client
---@return campaign.Stats
function campaign.stats(client) end

---JSON text of a value (docs/json.md); raises on what cannot be encoded (NaN, a cycle...).
---@param value any
---@param opts? campaign.EncodeOpts
---@return string
function campaign.encode(value, opts) end

---The value of a JSON text (null is campaign.null, arrays are marked).
---@param text string
---@return any|nil value
---@return string? err the parse error (with its offset)
function campaign.decode(text) end

---Marks `t` as a JSON array (so an empty table encodes as `[]`) and returns it.
---@generic T: table
---@param t? T
---@return T
function campaign.array(t) end

---Whether `v` is a table marked as a JSON array (decoded `[...]` or campaign.array).
---@param v any
---@return boolean
function campaign.is_array(v) end

---Makes `fields` an error object (fills codes from message) and returns it; raises unless fields.kind is a string.
---@param fields {kind: string, message?: string, [string]: any}
---@return campaign.Error
function campaign.error(fields) end

---@param v any
---@return boolean
function campaign.is_error(v) end

---Installs SIGINT/SIGTERM handlers that only set a process-wide flag (CLIs and scripts only).
---@return true
function campaign.trap_signals() end

---The signal caught since trap_signals (2 or 15), else nil.
---@return integer|nil
function campaign.interrupted() end

---Forgets the caught signal (the handlers stay).
function campaign.clear_interrupt() end

---Blocks the thread for `seconds` (0..86400); ends early once a trapped signal arrived.
---@param seconds number
function campaign.sleep(seconds) end

---Wall-clock Unix time in seconds, a float.
---@return number
function campaign.gettime() end

---Internal (the clients' rule for text from a server: secrets redacted, valid UTF-8, cut on a
---character boundary); it may change.
---@param text string
---@param max? integer
---@param secrets? string[]
---@param raw? boolean
---@return string
function campaign._error_text(text, max, secrets, raw) end

---Internal (the adaptive concurrency limit of concurrency = "auto", src/limiter.c; campaign.ngx
---and the specs use it); it may change.
---@param opts? {start?: integer, min?: integer, max?: integer} bounds 1..256 (defaults 4, 1, 64)
---@return campaign.Limiter
function campaign._limiter(opts) end

---@class campaign.Limiter
local Limiter = {} -- luacheck: ignore 241
---@return integer limit the limit to apply now
function Limiter:limit() end
---One finished attempt (or call): its latency, what it was, the requests in flight then.
---@param rtt number seconds
---@param outcome "ok"|"overload"|"timeout"|"ignore" overload: 429/503
---@param inflight integer
---@param now? number seconds on any clock (default: the monotonic clock)
---@return integer limit
function Limiter:sample(rtt, outcome, inflight, now) end
---@return {limit: number, smoothed: number, base: number, min: integer, max: integer}
function Limiter:state() end

---Internal (the pacing rule, GCRA, shared by both clients; src/pacing.c); it may change.
---@param tat number the theoretical arrival time (seconds), 0 at first
---@param now number
---@param rate number
---@param burst integer
---@return number wait seconds to wait before this start (0: start now)
---@return number tat the new theoretical arrival time
function campaign._pacing_take(tat, now, rate, burst) end

---Internal (the request core without I/O, driven by campaign.ngx; src/core.c,
---docs/architecture.md); it may change. Validates settings as campaign.new does (messages
---prefixed by fname); methods :url(fname, path[, opts]), :token(pcall(provider, force)),
---:request(fname, method, path, body, opts[, allow_body]) -> exchange with :attempt(token[,
---index]) -> req, ev; :outcome(response | nil, kind, message, sent) -> step, ev, a, b;
---:refused(message) and :token_failed(err) -> nil, err.
---@param settings table the client options (as the C client's)
---@param fname? string the caller's name for messages (default: the C client's)
---@param share_headers? boolean one header table per token for requests without extra headers
---@return userdata core
function campaign._core(settings, fname, share_headers) end

---Internal (an absolute http(s) URL split by src/url.c's rules, for campaign.ngx's
---transports; src/core.c); it may change.
---@param url string
---@return string|nil scheme lower case; nil when url is not an absolute http(s) URL
---@return string? host lower case, IPv6 in brackets
---@return integer? port the default one made explicit
---@return string? authority as written
---@return string? rest the path and query
function campaign._url_split(url) end

---Internal (the HTTP/1.1 response parser of campaign.ngx's cosocket transport;
---src/http_response.c); it may change.
---@param opts? {max_head?: integer, max_body?: integer, head?: boolean}
---@return userdata parser :feed(s), :need(), :status(), :headers(), :body(), :keepalive(),
---:response()
function campaign._http_response(opts) end

---Internal (client:batch's option rules without a client, src/batch_options.c through
---src/core.c, for the workflows' checks before any input is read); it may change.
---@param fname string the name errors start with
---@param requests table|function the requests (a list or a source function)
---@param opts? table {concurrency?, concurrency_max?, concurrency_start?, on_result?}
---@param level? integer where a misuse is raised (as error's level)
---@return integer concurrency the concurrency to start with
---@return campaign.Limiter|nil limiter concurrency = "auto"'s limiter
function campaign._batch_options(fname, requests, opts, level) end

-- The OpenResty client (lua/campaign/ngx.lua) --------------------------------------------------

---campaign.ngx.new's option table: campaign.new's, less what nginx.conf decides (cafile,
---insecure, proxy, http2 raise), plus the transport settings.
---@class campaign.ngx.Options
---@field org string required
---@field api_key string required
---@field token string|campaign.TokenProvider|false required
---@field base_url? string default "https://mc.adobe.io"
---@field allow_http? boolean
---@field timeout? number
---@field connect_timeout? number
---@field retries? integer
---@field retry_base? number
---@field retry_max? number
---@field user_agent? string
---@field max_body? integer
---@field on_event? fun(ev: campaign.Event)
---@field rate? number
---@field burst? integer
---@field budget? integer|campaign.BudgetSpec per = "day" needs shared_dict
---@field shared_dict? string a lua_shared_dict holding the pace and the budget, shared by every worker
---@field location? string the internal proxy location (default "/_campaign_proxy")
---@field upstream? string an nginx upstream block (keep-alive pool) to proxy to
---@field transport? "cosocket"|"capture"|"resty.http"|fun(req: table): (table|nil, string?, string?, boolean?) default "cosocket" (docs/openresty.md "The cosocket transport"); a function replaces it (tests)
---@field ssl_verify? boolean default true: verify the server's certificate (lua_ssl_trusted_certificate) and its name
---@field pool_size? integer cosocket keep-alive connections kept per host and worker (default 16)
---@field pool_idle_timeout? number seconds an idle pooled connection is kept (default 30)
---@field max_head? integer bytes of status line and headers accepted (default 64 KiB)

---The OpenResty client: the same methods, results and errors as campaign.Client.
---@class campaign.ngx.Client: campaign.Client

---@class campaign.ngx.TokenCacheOpts
---@field lock_timeout? number seconds a refresh may hold the lock (default 30)
---@field poll? number seconds between looks at a held lock (default 0.01)

---A token store for campaign.auth.ims's `cache`.
---@class campaign.TokenCache
---@field get fun(key: string): (token: string|nil, valid_until: number|nil)
---@field set fun(key: string, token: string, valid_until: number, expires_in?: number)
---@field lock? fun(key: string): (ok: true|nil, err: string|nil)
---@field unlock? fun(key: string)

-- campaign.auth -----------------------------------------------------------------------------

---@class campaign.auth.ImsOpts
---@field client_id string required
---@field client_secret string required
---@field scopes? string|string[]|false default auth.DEFAULT_SCOPES; false: no scope sent
---@field ims_url? string default "https://ims-na1.adobelogin.com" (or its .../ims/token/v3 URL)
---@field allow_http? boolean an http:// ims_url to a host that is not loopback
---@field http? campaign.AnyClient|table a client to POST with, or options of a private libcurl client
---@field refresh_margin? number seconds before expiry when a new token is fetched
---@field clock? fun(): number
---@field cache? campaign.TokenCache

-- campaign.pages ----------------------------------------------------------------------------

---@class campaign.pages.Opts
---@field limit? integer stop after that many records
---@field max_pages? integer fail (kind "pagination") rather than fetch one page more

---The iterator of pages.each: call it (or use it in a generic for); then read its fields.
---@class campaign.pages.Iterator
---@field err? campaign.Error the error that ended the walk (nil: the listing was complete)
---@field pages integer pages fetched
---@field count integer records yielded
---@field res? campaign.Response the last page's res
---@overload fun(): (record: any, err: campaign.Error|nil)

-- campaign.api ------------------------------------------------------------------------------

---Listing parameters (docs/lua-api.md "Listing parameters"); other keys are query parameters.
---@class campaign.api.ListingParams
---@field filters? string|string[] path segments: .../profile/byEmail/byText
---@field custom_filter? boolean profileAndServices becomes profileAndServicesExt
---@field line_count? integer _lineCount
---@field order? string _order
---@field descending? boolean _order=<order> desc
---@field force_pagination? boolean _forcePagination=true
---@field [string] any a query parameter, or an SDK alias (hasCustomFilter, lineCount, descendingSort...)

-- campaign.workflow -------------------------------------------------------------------------

---@class campaign.workflow.UpdateOpts
---@field resource? string default "profileAndServices/profile"
---@field compare? fun(field: string, expected: any, got: any): boolean replaces the comparison
---@field verify_attempts? integer reads after the PATCH (default 1)
---@field verify_delay? number seconds between them (default 0.5)
---@field sleep? fun(seconds: number)
---@field metadata? table the resourceType metadata (dataPolicy, readOnly)
---@field skip_unchanged? boolean no PATCH when every change already holds
---@field check_read_only? boolean refuse read-only fields before sending (kind "verify")
---@field read_only? string[] more read-only fields (with check_read_only)

---@class campaign.workflow.UpdateInfo
---@field changed boolean whether the first GET differed from the changes
---@field reads integer GETs made
---@field patch? table the PATCH answer {PKey, href}
---@field status integer the PATCH's status (the GET's when skipped)
---@field fields? string[] the names sent, sorted

---@class campaign.workflow.BulkItem
---@field pkey? string the record's PKey (or PKey)
---@field PKey? string
---@field changes table the fields to PATCH

---on_progress's fifth argument.
---@class campaign.workflow.BulkProgress
---@field limit? integer the concurrency limit now (moves with "auto")
---@field rate? number items settled per second since the start
---@field elapsed number seconds since the start
---@field eta? number seconds left at that rate (when the total is known)
---@field done integer
---@field total? integer
---@field applied integer
---@field failed integer
---@field unknown integer

---@class campaign.workflow.BulkOpts: campaign.workflow.UpdateOpts
---@field concurrency? integer|"auto" transfers at once (default 8), or "auto" (docs/bulk.md "Concurrency")
---@field concurrency_max? integer with "auto": its bound (default 64, at most 256)
---@field concurrency_start? integer with "auto": its start value (default 4)
---@field window? integer rows that may wait for their record's row in flight (default 4 x concurrency); with a client whose batch takes only lists, requests per batch call
---@field verify? boolean read each updated record back and compare
---@field on_progress? fun(done: integer, total: integer|nil, failed: integer, unknown: integer, info: campaign.workflow.BulkProgress)
---@field on_item? fun(i: integer, outcome: "applied"|"failed"|"unknown"|"not_sent", err: campaign.Error|nil, skipped: boolean|nil)
---@field journal? string|table an append-only journal file (docs/bulk.md), or the state that journal.load returns
---@field resume? boolean skip the items the journal records as applied
---@field clock? fun(): number for elapsed

---@class campaign.BulkReport
---@field total integer items taken
---@field ok integer
---@field failed integer
---@field unknown integer
---@field not_sent integer
---@field errors table<integer, campaign.Error> every item not applied
---@field outcomes table<integer, "failed"|"unknown"|"not_sent">
---@field elapsed number seconds
---@field interrupted? integer|true the signal that stopped the run
---@field skipped? integer items a resume found applied already (counted in ok)

---Options of every wait (docs/lua-api.md "The wait"). Unknown keys raise.
---@class campaign.workflow.WaitOpts
---@field deadline? number seconds from the call's start, >= 0 (default 300)
---@field poll? number first interval, > 0 (default 1); then x1.5
---@field max_poll? number cap of the interval (default 30, or poll when larger)
---@field on_poll? fun(record: table, elapsed: number) after each read; a raise goes through
---@field clock? fun(): number
---@field sleep? fun(seconds: number)

---@class campaign.workflow.UpsertOpts
---@field ext? boolean use profileAndServicesExt (custom fields and filters)
---@field create? boolean false: no match is kind "not_found"
---@field compare? fun(field: string, expected: any, got: any): boolean
---@field verify_attempts? integer
---@field verify_delay? number
---@field sleep? fun(seconds: number)
---@field metadata? table
---@field skip_unchanged? boolean

---An email, or {email = ...}, or {filter = "byText"|{...}, <the filter's parameters>}.
---@alias campaign.workflow.Match string|{email?: string, filter?: string|string[], [string]: any}

---@class campaign.workflow.SubscriptionOpts
---@field verify_attempts? integer reads after the change (default 1)
---@field verify_delay? number seconds between them (default 0.5)
---@field sleep? fun(seconds: number)

---@class campaign.workflow.EventOpts: campaign.workflow.WaitOpts
---@field tenant? string the transactional tenant (mc<tenant>), default from the client's org

---@class campaign.workflow.RunOpts: campaign.workflow.WaitOpts
---@field command? "start"|"pause"|"resume"|"stop"|string default "start"
---@field state? string|string[] the state(s) to wait for
---@field failed_states? string|string[] default "error": kind "workflow_failed"

---@class campaign.workflow.SignalOpts: campaign.workflow.WaitOpts
---@field state? string|string[] default {"stopped", "finished"}
---@field failed_states? string|string[]

---@class campaign.workflow.Signal
---@field activity? string the signal activity's name or PKey (optional when there is one)
---@field parameters? table
---@field source? string default "API"

---The spec of wait.poll (internal to the workflows).
---@class campaign.workflow.PollSpec
---@field opts campaign.workflow.WaitOpts the caller's checked opts
---@field started? number wait.now(opts) taken when the workflow call began
---@field first? table a record already in hand
---@field fetch fun(): (table|nil, campaign.Error|nil)
---@field status fun(record: table): string
---@field classify fun(status: string, record: table): "done"|"failed"|nil
---@field what string for messages
---@field path? string the polled path
---@field failed_kind string kind of a "failed" verdict
---@field failed_message? fun(status: string): string

-- The workflows of lua/campaign/workflow/*.lua, reachable as campaign.workflow.<name> (set in a
-- loop there, so declared here too).
---@class campaign.workflow
local workflow = {} -- luacheck: ignore 241

---@param client campaign.AnyClient
---@param match campaign.workflow.Match
---@param fields table
---@param opts? campaign.workflow.UpsertOpts
---@return table|nil record
---@return "updated"|"created"|campaign.Error how_or_err
---@return table|nil info
function workflow.upsert_profile(client, match, fields, opts) end

---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param service string|table a PKey, a service record or a service name
---@param opts? campaign.workflow.SubscriptionOpts
---@return table|nil subscription
---@return "subscribed"|"already_subscribed"|campaign.Error how_or_err
function workflow.subscribe_and_verify(client, profile, service, opts) end

---@param client campaign.AnyClient
---@param profile string|table a PKey or a profile record
---@param service string|table a PKey, a service record or a service name
---@param opts? campaign.workflow.SubscriptionOpts
---@return true|nil ok
---@return "unsubscribed"|"not_subscribed"|campaign.Error how_or_err
---@return table|nil subscription the subscription as it was
function workflow.unsubscribe_and_verify(client, profile, service, opts) end

---@param client campaign.AnyClient
---@param event_id string e.g. "EVTcartAbandonment"
---@param event table {email =, ctx = {...}}
---@param opts? campaign.workflow.EventOpts
---@return table|nil event
---@return campaign.StatusChange[]|campaign.Error history_or_err
function workflow.send_and_track(client, event_id, event, opts) end

---@param client campaign.AnyClient
---@param request table {name, namespaceName, reconciliationValue, regulation, type? = "access"}
---@param opts? campaign.workflow.WaitOpts
---@return string|nil data the file (XML text)
---@return table|campaign.Error request_or_err the request as last read
---@return campaign.StatusChange[]|nil history
function workflow.gdpr_request_and_fetch(client, request, opts) end

---@param client campaign.AnyClient
---@param workflow_id string
---@param opts? campaign.workflow.RunOpts
---@return table|nil workflow
---@return campaign.StatusChange[]|campaign.Error history_or_err
function workflow.run_workflow_and_wait(client, workflow_id, opts) end

---@param client campaign.AnyClient
---@param workflow_id string
---@param signal? campaign.workflow.Signal
---@param opts? campaign.workflow.SignalOpts
---@return table|nil workflow
---@return campaign.StatusChange[]|campaign.Error history_or_err
function workflow.signal_and_wait(client, workflow_id, signal, opts) end

---Internal: the outcome bulk_update gives an item's error.
---@param err campaign.Error
---@return "failed"|"unknown"|"not_sent"
function workflow._outcome_of(err) end

-- campaign.cli ------------------------------------------------------------------------------

---What cli.main's `env` may override (tests, embedding).
---@class campaign.cli.Env
---@field root? string the checkout, to find the emulator
---@field getenv? fun(name: string): string|nil
---@field stdout? file*
---@field stderr? file*
---@field stdin? file*
---@field isatty? fun(fd: integer): boolean
---@field clock? fun(): number

return campaign
