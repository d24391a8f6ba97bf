"""Outbound rate limits shared by every sender replica: token buckets and 429 pauses in Redis.

Telegram limits a bot to about 30 messages/s overall, about 1/s per private chat and 20/min per
group. Each scope is a token bucket; one Lua script checks every bucket a send needs and takes a
token from each only if all have one, so a send held back by its chat never spends a global token.
The clock is Redis's own ``TIME``, so replicas with skewed clocks still share one timeline.

A 429's ``retry_after`` pauses only its scope: :meth:`SendLimits.pause` sets a key that expires
when the pause ends, and every replica's next :meth:`SendLimits.acquire` in that scope waits for
it. Telegram's 429 does not say which limit was hit, so :meth:`SendLimits.report_flood` treats a
429 as the chat's, unless several distinct chats hit one within a short window: that is a global
flood, and the global scope is paused too.

Priorities: a low-priority send (a "typing" action) needs the global bucket at least half full and
takes no chat token, so it can never delay a reply; if it cannot go now it is dropped, not queued.

Note: the keys of one send are not in one Redis Cluster hash slot; this targets a single Redis (or
a primary with replicas), which is what the rest of tgstream uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tgstream.connectors.redis_batch import BatchedScript, RedisBatch

_ACQUIRE = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local n = #KEYS / 2
local wait = 0
local tokens = {}
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local pttl = redis.call('PTTL', KEYS[2 * i])
  if pttl > wait then wait = pttl end
  local rate = tonumber(ARGV[base + 1])
  if rate > 0 then
    local burst = tonumber(ARGV[base + 2])
    local need = tonumber(ARGV[base + 3])
    local state = redis.call('HMGET', KEYS[2 * i - 1], 't', 'ts')
    local t = tonumber(state[1])
    local ts = tonumber(state[2])
    if t == nil then t = burst; ts = now end
    t = math.min(burst, t + math.max(0, now - ts) * rate)
    tokens[i] = t
    if t < need then
      local until_ms = math.ceil((need - t) / rate)
      if until_ms > wait then wait = until_ms end
    end
  end
end
if wait > 0 then return wait end
for i = 1, n do
  if tokens[i] ~= nil then
    local base = 1 + (i - 1) * 4
    redis.call('HSET', KEYS[2 * i - 1], 't', tokens[i] - 1, 'ts', now)
    redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[base + 4])
  end
end
return 0
"""

_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return redis.call('PTTL', KEYS[1])
"""

_FLOOD = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""


class SendLimitsUnavailableError(Exception):
    """Redis could not be asked; the caller decides how to degrade."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One scope's limit: ``rate`` tokens per second, holding at most ``burst``."""

    scope: str
    rate_per_s: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.burst < 1:
            raise ValueError(f"bucket {self.scope}: rate must be >= 0 and burst >= 1")


@dataclass(frozen=True)
class SendLimitsConfig:
    global_per_s: float = 30.0
    per_chat_per_s: float = 1.0
    per_group_per_min: float = 20.0
    flood_chats: int = 3
    flood_window_s: float = 2.0


class SendLimits:
    """Acquire permission to send to a chat, and pause a scope after a 429."""

    def __init__(
        self, redis: Redis, config: SendLimitsConfig, *, namespace: str, batch: RedisBatch | None = None
    ) -> None:
        batch = batch or RedisBatch(redis)
        self._config = config
        self._ns = f"{namespace}:limits:"
        self._acquire = BatchedScript(batch, _ACQUIRE)
        self._pause = BatchedScript(batch, _PAUSE)
        self._flood = BatchedScript(batch, _FLOOD)
        self.global_bucket = Bucket("global", config.global_per_s, max(1.0, config.global_per_s))

    def chat_bucket(self, chat_id: int, chat_type: str) -> Bucket:
        if chat_type in ("group", "supergroup") or (chat_type != "private" and chat_id < 0):
            rate = self._config.per_group_per_min / 60.0
            return Bucket(f"group:{chat_id}", rate, max(1.0, self._config.per_group_per_min / 60.0))
        return Bucket(f"chat:{chat_id}", self._config.per_chat_per_s, max(1.0, self._config.per_chat_per_s))

    async def acquire(
        self, chat_id: int, chat_type: str, *, low_priority: bool = False, now_ms: int | None = None
    ) -> float:
        """Take the tokens for one send; returns 0.0 when taken, else seconds to wait before retrying.

        ``now_ms`` replaces Redis's clock, for tests of the bucket arithmetic.
        """
        chat = self.chat_bucket(chat_id, chat_type)
        scopes: list[tuple[Bucket, float]]
        if low_priority:
            reserve = max(1.0, self.global_bucket.burst / 2)
            scopes = [(self.global_bucket, reserve), (Bucket(chat.scope, 0.0, 1.0), 1.0)]
        else:
            scopes = [(self.global_bucket, 1.0), (chat, 1.0)]
        keys: list[str] = []
        args: list[float | int] = [now_ms if now_ms is not None else -1]
        for bucket, need in scopes:
            keys += [f"{self._ns}bucket:{bucket.scope}", f"{self._ns}pause:{bucket.scope}"]
            idle_ms = int(1000 * bucket.burst / bucket.rate_per_s) + 1000 if bucket.rate_per_s else 1000
            args += [bucket.rate_per_s / 1000.0, bucket.burst, need, idle_ms]
        try:
            wait_ms = await self._acquire(keys, args)
        except RedisError as exc:
            raise SendLimitsUnavailableError(str(exc)) from exc
        return int(wait_ms) / 1000.0

    async def pause(self, scope: str, seconds: float) -> None:
        """Hold every send in ``scope`` ("global", "chat:<id>", "group:<id>") for ``seconds``."""
        try:
            await self._pause([f"{self._ns}pause:{scope}"], [max(int(seconds * 1000), 1)])
        except RedisError as exc:
            raise SendLimitsUnavailableError(str(exc)) from exc

    async def report_flood(self, chat_id: int, chat_type: str, retry_after_s: float) -> str:
        """Pause the chat's scope after a 429, and the global one if many chats are flooding.

        Returns the widest scope paused, for metrics.
        """
        chat = self.chat_bucket(chat_id, chat_type)
        await self.pause(chat.scope, retry_after_s)
        window_ms = int(self._config.flood_window_s * 1000)
        try:
            distinct = await self._flood([f"{self._ns}recent429"], [str(chat_id), window_ms])
        except RedisError as exc:
            raise SendLimitsUnavailableError(str(exc)) from exc
        if int(distinct) >= self._config.flood_chats:
            await self.pause("global", retry_after_s)
            return "global"
        return chat.scope.partition(":")[0]


class InactiveChats:
    """Chats that blocked the bot (403), in one Redis set, for other processes to consult.

    The sender does not skip these chats by itself: a user who unblocks the bot and writes again
    must get an answer, and only the inbound side sees that happen.
    """

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self._redis = redis
        self.key = f"{namespace}:inactive_chats"

    async def add(self, chat_id: int) -> None:
        try:
            await self._redis.sadd(self.key, str(chat_id))
        except RedisError as exc:
            raise SendLimitsUnavailableError(str(exc)) from exc

    async def contains(self, chat_id: int) -> bool:
        try:
            return bool(await self._redis.sismember(self.key, str(chat_id)))
        except RedisError as exc:
            raise SendLimitsUnavailableError(str(exc)) from exc
