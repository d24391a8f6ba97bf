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
IDLE_FRAMES = ("select (selectors.py", "poll (selectors.py", "epoll", "wait (threading.py", "_worker (")


def parse_collapsed(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """Self time by leaf function and by the nearest package frame, from py-spy's raw output."""
    leaves: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        total += count
        leaves[leaf] += count
        packages[_package(frames)] += count
    return leaves, packages, total


def _package(frames: list[str]) -> str:
    """The innermost frame's package: ``tgstream.x`` modules by file, libraries by top-level name."""
    for frame in reversed(frames):
        if "site-packages/" in frame:
            return frame.split("site-packages/", 1)[1].split("/", 1)[0]
        if "/tgstream/" in frame:
            return "tgstream/" + frame.split("/tgstream/", 1)[1].split(".py", 1)[0]
    return frames[-1].split(" (", 1)[0]


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
        leaves, packages, total = parse_collapsed(raw)
        busy = sum(c for leaf, c in leaves.items() if not any(idle in leaf for idle in IDLE_FRAMES))
        table = Table(title=f"{name}: {total} samples, {100 * busy / max(total, 1):.0f} % not idle-waiting")
        table.add_column("self time by package / module")
        table.add_column("%", justify="right")
        table.add_column("self time by function")
        table.add_column("%", justify="right")
        top_packages = packages.most_common(args.top)
        top_leaves = leaves.most_common(args.top)
        for i in range(args.top):
            pkg = top_packages[i] if i < len(top_packages) else ("", 0)
            leaf = top_leaves[i] if i < len(top_leaves) else ("", 0)
            table.add_row(
                pkg[0],
                f"{100 * pkg[1] / total:.1f}" if pkg[1] else "",
                leaf[0][:90],
                f"{100 * leaf[1] / total:.1f}" if leaf[1] else "",
            )
        console.print(table)
    console.print(f"raw stacks in {args.out} (feed them to flamegraph.pl or speedscope)")


if __name__ == "__main__":
    main()
