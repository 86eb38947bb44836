-- wrk script of bench/run-reads-bulk. Without NH_BENCH_BODY_FILE every
-- request is a GET of the URL given to wrk. With it, every request is a
-- POST of that file's content as JSON. The X-API-Key header comes from the
-- environment variable NH_BENCH_API_KEY.
--
-- At the end it prints one "bench-result" line in the format of
-- bench/post.lua. Latencies are in microseconds.

local body_file = os.getenv("NH_BENCH_BODY_FILE")
if body_file and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    wrk.method = "POST"
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
end

-- With NH_BENCH_DELAY_MS, each connection waits that many milliseconds
-- before each request, which paces the load below the server's maximum.
local delay_ms = tonumber(os.getenv("NH_BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
    function delay()
        return delay_ms
    end
end

local api_key = os.getenv("NH_BENCH_API_KEY")
if api_key and api_key ~= "" then
    wrk.headers["X-API-Key"] = api_key
end

function done(summary, latency, requests)
    local errors = summary.errors

    io.write(string.format(
        "bench-result requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
        "max_us=%d connect_errors=%d read_errors=%d write_errors=%d " ..
        "status_errors=%d timeouts=%d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), latency.max,
        errors.connect, errors.read, errors.write, errors.status,
        errors.timeout))
end
