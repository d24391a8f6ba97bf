"""Memory per conversation: state bytes per chat, and dataflow RSS for 10,000 idle chats.

A fresh stack (stub LLM) is driven by ``--chats`` simulated users who each send ``/start`` and a
couple of messages at ``--rate`` msg/s, then go quiet. Measured afterwards:

* **Dataflow RSS**: resident memory of the dataflow process(es) before the first message and
  after every chat went idle (a few snapshots later); the difference divided by the chats.
* **Serialized keyed state**: the newest Bytewax recovery snapshot of every key, summed per step
  (``rate_spam_commands`` is keyed per chat; ``llm_turns`` per shard of chats), per chat. This
  is what a chat costs in the recovery store and what a restart reloads.
* **Redis mirror**: ``MEMORY USAGE`` of ``conversation:{chat_id}`` for a sample of the chats.

    .venv/bin/python benchmarks/conversation_memory.py --chats 10000 --rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis
from rich.console import Console

from tgstream.loadtest.driver import Driver, DriverConfig
from tgstream.loadtest.scenario import run_ids
from tgstream.loadtest.schedule import Phase, ThinkTime
from tgstream.loadtest.stack import Stack, StackOptions

PER_CHAT_STEPS = ("conversation.rate_spam_commands", "conversation.llm_turns")
"""Keyed by chat (gate) or by a shard of chats (turns); the source and Parquet state are per partition."""


def tree_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            total += sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            continue
    return total


def snapshot_bytes(recovery_dir: Path) -> dict[str, dict[str, int]]:
    """Per step: keys with live state in the newest snapshot, and their serialized bytes."""
    steps: dict[str, dict[str, int]] = {}
    for part in sorted(recovery_dir.glob("part-*.sqlite3")):
        with sqlite3.connect(part) as db:
            rows = db.execute(
                "SELECT step_id, length(ser_change) FROM snaps s WHERE snap_epoch = ("
                " SELECT max(snap_epoch) FROM snaps t"
                " WHERE t.step_id = s.step_id AND t.state_key = s.state_key)"
                " AND ser_change IS NOT NULL"
            ).fetchall()
        for step, size in rows:
            entry = steps.setdefault(step, {"keys": 0, "bytes": 0})
            entry["keys"] += 1
            entry["bytes"] += int(size)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--messages-per-chat", type=int, default=3, help="/start, then chat turns.")
    parser.add_argument("--settle", type=float, default=8.0, help="Seconds idle before measuring.")
    parser.add_argument("--out", type=Path, default=Path(".dev/benchmarks") / f"memory-{int(time.time())}")
    args = parser.parse_args()
    console = Console(width=160)
    duration = args.chats * args.messages_per_chat / args.rate
    run_id = f"mem-{int(time.time())}"
    with Stack(StackOptions(run_id=run_id)) as stack:
        dataflow = [p.popen.pid for p in stack.processes if p.name.startswith("dataflow")]
        time.sleep(3)
        rss_before = tree_rss(dataflow)
        ids = run_ids(time.time(), random.Random())
        config = DriverConfig(
            webhook_url=stack.webhook_url,
            secret=stack.settings.webhook_secret.get_secret_value(),
            telegram_url=stack.telegram_url,
            phases=(Phase("fill", args.rate, duration),),
            max_users=args.chats,
            think=ThinkTime(min_s=6.0, median_s=8.0, max_s=20.0),
            max_turns=max(2, round(args.messages_per_chat)),
        )
        console.print(f"driving {args.chats} chats at {args.rate:g} msg/s for {duration:.0f} s...")
        driver = Driver(config, ids=ids)
        asyncio.run(driver.run())
        time.sleep(args.settle)
        rss_after = tree_rss(dataflow)
        chats = driver.pool.joined
        client = redis.Redis.from_url(stack.settings.redis_url)
        sample = random.Random(1).sample(range(chats), min(200, chats))
        sizes = [client.memory_usage(f"conversation:{ids.chat_base + i}") or 0 for i in sample]
        mirrored = [s for s in sizes if s]
        state = snapshot_bytes(stack.run_dir / "recovery")
    per_chat_state = {step: v["bytes"] / chats for step, v in state.items() if step in PER_CHAT_STEPS}
    result: dict[str, Any] = {
        "chats": chats,
        "messages": driver.log.sent_count,
        "answered": driver.tracker.answered,
        "dataflow_rss_before_mb": rss_before / 2**20,
        "dataflow_rss_after_mb": rss_after / 2**20,
        "dataflow_rss_bytes_per_chat": (rss_after - rss_before) / chats,
        "snapshot_steps": state,
        "snapshot_bytes_per_chat": per_chat_state,
        "snapshot_bytes_per_chat_total": sum(per_chat_state.values()),
        "redis_mirror_bytes_per_chat": sum(mirrored) / len(mirrored) if mirrored else None,
        "redis_sampled": len(sample),
        "redis_present": len(mirrored),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    console.print_json(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
