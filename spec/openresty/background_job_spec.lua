-- A background job in OpenResty (examples/openresty/background_job.lua): started from
-- init_worker_by_lua in worker 0 only, it runs workflow.bulk_update and update_and_verify in an
-- ngx.timer.at callback through campaign.ngx (the cosocket transport, chosen by itself there),
-- with the IMS token in the shared cache; the other worker keeps serving meanwhile.
local emulator = require "emulator"
local harness = require "openresty.harness"

describe("a background job started from init_worker_by_lua", function()
  it("bulk-updates and verifies profiles from one worker while the other serves", function()
    local emu = emulator.start { profiles = 12 }
    -- each PATCH takes 0.2 s, so the job runs long enough to be seen running
    emu:faults { { method = "PATCH", delay_ms = 200, times = -1 } }
    local cfg = string.format("{ base_url = %q, ims_url = %q, org = %q, client_id = %q, "
      .. "client_secret = %q, api_key = %q, count = 6, concurrency = 2, status_dict = 'campaign_test', "
      .. "changes = { phone = '3312345678' } }",
      emu.base_url, emu.ims_url, emu.org, emu.client_id, emu.client_secret, emu.api_key)
    local srv = harness.start { workers = 2,
      lua_path = harness.repo .. "/examples/openresty/?.lua;",
      http_extra = "    init_worker_by_lua_block { require('background_job').start(" .. cfg .. ") }" }
    finally(function()
      srv:stop()
      emu:stop()
    end)
    local read = [[
      local dict = ngx.shared.campaign_test
      return { state = dict:get("job_state"), report = dict:get("job_report"), pid = ngx.worker.pid(),
        worker = ngx.worker.id() }
    ]]
    local served_while_running = 0
    local done
    for _ = 1, 200 do
      local r = srv:eval(read)
      if r.state == "running" then served_while_running = served_while_running + 1 end
      if r.state == "done" then
        done = r
        break
      end
      harness.sh("sleep 0.05")
    end
    assert.is_table(done, "the job did not finish: " .. srv:error_log())
    local report = harness.json.decode(done.report)
    assert.is_true(report.ok, report.error)
    assert.equal(6, report.total)
    assert.equal(6, report.applied)
    assert.is_true(report.verified)
    assert.equal(0, report.worker)  -- the job ran in worker 0 only
    assert.equal("timer", report.phase)
    assert.is_true(served_while_running >= 3, served_while_running) -- handlers answered meanwhile
    -- the records changed: six by bulk_update, the first again by update_and_verify
    local patches, ims = 0, 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "PATCH" then patches = patches + 1 end
      if r.uri:find("/ims/token") then ims = ims + 1 end
    end
    assert.equal(7, patches)
    assert.equal(1, ims) -- one token for the whole job (the shared cache)
    local changed = 0
    for _, p in ipairs(emu:profiles()) do
      if p.phone == "3312345678" then changed = changed + 1 end
    end
    assert.equal(6, changed)
    -- a handler in any worker gets the same token from the shared dict: no second IMS call
    local r = srv:eval([[
      local auth = require "campaign.auth"
      local e = params.emu
      local provider = auth.ims { client_id = e.client_id, client_secret = e.client_secret,
        ims_url = e.ims_url, cache = cngx.shared_token_cache("campaign_tokens"),
        http = cngx.new { base_url = e.ims_url:match("^(https?://[^/]+)"), org = "ims",
          api_key = e.client_id, token = "unused" } }
      local body = client { token = provider }:get("profileAndServices/profile",
        { query = { _lineCount = 1 } })
      return body ~= nil
    ]], { emu = harness.emu_params(emu) })
    assert.is_true(r)
    ims = 0
    for _, q in ipairs(emu:requests()) do
      if q.uri:find("/ims/token") then ims = ims + 1 end
    end
    assert.equal(1, ims)
  end)
end)
