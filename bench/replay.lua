-- wrk script: replays precomputed Authorization headers (bench/wrk.sh).
-- Thread k sends the lines of $HEADERS-k.txt in order, one per request:
-- one nonce and cnonce per thread, nc 1, 2, ... (examples/headers.rs
-- writes them). No Digest work here, so the generator costs the same on an
-- open and a protected route. Past the last line the last one is repeated
-- (the server refuses it: counted as a non-2xx answer).
--
-- A fleet: $TARGETS, n "host:port" (n > 1), pins thread k to the
-- (k mod n)-th, and with headers written by `headers --interleave n` the n
-- threads of group floor(k / n) share one nonce and cnonce, thread k
-- sending the counts k mod n + 1, + n, + 2n, ...: one client whose requests
-- go to the n instances in turn. The group's threads run at their own
-- instances' pace: left alone, one drifts thousands of counts ahead within
-- seconds and its partner's counts fall out of the server's nc window (256
-- by default; refused with stale=true: half the protected requests of a
-- 3 s run). So they publish how many lines they sent in memory shared
-- through LuaJIT's FFI (the threads are one process), and a connection of
-- a thread more than LEAD lines ahead of a partner waits a millisecond
-- before its next request (wrk's delay(), not counted in the latency).
--
-- $STATUSES=1 also tallies the non-2xx answers by status ("401 stale" for
-- a 401 with stale=true), at the cost of wrk parsing every response's
-- headers into a Lua table.

-- Far inside the nc window: each line is n counts, and a thread's
-- connections have at most one request each in flight.
local LEAD = 32

local threads = {}
local groups = {}
local targets = {}
for target in (os.getenv("TARGETS") or ""):gmatch("%S+") do
    targets[#targets + 1] = target
end
local fleet = #targets > 1
local ffi
if fleet then
    ffi = require("ffi")
    ffi.cdef("void *calloc(size_t, size_t);")
end

function setup(thread)
    local k = #threads
    thread:set("id", k)
    if #targets > 0 then
        local host, port = targets[k % #targets + 1]:match("^(.+):(%d+)$")
        thread.addr = wrk.lookup(host, port)[1]
    end
    if fleet then
        local group = math.floor(k / #targets)
        if not groups[group] then
            -- Never freed: it lives as long as wrk.
            groups[group] = tonumber(ffi.cast("uintptr_t", ffi.C.calloc(#targets, 8)))
        end
        thread:set("shared", groups[group])
    end
    threads[#threads + 1] = thread
end

function init(args)
    lines = {}
    for line in io.lines(os.getenv("HEADERS") .. "-" .. id .. ".txt") do
        lines[#lines + 1] = line
    end
    -- wrk.format ends the head with an empty line; the header goes before it.
    prefix = wrk.format(nil, nil):sub(1, -3) .. "Authorization: "
    n = 0
    statuses = {}
    if fleet then
        sent = ffi.cast("int64_t *", shared)
        slot = id % #targets
    end
end

function request()
    if n < #lines then
        n = n + 1
    end
    if fleet then
        sent[slot] = n
    end
    return prefix .. lines[n] .. "\r\n\r\n"
end

if fleet then
    function delay()
        for j = 0, #targets - 1 do
            if n - sent[j] > LEAD then
                return 1
            end
        end
        return 0
    end
end

if os.getenv("STATUSES") == "1" then
    function response(status, headers, body)
        if status >= 200 and status < 300 then
            return
        end
        local key = tostring(status)
        if status == 401 then
            for name, value in pairs(headers) do
                if name:lower() == "www-authenticate" and value:find("stale=true", 1, true) then
                    key = "401 stale"
                end
            end
        end
        statuses[key] = (statuses[key] or 0) + 1
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    local tally = {}
    for _, thread in ipairs(threads) do
        for key, count in pairs(thread:get("statuses") or {}) do
            tally[key] = (tally[key] or 0) + count
        end
    end
    local keys = {}
    for key in pairs(tally) do
        keys[#keys + 1] = key
    end
    table.sort(keys)
    local parts = {}
    for _, key in ipairs(keys) do
        parts[#parts + 1] = key:gsub(" ", "_") .. ":" .. tally[key]
    end
    io.write(string.format(
        "RESULT requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d statuses=%s\n",
        summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
        latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
