-- A background job in OpenResty: one worker (ngx.worker.id() == 0) runs a bulk update of
-- profiles from an init_worker_by_lua timer, then reads one record back with
-- update_and_verify; the other workers keep serving requests. The requests go through
-- campaign.ngx's cosocket transport (chosen by itself in a timer, where ngx.location.capture
-- cannot run) and every worker shares one IMS token (lua_shared_dict campaign_tokens).
-- Copy it, replace `items` with your own source, and start it from nginx.conf:
--
--   env CAMPAIGN_BASE_URL; env CAMPAIGN_ORG; env CAMPAIGN_CLIENT_ID; env CAMPAIGN_CLIENT_SECRET;
--   http {
--     lua_shared_dict campaign_tokens 1m;     # the shared IMS token
--     lua_shared_dict campaign_jobs 1m;       # the job's last report (for a status page)
--     lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--     lua_ssl_verify_depth 4;
--     resolver 127.0.0.53 valid=300s ipv6=off; # the API's host name (cosockets resolve with it)
--     init_worker_by_lua_block { require("background_job").start(require("background_job").from_env()) }
--   }
--
-- luacheck: read globals ngx
local auth = require "campaign.auth"
local cngx = require "campaign.ngx"
local workflow = require "campaign.workflow"

local M = {}

--- The settings from the environment (nginx.conf `env` lines): no secret in any file.
function M.from_env()
  return {
    base_url = os.getenv("CAMPAIGN_BASE_URL") or "https://mc.adobe.io",
    ims_url = os.getenv("CAMPAIGN_IMS_URL") or "https://ims-na1.adobelogin.com",
    org = os.getenv("CAMPAIGN_ORG"), client_id = os.getenv("CAMPAIGN_CLIENT_ID"),
    client_secret = os.getenv("CAMPAIGN_CLIENT_SECRET"),
    every = tonumber(os.getenv("CAMPAIGN_JOB_EVERY") or ""),
  }
end

-- A client whose token comes from IMS through the shared token cache: the worker running the
-- job and the ones serving requests refresh one token between them.
local function new_client(cfg)
  local provider = auth.ims {
    client_id = cfg.client_id, client_secret = cfg.client_secret, ims_url = cfg.ims_url,
    scopes = cfg.scopes,
    http = cngx.new { base_url = cfg.ims_url:match("^(https?://[^/]+)"), org = "ims",
      api_key = cfg.client_id, token = "unused" },
    cache = cngx.shared_token_cache(cfg.token_dict or "campaign_tokens"),
  }
  return cngx.new { base_url = cfg.base_url, org = cfg.org, api_key = cfg.api_key or cfg.client_id,
    token = provider }
end

-- The items to update: replace with your own source (a file, a queue, a database). This one
-- lists the first profiles and gives each the same change.
local function default_items(client, cfg)
  local list, err = client:get("profileAndServices/profile", { query = { _lineCount = cfg.count or 10 } })
  if not list then return nil, err end
  local items = {}
  for i, p in ipairs(list.content or {}) do
    items[i] = { pkey = p.PKey, changes = cfg.changes or { preferredLanguage = "fr_fr" } }
  end
  return items
end

--- One run: bulk_update, then update_and_verify of the first item. Returns a summary table.
function M.run(cfg)
  local client = new_client(cfg)
  local items, ierr = (cfg.items or default_items)(client, cfg)
  if not items then return { ok = false, error = tostring(ierr) } end
  local report = workflow.bulk_update(client, items, { concurrency = cfg.concurrency or 8 })
  local summary = { ok = report.failed == 0, total = report.total, applied = report.ok,
    failed = report.failed, unknown = report.unknown, worker = ngx.worker.id(), phase = ngx.get_phase() }
  if items[1] then
    local record, verr = workflow.update_and_verify(client, items[1].pkey, items[1].changes)
    summary.verified = record ~= nil
    if not record then summary.ok, summary.error = false, tostring(verr) end
  end
  return summary
end

-- Records the summary where a status page (or a spec) can read it.
local function record(cfg, key, value)
  local dict = ngx.shared[cfg.status_dict or "campaign_jobs"]
  if dict then dict:set(key, type(value) == "table" and require("cjson.safe").encode(value) or value) end
end

--- Called from init_worker_by_lua: schedules the job in one worker only (cfg.worker, default 0).
-- cfg.every (seconds): run again that long after each run ends (runs never overlap).
function M.start(cfg)
  if ngx.worker.id() ~= (cfg.worker or 0) then return true end
  local job
  job = function(premature)
    if premature then return end -- nginx is stopping or reloading
    record(cfg, "job_state", "running")
    local ok, summary = pcall(M.run, cfg)
    if not ok then summary = { ok = false, error = tostring(summary) } end
    record(cfg, "job_report", summary)
    record(cfg, "job_state", "done")
    if not summary.ok then ngx.log(ngx.ERR, "campaign background job: ", summary.error or "failed items") end
    if cfg.every then
      local scheduled, err = ngx.timer.at(cfg.every, job)
      if not scheduled then ngx.log(ngx.ERR, "campaign background job: cannot reschedule: ", err) end
    end
  end
  local scheduled, err = ngx.timer.at(cfg.delay or 0, job)
  if not scheduled then ngx.log(ngx.ERR, "campaign background job: cannot start: ", err) end
  return scheduled, err
end

return M
