"""What every dev service looks like to the stack: where it listens, how to start it, how to tell it is up.

A service module only says *what* to run and how to recognise it; the stack (`stack.py`) owns the
lifecycle — idempotence, port conflicts, waiting, and error reporting — so each service stays small.
"""

from __future__ import annotations

import abc
import ipaddress
import json
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from tgstream.config import Settings
from tgstream.devstack.paths import DevPaths
from tgstream.devstack.supervisor import RunAs


class DevStackError(Exception):
    """A dev service could not be installed, started, or checked; the message says what to do."""


class InstallError(DevStackError):
    """Something a service needs is not installed."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def endpoint_from_url(url: str, default_port: int) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(parts.hostname or "127.0.0.1", parts.port or default_port)


def endpoint_from_bootstrap(servers: str) -> Endpoint:
    """The first broker of a ``host:port[,host:port]`` list; dev runs a single broker."""
    host, _, port = servers.split(",")[0].strip().rpartition(":")
    return Endpoint(host.strip("[]"), int(port))


def http_get_json(url: str, *, timeout_s: float = 2.0) -> object | None:
    """GET a JSON document, or None on any failure: probes must answer yes or no, never raise."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback URLs we built
            if response.status != 200:
                return None
            document: object = json.loads(response.read())
            return document
    except (OSError, urllib.error.URLError, ValueError):
        return None


@dataclass(frozen=True)
class Launch:
    """How to run a service's process."""

    command: tuple[str, ...]
    env: dict[str, str] | None = None
    run_as: RunAs | None = None


class Service(abc.ABC):
    """One dev service. Subclasses are small: a command line, a health probe and optional set-up steps."""

    name: str
    setting: str
    """The env var that says where this service lives, named in errors."""
    start_timeout_s: float = 30.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 20.0

    def __init__(self, settings: Settings, paths: DevPaths) -> None:
        self.settings = settings
        self.paths = paths

    @property
    @abc.abstractmethod
    def endpoint(self) -> Endpoint:
        """Where the configured URL says this service listens."""

    @property
    def extra_ports(self) -> tuple[int, ...]:
        """Other loopback ports the service binds (e.g. Kafka's controller listener)."""
        return ()

    @property
    def display_address(self) -> str:
        return str(self.endpoint)

    @abc.abstractmethod
    def check_installed(self) -> None:
        """Raise InstallError naming what is missing and how to install it."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, most services need no set-up
        """One-time set-up before the first start (data dirs, initdb, storage format); idempotent."""

    @abc.abstractmethod
    def launch(self) -> Launch:
        """The process to run in the foreground; the supervisor detaches it."""

    @abc.abstractmethod
    def probe(self) -> bool:
        """True when the thing listening on ``endpoint`` answers as this kind of service. Never raises."""

    def after_start(self) -> None:  # noqa: B027 - optional hook
        """Work that needs the running service (create the database...); idempotent."""
