"""`tgstream llm-stub`: the deterministic OpenAI-compatible stub server for tests and benchmarks."""

from __future__ import annotations

from typing import Annotated

import typer

from tgstream.cli.errors import CommandError, reported_errors


def llm_stub(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0 picks a free one).")] = 38081,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Fixed latency, or the median for lognormal.")
    ] = 300.0,
    latency_dist: Annotated[str, typer.Option(help="fixed or lognormal.")] = "fixed",
    p99_ms: Annotated[float | None, typer.Option(help="Lognormal 99th percentile latency.")] = None,
    failure_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of chat calls that fail.")] = 0.0,
    failure_status: Annotated[int, typer.Option(help="Status of injected failures: 429, 500 or 503.")] = 500,
    seed: Annotated[
        int | None, typer.Option(help="Seed for latencies and failures (repeatable runs).")
    ] = None,
    embedding_dim: Annotated[int, typer.Option(min=1, help="Length of embedding vectors.")] = 384,
) -> None:
    """Serve /v1/chat/completions, /v1/embeddings, /v1/models, /healthz, /metrics and /control."""
    from pydantic import ValidationError

    from tgstream.doubles import llm_stub as stub
    from tgstream.doubles.stub_behaviour import BehaviourConfig

    with reported_errors():
        try:
            config = BehaviourConfig.model_validate(
                {
                    "latency_ms": latency_ms,
                    "latency_dist": latency_dist,
                    "p99_ms": p99_ms,
                    "failure_rate": failure_rate,
                    "failure_status": failure_status,
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "options"
            raise CommandError(f"--{where.replace('_', '-')}: {first['msg']}") from exc
    stub.run(config, host=host, port=port, seed=seed, embedding_dim=embedding_dim)


def register(app: typer.Typer) -> None:
    app.command("llm-stub")(llm_stub)
