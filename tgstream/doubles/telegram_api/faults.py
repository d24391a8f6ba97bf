"""Injected failures: 429 floods (global or per chat), 403 blocked chats, and 5xx, by rate or scenario.

A rule fires on matching calls: by probability ("by rate"), on every Nth call, for a fixed number
of times, or for chosen chat ids ("by scenario"). A fired 429 opens a *flood window* the way
Telegram's does: until ``retry_after`` has passed, every call in that scope gets 429 with the
remaining wait. Calls made inside an open window are counted as violations, so a test can check
that a client really honours ``retry_after``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tgstream.doubles.telegram_api.protocol import ApiError

SEND_METHODS = frozenset({"sendmessage", "editmessagetext", "sendchataction"})
_SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
Scope = Literal["global", "chat"]


@dataclass(slots=True)
class FaultRule:
    error: int
    methods: frozenset[str] = SEND_METHODS
    chat_ids: frozenset[int] | None = None
    probability: float = 1.0
    every: int | None = None
    times: int | None = None
    retry_after: int = 1
    scope: Scope = "chat"
    description: str | None = None
    """Overrides the error text, e.g. "Bad Request: can't parse entities: ..." for a 400."""
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FaultRule:
        """Build a rule from the control API's JSON, rejecting what would silently never fire."""
        unknown = set(raw) - {
            "error",
            "methods",
            "chat_ids",
            "probability",
            "every",
            "times",
            "retry_after",
            "scope",
            "description",
        }
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        error = int(raw["error"])
        if error not in (400, 403, 429) and error not in _SERVER_ERRORS:
            raise ValueError(f"error must be 400, 403, 429 or one of {sorted(_SERVER_ERRORS)}, got {error}")
        scope = raw.get("scope", "chat")
        if scope not in ("global", "chat"):
            raise ValueError(f"scope must be 'global' or 'chat', got {scope!r}")
        probability = float(raw.get("probability", 1.0))
        if not 0 < probability <= 1:
            raise ValueError("probability must be in (0, 1]")
        methods = raw.get("methods")
        chat_ids = raw.get("chat_ids")
        return cls(
            error=error,
            methods=frozenset(m.lower() for m in methods) if methods else SEND_METHODS,
            chat_ids=frozenset(int(c) for c in chat_ids) if chat_ids is not None else None,
            probability=probability,
            every=int(raw["every"]) if raw.get("every") else None,
            times=int(raw["times"]) if raw.get("times") is not None else None,
            retry_after=max(1, int(raw.get("retry_after", 1))),
            scope=scope,
            description=str(raw["description"]) if raw.get("description") else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "methods": sorted(self.methods),
            "chat_ids": sorted(self.chat_ids) if self.chat_ids is not None else None,
            "probability": self.probability,
            "every": self.every,
            "times": self.times,
            "retry_after": self.retry_after,
            "scope": self.scope,
            "seen": self.seen,
            "fired": self.fired,
        }


@dataclass
class Faults:
    """The active rules and open flood windows; ``clock`` is monotonic seconds, injectable."""

    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    rules: list[FaultRule] = field(default_factory=list)
    global_until: float = 0.0
    chat_until: dict[int, float] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    violations: dict[str, int] = field(default_factory=lambda: {"global": 0, "chat": 0})

    def replace(self, rules: list[FaultRule], blocked: set[int]) -> None:
        self.rules = rules
        self.blocked = blocked

    def clear(self) -> None:
        self.rules = []
        self.blocked = set()
        self.global_until = 0.0
        self.chat_until.clear()
        self.violations = {"global": 0, "chat": 0}

    def check(self, method: str, chat_id: int | None) -> ApiError | None:
        """The error this call must get, or None; called once per call, before any effect."""
        if method not in SEND_METHODS and not any(method in rule.methods for rule in self.rules):
            return None
        now = self.clock()
        if now < self.global_until:
            self.violations["global"] += 1
            return _too_many(self.global_until - now)
        if chat_id is not None:
            until = self.chat_until.get(chat_id, 0.0)
            if now < until:
                self.violations["chat"] += 1
                return _too_many(until - now)
            if chat_id in self.blocked:
                return ApiError(403, "Forbidden: bot was blocked by the user")
        for rule in self.rules:
            error = self._apply(rule, method, chat_id, now)
            if error is not None:
                return error
        return None

    def _apply(self, rule: FaultRule, method: str, chat_id: int | None, now: float) -> ApiError | None:
        if method not in rule.methods or (rule.times is not None and rule.fired >= rule.times):
            return None
        if rule.chat_ids is not None and chat_id not in rule.chat_ids:
            return None
        rule.seen += 1
        if rule.every is not None and rule.seen % rule.every:
            return None
        if rule.probability < 1 and self.rng.random() >= rule.probability:
            return None
        rule.fired += 1
        if rule.error == 429:
            if rule.scope == "global" or chat_id is None:
                self.global_until = now + rule.retry_after
            else:
                self.chat_until[chat_id] = now + rule.retry_after
                if len(self.chat_until) > 100_000:
                    self.chat_until = {c: t for c, t in self.chat_until.items() if t > now}
            return _too_many(rule.retry_after)
        if rule.error == 403:
            return ApiError(403, rule.description or "Forbidden: bot was blocked by the user")
        if rule.error == 400:
            return ApiError(400, rule.description or "Bad Request: injected fault")
        return ApiError(rule.error, rule.description or _SERVER_ERRORS[rule.error])


def _too_many(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
