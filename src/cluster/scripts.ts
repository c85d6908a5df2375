/**
 * The fleet's Lua scripts. Each runs atomically in Redis, uses Redis's own clock (TIME), so the
 * instances' clocks never need to agree, and costs one round trip.
 */
import type { Script } from './link.js';

/** Lua: `now`, Redis's clock in ms. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * One instance's heartbeat, several times a second. Records the heartbeat and the instance's
 * info, replaces its demand hash (scope -> connections that want more than they get; only scopes
 * with demand), writes its open connections per customer with admission limits, and returns
 * what the instance needs to set its shares: the members with the age of their heartbeat, the
 * demand hashes of the other live members, and the version of the runtime changes.
 *
 * KEYS: members, info, runtime version, this instance's demand hash, m admission hashes
 * ARGV: instance, info JSON, memberTimeout ms, demand key prefix, n, n pairs (scope, count), m counts
 * Reply: { now ms, version, { instance, age ms, info JSON, ... }, { instance, { scope, count, ... }, ... },
 *          this instance's info as it was before this call, and the age of that heartbeat }
 * (the last two tell an instance that another process runs under the same id)
 *
 * One hash per instance, replaced whole, keeps the work in Redis to bulk commands (about 0.1 µs
 * a field) instead of a Lua loop per scope: an instance that stops reporting a scope, or dies,
 * stops counting by itself (only live members' hashes are read; a dead one's expires).
 */
export const TICK: Script = {
  name: 'tick',
  lua: `
${NOW}
local me = ARGV[1]
local ttl = tonumber(ARGV[3])
local prefix = ARGV[4]
local n = tonumber(ARGV[5])
local prevInfo = redis.call('HGET', KEYS[2], me) or ''
local prevBeat = tonumber(redis.call('HGET', KEYS[1], me) or '0')
redis.call('HSET', KEYS[1], me, now)
redis.call('HSET', KEYS[2], me, ARGV[2])
local members = {}
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local age = now - tonumber(all[i + 1])
  if age > 60000 then
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('HDEL', KEYS[2], all[i])
  else
    members[#members + 1] = all[i]
    members[#members + 1] = age
    members[#members + 1] = redis.call('HGET', KEYS[2], all[i]) or '{}'
    if age <= ttl and all[i] ~= me then live[#live + 1] = all[i] end
  end
end
redis.call('DEL', KEYS[4])
for i = 0, n - 1, 500 do
  local args = {}
  for j = i, math.min(i + 499, n - 1) do
    args[#args + 1] = ARGV[6 + 2 * j]
    args[#args + 1] = ARGV[7 + 2 * j]
  end
  redis.call('HSET', KEYS[4], unpack(args))
end
if n > 0 then redis.call('PEXPIRE', KEYS[4], ttl * 3) end
local others = {}
for i = 1, #live do
  others[#others + 1] = live[i]
  others[#others + 1] = redis.call('HGETALL', prefix .. live[i])
end
local base = 5 + 2 * n
for i = 1, #KEYS - 4 do
  local c = tonumber(ARGV[base + i])
  if c > 0 then
    redis.call('HSET', KEYS[4 + i], me, c)
    redis.call('PEXPIRE', KEYS[4 + i], 86400000)
  else
    redis.call('HDEL', KEYS[4 + i], me)
  end
end
return { now, redis.call('GET', KEYS[3]) or '0', members, others, prevInfo, now - prevBeat }
`,
};

/**
 * Admit one connection of a customer, fleet-wide: refused (0) when the live instances' open
 * connections reach maxConnections, refused (-1) when connectionRate's window is used up,
 * else counted (1). Counts of instances whose heartbeat is older than memberTimeout no longer
 * count (a dead instance's connections are gone with it); the caller's own always count.
 *
 * KEYS: members, admission hash, rate key
 * ARGV: instance, memberTimeout ms, maxConnections (-1: none), rate count (-1: none), rate window ms
 */
export const ADMIT: Script = {
  name: 'admit',
  lua: `
${NOW}
local me = ARGV[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
if max >= 0 then
  local total = 0
  local counts = redis.call('HGETALL', KEYS[2])
  for i = 1, #counts, 2 do
    local who = counts[i]
    local hb = redis.call('HGET', KEYS[1], who)
    if who == me or (hb and now - tonumber(hb) <= ttl) then total = total + tonumber(counts[i + 1]) end
  end
  if total >= max then return 0 end
end
local rate = tonumber(ARGV[4])
if rate >= 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= rate then return -1 end
  if redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
end
redis.call('HINCRBY', KEYS[2], me, 1)
redis.call('PEXPIRE', KEYS[2], 86400000)
return 1
`,
};

/** A connection admitted by ADMIT closed. KEYS: admission hash; ARGV: instance. */
export const RELEASE: Script = {
  name: 'release',
  lua: `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`,
};

/**
 * An admin API change, for the whole fleet: set (or delete) one runtime entry, bump the
 * version, and tell the others. KEYS: the entries' hash, version key; ARGV: field, JSON value
 * ("" deletes the entry), channel, instance. Reply: the new version.
 */
export const CHANGE: Script = {
  name: 'change',
  lua: `
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], v .. ' ' .. ARGV[4])
return v
`,
};
