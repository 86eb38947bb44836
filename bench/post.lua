-- wrk script of bench/run: every request is the same POST of one email
-- notification. The X-API-Key header comes from the environment variable
-- NH_BENCH_API_KEY. Without that variable the header is left out, which is
-- enough for the static location.
--
-- At the end it prints one "bench-result" line that bench/run parses.
-- Latencies are in microseconds.

wrk.method = "POST"
wrk.body = '{"channel":"EMAIL","to":{"email":"bench@example.com"},' ..
           '"content":{"subject":"s","body":"b"}}'
wrk.headers["Content-Type"] = "application/json"

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
