-- bench/sales.lua: wrk script posting realistic POS sales to POST /v1/sales.
--
-- Arguments (after wrk's `--`): CHAIN_FILE TAG
--   CHAIN_FILE  Lua file written by bench/chain.py: stores, their pos keys, member naming
--   TAG         run tag; receipt numbers are TAG-<thread>-<counter>, unique per run
-- Environment: SALES_DELAY_MS (whole milliseconds, default 0 = as fast as possible): the
--   pause of each connection before each of its requests; connections / rate * 1000 offers
--   at most `rate` sales/s in total (closed-loop: the pause starts when the answer arrives).
--   It is read when the script is loaded, because wrk decides then whether delay() exists.
--
-- Each request: a random store (with that store's pos key), a member (10 % of the traffic on
-- 5 hot members, the rest uniform over all), 1-6 lines in mixed categories, some lines
-- without points, some promoted SKUs. Statuses are counted per thread in response(); done()
-- adds them up and prints one line `BENCH_RESULT {json}` that bench/harness.py parses.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local chain, tag
local delay_ms = tonumber(os.getenv("SALES_DELAY_MS") or "0") or 0
local categories = {"otc", "otc", "otc", "rx", "rx", "tcm", "supplement", "device"}
local hot = 5
local hot_share = 0.10

function init(args)
  chain = dofile(args[1])
  tag = args[2]
  counts = {}
  samples = {}
  math.randomseed(id * 7919 + os.time())
  headers = {}
  for i, key in ipairs(chain.keys) do
    headers[i] = {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
    }
  end
end

if delay_ms > 0 then
  -- wrk pauses a connection only when the script defines delay(): at full speed it does not.
  function delay()
    return delay_ms
  end
end

local function member()
  local n
  if math.random() < hot_share then
    n = math.random(0, hot - 1)
  else
    n = math.random(0, chain.members - 1)
  end
  return string.format(chain.member_format, n)
end

local function line()
  local sku, category
  local r = math.random()
  if r < 0.08 then
    sku = chain.promoted_skus[math.random(#chain.promoted_skus)]
    category = "otc"
  else
    sku = string.format("SKU-%04d", math.random(1, 2000))
    category = categories[math.random(#categories)]
  end
  local no_points = math.random() < 0.06 and ',"no_points":true' or ""
  return string.format(
    '{"sku":"%s","category":"%s","amount_fen":%d,"quantity":%d%s}',
    sku, category, math.random(300, 30000), math.random(1, 3), no_points
  )
end

function request()
  counter = counter + 1
  local store = math.random(#chain.stores)
  local lines = {}
  for i = 1, math.random(1, 6) do
    lines[i] = line()
  end
  local body = string.format(
    '{"store_id":"%s","receipt_no":"%s-%d-%d","member_id":"%s","occurred_at":"%s","lines":[%s]}',
    chain.stores[store], tag, id, counter, member(),
    os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 2), table.concat(lines, ",")
  )
  return wrk.format("POST", "/v1/sales", headers[store], body)
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
  if status ~= 201 and #samples < 10 then
    table.insert(samples, key .. " " .. string.sub(body or "", 1, 300))
  end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local total = {}
  local all_samples = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts") or {}) do
      total[status] = (total[status] or 0) + n
    end
    for _, sample in ipairs(thread:get("samples") or {}) do
      table.insert(all_samples, json_string(sample))
    end
  end
  local statuses = {}
  for status, n in pairs(total) do
    table.insert(statuses, string.format('"%s":%d', status, n))
  end
  local e = summary.errors
  local latency_us = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(latency_us, string.format('"p%s":%d', tostring(p), latency:percentile(p)))
  end
  table.insert(latency_us, string.format('"mean":%.1f', latency.mean))
  table.insert(latency_us, string.format('"max":%d', latency.max))
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"statuses":{%s},'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"latency_us":{%s},"samples":[%s]}\n',
    summary.duration, summary.requests, table.concat(statuses, ","),
    e.connect, e.read, e.write, e.timeout, table.concat(latency_us, ","),
    table.concat(all_samples, ",")
  ))
end
