-- The shared failure counts (src/store/failures.rs) in Redis, judged by
-- Redis's clock. One script, its first argument naming what to do, so that
-- one EVALSHA serves every operation. Every key shares the store's hash tag.
--
-- KEYS[1]  the pair's count: a hash {n = failures, e = window end, unix s},
--          expiring with its window
-- KEYS[2]  the lock index: a sorted set of pairs (hex), scored by when they
--          became locked
-- KEYS[3]  the lock ends: a hash pair (hex) -> window end
-- ARGV[1]  'record' | 'failures' | 'reset' | 'locked_since'
-- ARGV[2]  the pair (hex)            (record, reset)
--          since, unix seconds       (locked_since)
-- ARGV[3]  the window, seconds       (record)
-- ARGV[4]  max_failures              (record, reset)
--
-- record and failures return {failures, seconds left}; reset {}; and
-- locked_since {now, pair, seconds left, pair, seconds left, ...}.

local now = tonumber(redis.call('TIME')[1])
local op = ARGV[1]

if op == 'record' then
  local window = tonumber(ARGV[3])
  local window_end = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
  local failures
  if window_end <= now then
    window_end = now + window
    failures = 1
    redis.call('HSET', KEYS[1], 'n', 1, 'e', window_end)
    redis.call('EXPIREAT', KEYS[1], window_end)
  else
    failures = redis.call('HINCRBY', KEYS[1], 'n', 1)
  end
  if failures == tonumber(ARGV[4]) then
    -- Locks whose windows have ended leave the index as new ones come; the
    -- index itself goes a window after the last lock.
    local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)
    if #ended > 0 then
      redis.call('ZREM', KEYS[2], unpack(ended))
      redis.call('HDEL', KEYS[3], unpack(ended))
    end
    redis.call('ZADD', KEYS[2], now, ARGV[2])
    redis.call('HSET', KEYS[3], ARGV[2], window_end)
    redis.call('EXPIRE', KEYS[2], window)
    redis.call('EXPIRE', KEYS[3], window)
  end
  return {failures, window_end - now}
end

if op == 'failures' then
  local count = redis.call('HMGET', KEYS[1], 'n', 'e')
  local window_end = tonumber(count[2] or '0')
  if window_end <= now then
    return {0, 0}
  end
  return {tonumber(count[1]), window_end - now}
end

if op == 'reset' then
  -- A lock stays: only failures short of it are forgotten.
  local count = redis.call('HMGET', KEYS[1], 'n', 'e')
  if tonumber(count[1] or '0') >= tonumber(ARGV[4]) and tonumber(count[2] or '0') > now then
    return {}
  end
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  return {}
end

if op == 'locked_since' then
  local out = {now}
  for _, pair in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')) do
    local window_end = tonumber(redis.call('HGET', KEYS[3], pair) or '0')
    if window_end > now then
      table.insert(out, pair)
      table.insert(out, window_end - now)
    end
  end
  return out
end

return redis.error_reply('failures.lua: unknown operation ' .. tostring(op))
