"""`tgstream adapt run|show`: the off-hot-path persona adaptation (and importance judgement) job.

``run`` loops every ``--interval`` seconds (``--once`` for one round, e.g. from cron), printing
one line per round, and serves ``/metrics`` and ``/healthz`` on ``--metrics-port``. SIGTERM or
Ctrl-C ends it after the current round.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated, Any

import typer
from rich.console import Console

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

adapt_app = typer.Typer(
    help="Persona adaptation from recent conversations (runs off the hot path).", no_args_is_help=True
)
console = Console()


def _round_line(outcome: Any) -> str:
    """One progress line per round (``outcome`` is a :class:`tgstream.jobs.rounds.RoundOutcome`)."""
    parts = [f"round {outcome.number}:"]
    report = outcome.adaptation
    if report is not None:
        model = ", ".join(f"{k} {v}" for k, v in sorted(report.model.items())) or "not asked"
        parts.append(
            f"{report.considered} active chats, [green]{report.adapted} adapted[/] (model: {model}), "
            f"{report.unchanged} unchanged, {report.too_short} too short, {report.seconds:.1f} s"
        )
    if outcome.judge is not None:
        judged = outcome.judge
        parts.append(
            f"; importance: {judged.judged} judged, {judged.unusable} unusable, {judged.failed} failed"
        )
    for error in outcome.errors:
        parts.append(f"[red]failed:[/] {error} (retrying next round)")
    return " ".join(parts)


@adapt_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Run one round and exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1, help="Seconds between rounds.")] = 300.0,
    ttl: Annotated[int, typer.Option("--ttl", min=60, help="Seconds an adaptation stays valid.")] = 1800,
    active_window: Annotated[
        float, typer.Option("--active-window", min=60, help="Adapt chats active this recently.")
    ] = 3600.0,
    max_chats: Annotated[
        int, typer.Option("--max-chats", min=1, help="Chats per round, most recent first.")
    ] = 200,
    min_exchanges: Annotated[
        int, typer.Option("--min-exchanges", min=1, help="Skip chats with fewer exchanges.")
    ] = 3,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Model calls at once.")] = 4,
    llm_url: Annotated[
        str | None, typer.Option("--llm-url", help="OpenAI-compatible base URL (default OPENAI_BASE_URL).")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Model-free adaptation only.")] = False,
    judge_importance: Annotated[
        bool, typer.Option("--judge-importance", help="Also let the model re-rate recent memories.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", help="Port for /metrics and /healthz (default METRICS_PORT; 0 = any)."
        ),
    ] = None,
) -> None:
    """Adapt the persona to each recently active chat, every --interval seconds."""
    from prometheus_client import REGISTRY

    from tgstream.connectors.llm import LlmClient
    from tgstream.connectors.postgres import DatabaseError, open_pool
    from tgstream.connectors.redis_client import async_redis
    from tgstream.jobs.adaptation import AdaptationConfig, AdaptationJob
    from tgstream.jobs.importance import ImportanceJudge
    from tgstream.jobs.rounds import run_rounds
    from tgstream.observability.probe_server import ProbeServer
    from tgstream.state.adaptations import AdaptationStore
    from tgstream.state.conversation_mirror import ConversationMirror
    from tgstream.state.memory_admin import MemoryAdmin
    from tgstream.state.memory_crypto import MemoryCodec
    from tgstream.state.personas import PersonaStore

    settings = settings_or_exit()
    with reported_errors():
        try:
            config = AdaptationConfig(active_window, max_chats, min_exchanges, concurrency)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    healthy = {"last_round_ok": True}

    async def main() -> None:
        client = async_redis(settings.redis_url, socket_timeout_s=5.0)
        llm = None
        if not no_llm:
            llm = LlmClient(
                base_url=llm_url or settings.openai_base_url,
                api_key=settings.openai_api_key,
                model=settings.llm_model,
                timeout_s=settings.llm_timeout_s,
                max_retries=1,
                max_tokens=256,
                temperature=0.2,
                max_connections=concurrency,
            )
        pool = None
        try:
            pool = await open_pool(settings.database_url, max_size=2)
        except DatabaseError as exc:
            if judge_importance:
                raise CommandError(f"--judge-importance needs Postgres: {exc}") from exc
            console.print(f"[yellow]note:[/] Postgres unavailable ({exc}); adapting without persona names")
        job = AdaptationJob(
            mirror=ConversationMirror(client, ttl_s=settings.conversation_ttl_s),
            store=AdaptationStore(client, ttl_s=ttl),
            llm=llm,
            personas=PersonaStore(pool) if pool is not None else None,
            config=config,
        )
        judge = None
        if judge_importance and pool is not None and llm is not None:
            key = settings.memory_encryption_key
            codec = MemoryCodec.from_setting(key.get_secret_value() if key else None)
            judge = ImportanceJudge(admin=MemoryAdmin(pool, codec=codec), llm=llm)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def report(outcome: Any) -> None:
            healthy["last_round_ok"] = outcome.ok
            console.print(_round_line(outcome), highlight=False)

        try:
            with console.status("adapting (one line per round; Ctrl-C to stop)..."):
                await run_rounds(job, judge, stop=stop, interval_s=interval, once=once, on_round=report)
        finally:
            await client.aclose()
            if llm is not None:
                await llm.aclose()
            if pool is not None:
                await pool.close()

    port = settings.metrics_port if metrics_port is None else metrics_port

    async def serve_and_run() -> None:
        try:
            ops = ProbeServer(
                host=settings.metrics_host, port=port, registry=REGISTRY, readiness=lambda: dict(healthy)
            ).start()
        except OSError as exc:
            raise CommandError(f"cannot serve metrics on {settings.metrics_host}:{port}: {exc}") from exc
        console.print(f"metrics and health on {ops.url}/metrics, /healthz, /readyz")
        try:
            await main()
        finally:
            await ops.aclose()

    with reported_errors():
        asyncio.run(serve_and_run())


@adapt_app.command("show")
def show(chat: Annotated[int, typer.Option("--chat", help="Telegram chat id.")]) -> None:
    """The chat's current adapted traits, their customizations layer and the TTL left."""
    from tgstream.connectors.redis_client import async_redis
    from tgstream.state.adaptations import AdaptationStore, AdaptationsUnavailable

    settings = settings_or_exit()

    async def main() -> tuple[Any, int]:
        client = async_redis(settings.redis_url, socket_timeout_s=5.0)
        try:
            store = AdaptationStore(client)
            return (await store.get_many([chat])).get(chat), await store.ttl(chat)
        finally:
            await client.aclose()

    with reported_errors():
        try:
            stored, ttl_left = asyncio.run(main())
        except AdaptationsUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if stored is None:
            raise CommandError(f"chat {chat} has no adaptation (none yet, or it expired)")
    console.print_json(
        json.dumps(
            {
                "traits": stored.traits.to_json(),
                "customizations": stored.traits.as_customizations(),
                "persona": stored.persona,
                "adapted_at": stored.adapted_at,
                "ttl_s": ttl_left,
            }
        )
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(adapt_app, name="adapt")
