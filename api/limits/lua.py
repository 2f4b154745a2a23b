"""The Lua scripts of the Redis limiter: one atomic round trip per admission or settlement.

Time comes from Redis (``TIME``), so replicas with skewed clocks still share one clock.
Rule arguments come in groups of four: kind, limit, cost (or delta), window in ms.
Buckets are hashes {t = tokens, ts = ms}; quotas are counters; leases are sorted sets of
request ids scored by their expiry, one member per choice (``id``, ``id#2`` .. ``id#cost``);
a lease's settlement argument is its cost, so that every member is released.
"""

from __future__ import annotations

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function bucket(key, limit, window)
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(state[1])
  if tokens == nil then return limit end
  local elapsed = math.max(0, now - tonumber(state[2]))
  return math.min(limit, tokens + elapsed * limit / window)
end
"""

# KEYS[1]: revocation marker; KEYS[2..]: one per rule. ARGV[1]: lease id.
# Returns {status (1 ok, 0 limited, -1 revoked), retry ms, blocked rule index,
#          remaining_1, reset_ms_1, remaining_2, reset_ms_2, ...}.
ADMIT = (
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0} end
local lease = ARGV[1]
local n = #KEYS - 1
local avail, ok, retry, blocked = {}, true, 0, 0
for i = 1, n do
  local key, a = KEYS[i + 1], 4 * (i - 1) + 2
  local kind, limit = ARGV[a], tonumber(ARGV[a + 1])
  local cost, window = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local wait = 0
  if kind == 'bucket' then
    avail[i] = bucket(key, limit, window)
    if cost > limit then wait = window
    elseif avail[i] < cost then wait = math.ceil((cost - avail[i]) * window / limit) end
  elseif kind == 'quota' then
    avail[i] = limit - tonumber(redis.call('GET', key) or '0')
    if avail[i] < cost then
      wait = redis.call('PTTL', key)
      if wait <= 0 then wait = window end
    end
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    avail[i] = limit - redis.call('ZCARD', key)
    if avail[i] < cost then wait = 1000 end
  end
  if wait > 0 then
    if ok then blocked = i end
    ok = false
    retry = math.max(retry, wait)
  end
end
local out = {ok and 1 or 0, retry, blocked}
for i = 1, n do
  local key, a = KEYS[i + 1], 4 * (i - 1) + 2
  local kind, limit = ARGV[a], tonumber(ARGV[a + 1])
  local cost, window = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local left = avail[i]
  if ok then left = left - cost end
  local reset = 0
  if ok and kind == 'bucket' then
    redis.call('HSET', key, 't', tostring(left), 'ts', now)
    redis.call('PEXPIRE', key, window + 1000)
  elseif ok and kind == 'quota' then
    redis.call('INCRBY', key, cost)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window) end
  elseif ok then
    redis.call('ZADD', key, now + window, lease)
    for j = 2, cost do redis.call('ZADD', key, now + window, lease .. '#' .. j) end
    redis.call('PEXPIRE', key, window)
  end
  if kind == 'bucket' then reset = math.ceil((limit - left) * window / limit)
  elseif kind == 'quota' then reset = math.max(redis.call('PTTL', key), 0) end
  out[#out + 1] = math.floor(math.max(left, 0))
  out[#out + 1] = reset
end
return out
"""
)

# Settles rules from KEYS[first] and ARGV[arg] on (groups of four), releasing lease ARGV[1].
_SETTLE_RULES = """
local function settle(first, arg)
  for i = first, #KEYS do
    local key, a = KEYS[i], 4 * (i - first) + arg
    local kind, limit = ARGV[a], tonumber(ARGV[a + 1])
    local delta, window = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    if kind == 'bucket' then
      local tokens = math.min(limit, bucket(key, limit, window) - delta)
      redis.call('HSET', key, 't', tostring(tokens), 'ts', now)
      redis.call('PEXPIRE', key, window + 1000)
    elseif kind == 'quota' then
      if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, delta) end
    else
      redis.call('ZREM', key, ARGV[1])
      for j = 2, delta do redis.call('ZREM', key, ARGV[1] .. '#' .. j) end
    end
  end
end
"""

# KEYS: one per rule. ARGV[1]: lease id; then kind, limit, delta, window per rule.
SETTLE = _PRELUDE + _SETTLE_RULES + "settle(1, 2)\nreturn 1\n"

# A crashed request's settlement, at most once per lease. KEYS[1]: the lease's release marker,
# then one per rule. ARGV[1]: lease id, ARGV[2]: the marker's lifetime in ms, then the rules.
# Returns 0 when the lease was released already.
SETTLE_ONCE = (
    _PRELUDE
    + _SETTLE_RULES
    + """
if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[2]) then return 0 end
settle(2, 3)
return 1
"""
)
