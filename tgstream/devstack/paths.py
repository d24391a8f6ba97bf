"""Where the dev stack keeps its state: one gitignored directory, one file per service and purpose.

Keeping every path in one place means `dev down`, `dev logs` and the services themselves can
never disagree about where a pid file or a log lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DevPaths:
    """The layout under ``.dev/``: ``run/`` pid files, ``logs/``, ``data/<svc>/`` and ``cache/``."""

    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def lock_file(self) -> Path:
        return self.run / "dev.lock"

    @property
    def wanted_file(self) -> Path:
        return self.run / "wanted.json"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def data(self, service: str) -> Path:
        return self.root / "data" / service

    def ensure(self) -> None:
        for directory in (self.run, self.logs, self.cache, self.root / "data"):
            directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def at(cls, root: Path) -> DevPaths:
        """Anchor at an absolute path, because services outlive the cwd of the command that started them."""
        return cls(root.expanduser().resolve())
