-- The claims of (cnonce, nc) queued together (one or many), decided in
-- order, atomically and in one round trip: the engine's rule
-- (src/store/counts/mod.rs), judged by Redis's own clock.
--
-- KEYS[1]    the generation key
-- KEYS[1+i]  claim i's nonce counts: a sorted set of "nc:cnonce", scored by nc
-- ARGV[1]    a fresh generation, used only when the generation key is missing
-- ARGV[2]    the clock-skew margin, seconds: claims and counts outlive the
--            nonce's expiry by that much, as in every store
-- ARGV[3 + 6(i-1)] ... claim i, six values:
--   the generation the nonce was minted in (8 hex digits), or ''
--   the member, "nc:cnonce"
--   nc
--   the window
--   the per-nonce bound (entries inside the window)
--   when the nonce expires, unix seconds
--
-- Returns {generation, code_1, ..., code_n}: per claim 1 accepted, 0
-- refused, 2 a nonce of another generation than the current one.

local generation = redis.call('GET', KEYS[1])
if not generation then
  -- The data is gone (flushed, restarted empty, a new server): every nonce
  -- minted before belongs to a generation that no longer exists.
  generation = ARGV[1]
  redis.call('SET', KEYS[1], generation)
end

-- One clock, Redis's, decides both when a nonce's counts are deleted (the
-- key's expiry) and when its claims start being refused, at the same
-- instant: the nonce's expiry plus the margin for instances' clock skew. No
-- claim ever lands on counts already deleted.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local margin = tonumber(ARGV[2])

local function claim(key, minted_in, member, nc, window, bound, expires_at)
  -- An empty generation: not a nonce of this crate (a test's string), no
  -- generation to check.
  if minted_in ~= '' and generation ~= minted_in then
    return 2
  end
  local until_ms = (expires_at + margin) * 1000
  if now_ms >= until_ms then
    return 0
  end
  local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  local highest = 0
  if top[2] then
    highest = tonumber(top[2])
  end
  if nc + window <= highest then
    return 0
  end
  -- Entries below the window are trimmed as the highest count rises, so
  -- every entry left is inside the window: the bound counts exactly those.
  if redis.call('ZCARD', key) >= bound then
    return 0
  end
  if redis.call('ZADD', key, 'NX', nc, member) == 0 then
    return 0
  end
  if nc > highest then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', nc - window)
  end
  redis.call('PEXPIREAT', key, until_ms)
  return 1
end

local answers = {generation}
for i = 2, #KEYS do
  local a = 3 + 6 * (i - 2)
  answers[i] = claim(KEYS[i], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]))
end
return answers
