-- wrk script for `python -m bench --only gateway`: signed Shopify orders/paid webhooks,
-- prepared by bench/gateway.py (wrk's Lua has no HMAC), cycled through by each thread.
local requests = dofile(os.getenv("BENCH_GATEWAY_REQUESTS"))
local counter = 0
local statuses = {}

function setup(thread)
  thread:set("offset", math.random(#requests))
end

function request()
  counter = counter + 1
  local r = requests[((offset or 0) + counter) % #requests + 1]
  return wrk.format("POST", "/v1/webhooks/shopify", {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/paid",
    ["X-Shopify-Shop-Domain"] = "refstream-bench.myshopify.com",
    ["X-Shopify-Webhook-Id"] = r[3],
    ["X-Shopify-Hmac-Sha256"] = r[2],
  }, r[1])
end

function done(summary, latency, requests_)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non_2xx":%d,"connect_errors":%d,"read_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.timeout))
end
