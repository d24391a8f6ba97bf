"""Rendering a run: the final rich tables, the JSON result file and the PNG plots.

Plots use matplotlib's Agg backend (selected before pyplot is imported) so they render on a
headless CI box; matplotlib is imported only when plotting, because it costs a second of start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Group
from rich.table import Table

from tgstream.loadtest.results import PhaseResult, RunResult

ROLE_ORDER = {"pipeline": 0, "model": 1, "double": 2, "generator": 3}


def _ms(values: Mapping[str, float] | None, key: str) -> str:
    if values is None:
        return "-"
    return f"{values[key]:,.0f}" if values[key] >= 100 else f"{values[key]:.1f}"


def phase_table(result: RunResult) -> Table:
    table = Table(title="Load test: end-to-end latency per phase (webhook POST → reply at Telegram)")
    for column in ("phase", "target/s", "sent", "skipped", "answered", "lost", "errors", "answered/s"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for column in ("p50 ms", "p95 ms", "p99 ms", "max ms", "added p50", "added p99", "pipeline CPU ms/msg"):
        table.add_column(column, justify="right")
    for phase in result.phases:
        table.add_row(
            phase.name,
            f"{phase.target_rate:g}",
            str(phase.sent),
            f"[yellow]{phase.skipped}[/]" if phase.skipped else "0",
            str(phase.answered),
            _alarm(phase.lost),
            _alarm(phase.errors + phase.rejected),
            f"{phase.answered_rate:.1f}",
            _ms(phase.latency_ms, "p50"),
            _ms(phase.latency_ms, "p95"),
            _ms(phase.latency_ms, "p99"),
            _ms(phase.latency_ms, "max"),
            _ms(phase.added_ms, "p50"),
            _ms(phase.added_ms, "p99"),
            _cpu_per_msg(phase),
        )
    return table


def _alarm(count: int) -> str:
    return f"[bold red]{count}[/]" if count else "0"


def _cpu_per_msg(phase: PhaseResult) -> str:
    if phase.cpu is None or phase.cpu.pipeline_ms_per_message is None:
        return "-"
    return f"{phase.cpu.pipeline_ms_per_message:.2f}"


def cpu_table(result: RunResult) -> Table | None:
    """CPU ms per answered message of every process group (rows) in each phase (columns)."""
    phases = [p for p in result.phases if p.cpu is not None]
    if not phases:
        return None
    roles: dict[str, str] = {}
    for phase in phases:
        if phase.cpu is not None:
            roles.update(phase.cpu.roles)
    table = Table(title="CPU ms per answered message, by process")
    table.add_column("process")
    table.add_column("role")
    for phase in phases:
        table.add_column(phase.name, justify="right")
    for name in sorted(roles, key=lambda n: (ROLE_ORDER.get(roles[n], 9), n)):
        cells = [_cpu_cell(p.cpu.ms_per_message.get(name) if p.cpu else None) for p in phases]
        table.add_row(name, roles[name], *cells)
    table.add_section()
    table.add_row(
        "pipeline total", "", *[_cpu_cell(p.cpu.pipeline_ms_per_message if p.cpu else None) for p in phases]
    )
    net = [p.cpu.pipeline_net_ms_per_message if p.cpu else None for p in phases]
    if any(v is not None for v in net):
        table.add_row("pipeline minus idle", "", *[_cpu_cell(v) for v in net])
    table.add_row("pipeline cores", "", *[f"{p.cpu.pipeline_cores:.2f}" if p.cpu else "-" for p in phases])
    per_core = [p.cpu.messages_per_pipeline_core_s if p.cpu else None for p in phases]
    table.add_row("msg/s per pipeline core", "", *[f"{v:,.0f}" if v else "-" for v in per_core])
    return table


def _cpu_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_group(result: RunResult) -> Group:
    parts: list[Any] = [phase_table(result)]
    cpu = cpu_table(result)
    if cpu is not None:
        parts.append(cpu)
    totals = result.totals
    verdict = "[bold green]zero loss[/]" if result.zero_loss else "[bold red]LOSS OR ERRORS[/]"
    parts.append(
        f"{verdict}: sent {totals['sent']}, accepted {totals['accepted']}, answered {totals['answered']}, "
        f"lost {totals['lost']}, extra replies {totals['extra']}, errors {totals['errors']}, "
        f"merged into bursts {totals['merged']}; arrivals skipped (every user busy) {totals['skipped']}"
    )
    return Group(*parts)


def _default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_json(result: RunResult, path: Path) -> Path:
    data = dataclasses.asdict(result)
    data["zero_loss"] = result.zero_loss
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=_default))
    return path


def _phase_spans(result: RunResult) -> list[tuple[str, float, float]]:
    spans, start = [], 0.0
    for phase in result.phases:
        spans.append((phase.name, start, start + phase.duration_s))
        start += phase.duration_s
    return spans


def write_plots(result: RunResult, out_dir: Path) -> list[Path]:
    """``latency.png`` (p50/p95/p99 over time, log scale) and ``throughput.png`` (sent vs answered/s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    rows: Sequence[Mapping[str, float | None]] = result.timeline
    t = [float(r["t"] or 0.0) for r in rows]
    written = []
    series = (
        ("latency.png", "end-to-end latency (ms, log scale)", ("p50_ms", "p95_ms", "p99_ms"), True),
        ("throughput.png", "messages per second", ("sent_rate", "answered_rate"), False),
    )
    for filename, ylabel, keys, log_scale in series:
        fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
        for key in keys:
            ys = [float(v) if (v := r[key]) is not None else float("nan") for r in rows]
            ax.plot(t, ys, label=key)
        spans = _phase_spans(result)
        for i, (name, start, end) in enumerate(spans):
            ax.axvspan(start, end, alpha=0.06 if i % 2 else 0.0, color="grey")
            ax.text(start, 1.01, name, transform=ax.get_xaxis_transform(), fontsize=8)
        if spans and t and t[-1] >= spans[-1][2]:
            ax.axvline(spans[-1][2], color="grey", linestyle=":")
            ax.text(spans[-1][2], 1.01, "drain", transform=ax.get_xaxis_transform(), fontsize=8)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
