//! The Lua scripts [`RedisLimits`](super::RedisLimits) runs in Redis: a key's
//! token bucket shared fairly by the replicas, and the replicas' heartbeats.

/// The token bucket of one key, in Redis, shared fairly by the replicas drawing
/// from it. On Redis's own clock (`TIME`), so servers' clocks never matter.
///
/// The bucket (`tokens`, `at`) refills at `rate` bytes per second up to
/// `capacity`. Each replica that asked within the last two periods has a field
/// `r:{id}` = `"{weight} {seen} {allowance}"`: its fair share of the rate,
/// `rate × weight / Σ weights`, accrues as its allowance (at most one period of
/// it). A replica gets what it wants up to the bucket's tokens and the larger of
/// its allowance and the tokens no other replica's allowance reserves. So busy
/// replicas split the rate by weight whoever asks first, and a replica whose
/// streams want less leaves the rest to the others within a period or two.
///
/// A key's bucket starts with one period of the rate (a slice), not its
/// capacity, and a replica not drawing from the key yet (its first lease, or
/// the first after two idle periods) gets at most its share of a slice among
/// the live replicas (see [`HEARTBEAT`]): however many replicas start streams
/// under a new key at once, together they get one slice before the rate
/// applies.
///
/// Returns `{granted, wait, replicas}`, `wait` being the microseconds until this
/// replica could have `want` (or its share of a period, if less), `replicas`
/// the number of live replicas. An idle key expires once its bucket would be
/// full anyway.
pub(super) const TAKE: &str = r"
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local me = 'r:' .. ARGV[4]
local weight = tonumber(ARGV[5])
local period = tonumber(ARGV[6])
local replicas = heartbeat(KEYS[2], ARGV[4], tonumber(ARGV[7]), tonumber(ARGV[8]))
local fields = redis.call('HGETALL', KEYS[1])
local tokens, at, mine
local others = {}
local total = weight
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if field == 'tokens' then
    tokens = tonumber(value)
  elseif field == 'at' then
    at = tonumber(value)
  else
    local w, seen, allowance = string.match(value, '^(%d+) (%d+) ([%d.]+)$')
    w, seen, allowance = tonumber(w), tonumber(seen), tonumber(allowance)
    if w == nil or now - seen > 2 * period then
      redis.call('HDEL', KEYS[1], field)
    elseif field == me then
      mine = {seen, allowance}
    else
      total = total + w
      others[#others + 1] = {w, seen, allowance}
    end
  end
end
if tokens == nil or at == nil then
  tokens = math.min(capacity, rate * period / 1000000)
elseif now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate / 1000000)
end
local reserved = 0
for _, other in ipairs(others) do
  local share = rate * other[1] / total
  local accrued = other[3] + math.max(0, now - other[2]) * share / 1000000
  reserved = reserved + math.min(share * period / 1000000, accrued)
end
local share = rate * weight / total
local cap = math.max(1, share * period / 1000000)
local allowance = cap
if mine ~= nil then
  allowance = math.min(cap, mine[2] + math.max(0, now - mine[1]) * share / 1000000)
end
local available = math.min(tokens, math.max(allowance, tokens - reserved))
if mine == nil then
  available = math.min(available, math.max(1, rate * period / 1000000 / replicas))
end
local granted = math.max(0, math.min(want, math.floor(available)))
tokens = tokens - granted
allowance = math.max(0, allowance - granted)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.3f', tokens), 'at', string.format('%.0f', now),
  me, string.format('%d %.0f %.3f', weight, now, allowance))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(capacity * 1000 / rate, 2 * period / 1000)) + 1000)
local target = math.min(want, cap)
local wait = 0
if tokens < target then
  wait = (target - tokens) * 1000000 / rate
end
if math.max(allowance, tokens - reserved) < target then
  -- Its own share accrues at `share`; what nobody reserves, at up to `rate`.
  local by_share = (target - allowance) * 1000000 / share
  local by_free = (target - (tokens - reserved)) * 1000000 / rate
  wait = math.max(wait, math.min(by_share, by_free))
end
return {granted, math.ceil(wait), replicas}
";

/// The counter of one client's quota in the current window (`KEYS[1]` the
/// key without the window, `KEYS[2]` the heartbeats; `ARGV`: limit, period in
/// microseconds, want, debt, replica id, beat, alive). Windows are aligned to
/// the epoch on Redis's clock, so replicas agree whatever their clocks say: the
/// counter is `{KEYS[1]}:{window}` (a key made in the script: one Redis, not a
/// cluster), and expires a second after its window ends. The debt is added
/// first, whatever the limit; then up to `want` bytes while the counter stays
/// within the limit. Returns `{granted, used, until_end, replicas}`, `until_end`
/// in microseconds.
pub(super) const QUOTA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local debt = tonumber(ARGV[4])
local replicas = heartbeat(KEYS[2], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
local window = math.floor(now / period)
local key = KEYS[1] .. ':' .. string.format('%.0f', window)
local used = tonumber(redis.call('GET', key) or '0') + debt
local granted = math.max(0, math.min(want, limit - used))
used = used + granted
local until_end = (window + 1) * period - now
redis.call('SET', key, string.format('%.0f', used), 'PX', math.ceil(until_end / 1000) + 1000)
return {granted, used, until_end, replicas}
";

/// The replicas' heartbeats: a sorted set `{prefix}:replicas` of replica ids
/// scored by Redis's clock (`TIME`, in microseconds) at their last beat.
/// `heartbeat(fleet, id, beat, alive)` records a beat of `id` if `beat` is 1
/// (pruning replicas silent for longer than `alive` microseconds, and letting
/// the set expire with the last of them), and returns how many replicas beat
/// within `alive`, at least one. Both scripts start with it; it also defines
/// `now`.
pub(super) const HEARTBEAT: &str = r"
redis.replicate_commands()
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local function heartbeat(fleet, id, beat, alive)
  if beat == 1 then
    redis.call('ZADD', fleet, now, id)
    redis.call('ZREMRANGEBYSCORE', fleet, '-inf', '(' .. string.format('%.0f', now - alive))
    redis.call('PEXPIRE', fleet, math.ceil(alive / 1000))
  end
  return math.max(1, redis.call('ZCOUNT', fleet, string.format('%.0f', now - alive), '+inf'))
end
";

/// A heartbeat without a lease (`KEYS[1]` the set, `ARGV` id and `alive`):
/// returns the number of live replicas.
pub(super) const BEAT: &str = r"
return heartbeat(KEYS[1], ARGV[1], 1, tonumber(ARGV[2]))
";
