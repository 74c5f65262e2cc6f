-- wrk script: replays precomputed Authorization headers (bench/wrk.sh).
-- Thread k sends the lines of $HEADERS-k.txt in order, one per request:
-- one nonce and cnonce per thread, nc 1, 2, ... (examples/headers.rs
-- writes them). No Digest work here, so the generator costs the same on an
-- open and a protected route. Past the last line the last one is repeated
-- (the server refuses it: counted as a non-2xx answer).

local threads = 0

function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end

function init(args)
    lines = {}
    for line in io.lines(os.getenv("HEADERS") .. "-" .. id .. ".txt") do
        lines[#lines + 1] = line
    end
    -- wrk.format ends the head with an empty line; the header goes before it.
    prefix = wrk.format(nil, nil):sub(1, -3) .. "Authorization: "
    n = 0
end

function request()
    if n < #lines then
        n = n + 1
    end
    return prefix .. lines[n] .. "\r\n\r\n"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
