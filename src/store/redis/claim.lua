-- One claim of (cnonce, nc) on one nonce, atomic and in one round trip:
-- the engine's rule (src/store/counts/mod.rs), judged by Redis's own clock.
--
-- KEYS[1]  the generation key
-- KEYS[2]  the nonce's counts: a sorted set of "nc:cnonce", scored by nc
-- ARGV[1]  the generation the nonce was minted in (8 hex digits), or ''
-- ARGV[2]  a fresh generation, used only when the generation key is missing
-- ARGV[3]  the member, "nc:cnonce"
-- ARGV[4]  nc
-- ARGV[5]  the window
-- ARGV[6]  the per-nonce bound (entries inside the window)
-- ARGV[7]  when the nonce expires, unix seconds
-- ARGV[8]  the clock-skew margin, seconds: claims and counts outlive the
--          nonce's expiry by that much, as in every store
--
-- Returns {1, generation} accepted, {0, generation} refused, and
-- {2, generation} for a nonce of another generation than the current one.

local generation = redis.call('GET', KEYS[1])
if not generation then
  -- The data is gone (flushed, restarted empty, a new server): every nonce
  -- minted before belongs to a generation that no longer exists.
  generation = ARGV[2]
  redis.call('SET', KEYS[1], generation)
end
-- An empty ARGV[1]: not a nonce of this crate (a test's string), no
-- generation to check.
if ARGV[1] ~= '' and generation ~= ARGV[1] then
  return {2, generation}
end

-- One clock, Redis's, decides both when a nonce's counts are deleted (the
-- key's expiry) and when its claims start being refused, at the same
-- instant: the nonce's expiry plus the margin for instances' clock skew. No
-- claim ever lands on counts already deleted.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local until_ms = (tonumber(ARGV[7]) + tonumber(ARGV[8])) * 1000
if now_ms >= until_ms then
  return {0, generation}
end

local key = KEYS[2]
local nc = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
local highest = 0
if top[2] then
  highest = tonumber(top[2])
end
if nc + window <= highest then
  return {0, generation}
end
-- Entries below the window are trimmed once the nonce holds two windows'
-- worth, as in the engine, not at every rise of the highest count (each
-- call from the script costs about a microsecond); at the bound they are
-- trimmed first, so that it counts exactly the entries inside the window.
local entries = redis.call('ZCARD', key)
local bound = tonumber(ARGV[6])
if entries >= bound then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', highest - window)
  entries = redis.call('ZCARD', key)
  if entries >= bound then
    return {0, generation}
  end
end
if redis.call('ZADD', key, 'NX', nc, ARGV[3]) == 0 then
  return {0, generation}
end
-- The expiry is the nonce's, the same for all its counts: set with the first.
if entries == 0 then
  redis.call('PEXPIREAT', key, until_ms)
elseif entries + 1 > 2 * window then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', math.max(highest, nc) - window)
end
return {1, generation}
