"""Conversation state in Redis as portable JSON lines, and back.

JSON lines rather than DUMP/RESTORE payloads: DUMP's format is tied to the Redis version, while
a line per key (type, remaining TTL, value) restores into any Redis and can be read by a person.
Keys are found with SCAN, never KEYS, so a backup does not stall a busy server.

Values are bytes in Redis; each is stored as a string when it is UTF-8 and as ``{"b64": ...}``
otherwise, so nothing is lost whatever a writer put there.

Not a snapshot: keys are read in batches while the dataflow keeps writing. That is fine for
this state, which the dataflow re-mirrors from its own recoverable state on the next turn.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

DEFAULT_PATTERNS = ("conversation:*", "active_conversations")
_BATCH = 500

Encoded = str | dict[str, str]


class RedisExportError(Exception):
    """Redis was unreachable or refused a command during export or import."""


@dataclass
class ExportStats:
    keys: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def encode(raw: bytes) -> Encoded:
    """UTF-8 text as itself, anything else as base64.

    >>> encode(b"hi"), encode(b"\\xff")
    ('hi', {'b64': '/w=='})
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def decode(value: Encoded) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return base64.b64decode(value["b64"])


def connect(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url, decode_responses=False, socket_timeout=30, socket_connect_timeout=5
    )


def matching_keys(client: redis.Redis, patterns: Iterable[str]) -> Iterator[bytes]:
    """Every key matching any pattern, once; a pattern without wildcards is looked up directly."""
    seen: set[bytes] = set()
    for pattern in patterns:
        keys: Iterable[bytes]
        if any(ch in pattern for ch in "*?["):
            keys = client.scan_iter(match=pattern, count=1000)
        else:
            keys = [pattern.encode()] if client.exists(pattern) else []
        for key in keys:
            if key not in seen:
                seen.add(key)
                yield key


def export_keys(
    client: redis.Redis,
    patterns: Iterable[str],
    out: Path,
    *,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> ExportStats:
    """Write one JSON line per key; keys that expire between SCAN and read are skipped."""
    stats = ExportStats()
    try:
        with out.open("wb") as handle:
            for batch in _batched(matching_keys(client, patterns), _BATCH):
                for record in _read_batch(client, batch):
                    handle.write(orjson.dumps(record) + b"\n")
                    stats.keys += 1
                    stats.by_type[record["type"]] += 1
                on_progress(stats.keys)
    except redis.RedisError as exc:
        raise RedisExportError(f"Redis export failed: {exc}") from exc
    return stats


def _read_batch(client: redis.Redis, keys: list[bytes]) -> Iterator[dict[str, Any]]:
    meta = client.pipeline(transaction=False)
    for key in keys:
        meta.type(key)
        meta.pttl(key)
    answers = meta.execute()
    typed = [(key, answers[2 * i].decode(), answers[2 * i + 1]) for i, key in enumerate(keys)]
    reads = client.pipeline(transaction=False)
    readers = {
        "hash": reads.hgetall,
        "zset": lambda k: reads.zrange(k, 0, -1, withscores=True),
        "string": reads.get,
        "list": lambda k: reads.lrange(k, 0, -1),
        "set": reads.smembers,
    }
    wanted = [(key, kind, ttl) for key, kind, ttl in typed if kind in readers]
    for key, kind, _ttl in wanted:
        readers[kind](key)
    for (key, kind, ttl), value in zip(wanted, reads.execute(), strict=True):
        if value is None or (kind != "string" and not value):
            continue
        yield {
            "key": encode(key),
            "type": kind,
            "ttl_ms": ttl if ttl > 0 else None,
            "value": _encode_value(kind, value),
        }


def _encode_value(kind: str, value: Any) -> Any:
    if kind == "hash":
        return [[encode(f), encode(v)] for f, v in sorted(value.items())]
    if kind == "zset":
        return [[encode(member), score] for member, score in value]
    if kind == "string":
        return encode(value)
    if kind == "set":
        return [encode(m) for m in sorted(value)]
    return [encode(item) for item in value]


def import_keys(
    client: redis.Redis,
    source: Path,
    *,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> list[bytes]:
    """Recreate every exported key exactly (replacing what is there) with its TTL; returns the keys."""
    restored: list[bytes] = []
    try:
        with source.open("rb") as handle:
            records = (orjson.loads(line) for line in handle if line.strip())
            for batch in _batched(records, _BATCH):
                pipe = client.pipeline(transaction=False)
                for record in batch:
                    key = decode(record["key"])
                    pipe.delete(key)
                    _write(pipe, key, record["type"], record["value"])
                    if record["ttl_ms"]:
                        pipe.pexpire(key, int(record["ttl_ms"]))
                    restored.append(key)
                pipe.execute()
                on_progress(len(restored))
    except redis.RedisError as exc:
        raise RedisExportError(f"Redis import failed after {len(restored)} keys: {exc}") from exc
    return restored


def _write(pipe: Any, key: bytes, kind: str, value: Any) -> None:
    if kind == "hash":
        pipe.hset(key, mapping={decode(f): decode(v) for f, v in value})
    elif kind == "zset":
        pipe.zadd(key, {decode(member): float(score) for member, score in value})
    elif kind == "string":
        pipe.set(key, decode(value))
    elif kind == "list":
        pipe.rpush(key, *[decode(item) for item in value])
    elif kind == "set":
        pipe.sadd(key, *[decode(item) for item in value])
    else:
        raise RedisExportError(f"unsupported Redis type {kind!r} in the export")


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
