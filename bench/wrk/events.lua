-- wrk script for bench/run.py: realistic AddToCart events with distinct event_ids.
--
-- Usage: wrk ... -s bench/wrk/events.lua <url> -- MODE PIXEL_ID EVENTS [API_KEY] [NONCE]
--   MODE    "collect" (POST /collect: one event, or {"pixel_id", "events"} when EVENTS > 1)
--           "api"     (POST /api/v1/events: TikTok Events API 2.0 body, Bearer API_KEY)
--           "tiktok"  (POST /open_api/v1.3/event/track/: the same body, Access-Token API_KEY)
--   EVENTS  events per request
-- done() prints one line "BENCH_JSON {...}" with requests/s, latency and error counts.

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   table.insert(threads, thread)
end

local USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
   .. "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

local mode, pixel_id, per_request, api_key, nonce
local counter = 0
local headers = {}
local path

function init(args)
   mode = args[1] or "collect"
   pixel_id = args[2] or ""
   per_request = tonumber(args[3] or "1")
   api_key = args[4] or ""
   nonce = args[5] or tostring(os.time())
   headers["User-Agent"] = USER_AGENT
   headers["Origin"] = "https://shop.example.com"
   if mode == "api" then
      path = "/api/v1/events"
      headers["Content-Type"] = "application/json"
      headers["Authorization"] = "Bearer " .. api_key
      headers["Origin"] = nil
   elseif mode == "tiktok" then
      path = "/open_api/v1.3/event/track/"
      headers["Content-Type"] = "application/json"
      headers["Access-Token"] = api_key
      headers["Origin"] = nil
   else
      path = "/collect?p=" .. pixel_id
      headers["Content-Type"] = "text/plain;charset=UTF-8"
   end
end

local function event()
   counter = counter + 1
   local id = string.format("%s-%d-%d", nonce, tid, counter)
   local now = os.time()
   return '{"event":"AddToCart","event_id":"ev-' .. id .. '","event_time":' .. now
      .. ',"user":{"anonymous_id":"anon-' .. id .. '","locale":"en-US"}'
      .. ',"properties":{"contents":['
      .. '{"content_id":"SKU-10293","item_group_id":"PG-4411",'
      .. '"content_name":"Organic cotton t-shirt, navy, size M","price":24.9,"quantity":2},'
      .. '{"content_id":"SKU-20877","item_group_id":"PG-5120",'
      .. '"content_name":"Canvas tote bag with leather handles","price":39.5,"quantity":1}'
      .. '],"content_type":"product","value":89.3,"currency":"USD"}'
      .. ',"page":{"url":"https://shop.example.com/products/organic-cotton-t-shirt'
      .. '?variant=10293&utm_source=tiktok&utm_campaign=summer","referrer":'
      .. '"https://shop.example.com/collections/summer-sale?page=2"}}'
end

local function events(n)
   local parts = {}
   for i = 1, n do
      parts[i] = event()
   end
   return table.concat(parts, ",")
end

function request()
   local body
   if mode == "api" or mode == "tiktok" then
      body = '{"event_source":"web","event_source_id":"' .. pixel_id .. '","data":['
         .. events(per_request) .. ']}'
   elseif per_request > 1 then
      body = '{"pixel_id":"' .. pixel_id .. '","events":[' .. events(per_request) .. ']}'
   else
      body = event()
   end
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_s":%.3f,"requests_per_s":%.2f,'
         .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,'
         .. '"non_2xx":%d,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect, e.read, e.write, e.timeout))
end
