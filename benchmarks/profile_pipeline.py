"""A CPU profile of the hot path: which functions each pipeline process spends its time in, under load.

Starts a stack (stub LLM), drives it at ``--rate`` msg/s, and while it runs samples the gateway,
dataflow and sender with py-spy (``py-spy record --format raw``, all threads, native frames off)
for ``--seconds``. Prints, per process, the share of samples by *self* function (the frame that
was running) and by *package* (the first tgstream/library module on the stack below the leaf),
and writes the raw collapsed stacks next to a flame graph input for each process.

    (py-spy comes with the dev extras: pip install -e ".[dev]")
    .venv/bin/python benchmarks/profile_pipeline.py --rate 80 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tgstream.loadtest.driver import Driver, DriverConfig
from tgstream.loadtest.scenario import run_ids
from tgstream.loadtest.schedule import Phase
from tgstream.loadtest.stack import Stack, StackOptions

PROCESSES = ("gateway", "dataflow", "sender")
IDLE_FRAMES = (
    "select (selectors.py",
    "poll (selectors.py",
    "wait (threading.py",
    "_worker (",
    "get (queue.py",
)


def frame_package(frame: str) -> str:
    """``send_message (telegram/_bot.py:123)`` -> ``telegram``; tgstream frames keep two levels.

    >>> frame_package("SenderLoop.run (tgstream/edges/sender/service.py:123)")
    'tgstream/edges'
    >>> frame_package("EpollSelector.select (selectors.py:468)")
    'selectors'
    """
    path = frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if parts[0] == "tgstream" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def parse_collapsed(path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int, int]:
    """Self samples by function and by package, inclusive samples by package, busy and total counts.

    *Busy* leaves out samples whose running frame is an idle wait (selector, condition, queue).
    """
    leaves: Counter[str] = Counter()
    self_packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = busy = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        if any(idle in leaf for idle in IDLE_FRAMES):
            continue
        busy += count
        leaves[leaf] += count
        self_packages[frame_package(leaf)] += count
        for package in {frame_package(frame) for frame in frames}:
            inclusive[package] += count
    return leaves, self_packages, inclusive, busy, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=80.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(".dev/benchmarks") / f"profile-{int(time.time())}")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(".venv/bin/py-spy"))
    console = Console(width=160)
    args.out.mkdir(parents=True, exist_ok=True)
    with Stack(StackOptions(run_id=f"profile-{int(time.time())}")) as stack:
        config = DriverConfig(
            webhook_url=stack.webhook_url,
            secret=stack.settings.webhook_secret.get_secret_value(),
            telegram_url=stack.telegram_url,
            phases=(Phase("warm", args.rate, 8.0), Phase("profile", args.rate, args.seconds + 4)),
            max_users=int(args.rate * 40),
        )
        driver = Driver(config, ids=run_ids(time.time(), random.Random()))
        recorders: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

        def start_profilers() -> None:
            time.sleep(10.0)
            for proc in stack.processes:
                if proc.name in PROCESSES:
                    raw = args.out / f"{proc.name}.txt"
                    command = [
                        py_spy, "record", "--pid", str(proc.popen.pid), "--duration", str(int(args.seconds)),
                        "--rate", "200", "--format", "raw", "--threads", "--nonblocking", "-o", str(raw),
                    ]  # fmt: skip
                    recorders.append(
                        (
                            proc.name,
                            raw,
                            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                        )
                    )

        starter = threading.Thread(target=start_profilers)
        starter.start()
        asyncio.run(driver.run())
        starter.join()
        for _, _, recorder in recorders:
            recorder.wait(timeout=args.seconds + 60)
    for name, raw, recorder in recorders:
        if not raw.exists():
            error = (recorder.stderr.read() if recorder.stderr else b"").decode()[:300]
            console.print(f"[red]{name}: py-spy wrote nothing[/] ({error})")
            continue
        leaves, self_packages, inclusive, busy, total = parse_collapsed(raw)
        table = Table(
            title=f"{name}: {total} samples, {100 * busy / max(total, 1):.0f} % busy (shares of busy samples)"
        )
        for column in ("package: self %", "package: on stack %", "function: self %"):
            table.add_column(column)
        rows = [
            self_packages.most_common(args.top),
            inclusive.most_common(args.top),
            leaves.most_common(args.top),
        ]
        for i in range(args.top):
            cells = []
            for ranking in rows:
                if i < len(ranking):
                    label, count = ranking[i]
                    cells.append(f"{100 * count / max(busy, 1):5.1f}  {label[:70]}")
                else:
                    cells.append("")
            table.add_row(*cells)
        console.print(table)
    console.print(f"raw stacks in {args.out} (feed them to flamegraph.pl or speedscope)")


if __name__ == "__main__":
    main()
