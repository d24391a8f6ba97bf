"""How the OpenAI stub misbehaves: latency distributions and injected failures, changeable at runtime.

The clock and the random generator are injected, so a seeded stub fails on exactly the same
requests every run and tests need no sleeps to check a "fail for 10 s" window.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LatencyDist = Literal["fixed", "lognormal"]
FailureStatus = Literal[429, 500, 503]
Z_99 = 2.3263478740408408
"""The standard normal's 99th percentile: a lognormal with median m has p99 = m * exp(sigma * Z_99)."""


class BehaviourConfig(BaseModel):
    """Everything a test can change through ``POST /control``; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=300.0, ge=0, description="Fixed latency, or the median for lognormal.")
    latency_dist: LatencyDist = "fixed"
    p99_ms: float | None = Field(
        default=None, gt=0, description="Lognormal 99th percentile; required for lognormal."
    )
    failure_rate: float = Field(default=0.0, ge=0, le=1, description="Share of chat calls that fail.")
    embeddings_failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure_status: FailureStatus = 500

    @model_validator(mode="after")
    def _lognormal_needs_tail(self) -> BehaviourConfig:
        if self.latency_dist == "lognormal":
            if self.p99_ms is None:
                raise ValueError("latency_dist=lognormal needs p99_ms")
            if self.p99_ms < self.latency_ms:
                raise ValueError("p99_ms must be at least latency_ms (the median)")
        return self


class ControlRequest(BaseModel):
    """A change to the behaviour: new settings, plus one-off failure scenarios."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(default=None, ge=0)
    latency_dist: LatencyDist | None = None
    p99_ms: float | None = Field(default=None, gt=0)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    embeddings_failure_rate: float | None = Field(default=None, ge=0, le=1)
    failure_status: FailureStatus | None = None
    fail_for_s: float | None = Field(
        default=None, ge=0, description="Fail every chat call for this many seconds."
    )
    fail_next: int | None = Field(default=None, ge=0, description="Fail exactly the next N chat calls.")
    seed: int | None = None
    reset: bool = Field(default=False, description="Back to the start-up settings before applying the rest.")


class StubBehaviour:
    """The stub's current latency and failure settings, with the one-off scenarios in progress."""

    def __init__(
        self,
        config: BehaviourConfig,
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = config
        self.config = config
        self._rng = random.Random(seed)
        self._clock = clock
        self._fail_until = 0.0
        self._fail_next = 0

    def apply(self, request: ControlRequest) -> None:
        """Change settings atomically: an invalid combination leaves the current ones untouched."""
        base = self._initial if request.reset else self.config
        changes = request.model_dump(exclude_none=True, exclude={"fail_for_s", "fail_next", "seed", "reset"})
        self.config = BehaviourConfig.model_validate({**base.model_dump(), **changes})
        if request.reset:
            self._fail_until = 0.0
            self._fail_next = 0
        if request.seed is not None:
            self._rng.seed(request.seed)
        if request.fail_for_s is not None:
            self._fail_until = self._clock() + request.fail_for_s
        if request.fail_next is not None:
            self._fail_next = request.fail_next

    def latency_s(self) -> float:
        cfg = self.config
        if cfg.latency_dist == "fixed" or cfg.latency_ms == 0 or cfg.p99_ms is None:
            return cfg.latency_ms / 1000
        sigma = math.log(cfg.p99_ms / cfg.latency_ms) / Z_99
        return cfg.latency_ms * math.exp(sigma * self._rng.gauss(0.0, 1.0)) / 1000

    def chat_failure(self) -> int | None:
        """The HTTP status this chat call must fail with, or None to answer normally."""
        if self._fail_next > 0:
            self._fail_next -= 1
            return self.config.failure_status
        if self._clock() < self._fail_until:
            return self.config.failure_status
        if self.config.failure_rate and self._rng.random() < self.config.failure_rate:
            return self.config.failure_status
        return None

    def embeddings_failure(self) -> int | None:
        rate = self.config.embeddings_failure_rate
        if rate and self._rng.random() < rate:
            return self.config.failure_status
        return None

    def describe(self) -> dict[str, object]:
        return {
            **self.config.model_dump(),
            "failing_for_s": max(0.0, round(self._fail_until - self._clock(), 3)),
            "fail_next": self._fail_next,
        }
