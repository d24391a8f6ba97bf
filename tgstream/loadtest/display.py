"""The live progress view of a running load test (rich), refreshed a few times a second.

:func:`render` is a pure function of a :class:`Snapshot`, so what the operator sees is tested
without a terminal; :class:`LiveDisplay` only owns the ``rich.live.Live`` lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from tgstream.loadtest.stats import Summary


@dataclass(frozen=True)
class Snapshot:
    phase: str
    phase_index: int
    phases: int
    target_rate: float
    phase_elapsed_s: float
    phase_duration_s: float
    sent: int
    answered: int
    in_flight: int
    errors: int
    users_active: int
    recent: Summary | None
    sent_rate: float
    answered_rate: float
    draining: bool = False


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f} ms"


def render(snap: Snapshot) -> RenderableType:
    title = (
        f"draining: waiting for the last replies ({snap.in_flight} in flight)"
        if snap.draining
        else f"phase {snap.phase_index + 1}/{snap.phases} [bold]{snap.phase}[/] "
        f"at {snap.target_rate:g} msg/s — {snap.phase_elapsed_s:.0f}/{snap.phase_duration_s:.0f} s"
    )
    table = Table.grid(padding=(0, 3))
    for _ in range(6):
        table.add_column(justify="right")
    recent = snap.recent
    table.add_row(
        "sent", f"{snap.sent:,}", "answered", f"{snap.answered:,}", "in flight", f"{snap.in_flight:,}"
    )
    table.add_row(
        "sent/s", f"{snap.sent_rate:,.1f}", "answered/s", f"{snap.answered_rate:,.1f}", "users",
        f"{snap.users_active:,}",
    )  # fmt: skip
    table.add_row(
        "p50 (5 s)", _ms(recent.p50 if recent else None), "p99 (5 s)", _ms(recent.p99 if recent else None),
        "errors", f"[red]{snap.errors}[/]" if snap.errors else "0",
    )  # fmt: skip
    done = snap.phase_elapsed_s if not snap.draining else snap.phase_duration_s
    bar = ProgressBar(total=max(snap.phase_duration_s, 1e-9), completed=min(done, snap.phase_duration_s))
    return Group(title, bar, table)


class LiveDisplay:
    """A ``rich.live.Live`` around :func:`render`; disabled (no output) when ``enabled`` is false."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self._enabled = enabled
        self._live = Live(console=console, refresh_per_second=4, transient=False) if enabled else None

    def __enter__(self) -> LiveDisplay:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def update(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(render(snap))
