"""Telegram edge commands: `fake-telegram`, `gateway`, `poller`, `sender` and `webhook set|delete|info`.

Each command only parses options and hands over to its process module, which is imported inside
the command so that ``tgstream --help`` does not pay for aiohttp, confluent-kafka or PTB.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Annotated, TypeVar
from urllib.parse import urlsplit

import typer

from tgstream.cli.errors import CommandError, reported_errors, settings_or_exit

if TYPE_CHECKING:
    import telegram

T = TypeVar("T")

webhook_app = typer.Typer(
    help="Register, remove or inspect the bot's webhook at TELEGRAM_API_URL.", no_args_is_help=True
)


def fake_telegram(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port; default: the port of TELEGRAM_API_URL.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    seed: Annotated[int | None, typer.Option(help="Seed for probabilistic faults (repeatable runs).")] = None,
    max_records: Annotated[
        int, typer.Option(min=1000, help="Sent messages kept for /control/sent.")
    ] = 200_000,
) -> None:
    """Serve a local Telegram Bot API for TELEGRAM_BOT_TOKEN, with /control, /healthz and /metrics."""
    from tgstream.doubles.telegram_api.serve import serve_forever

    settings = settings_or_exit()
    bind_port = port if port is not None else (urlsplit(settings.telegram_api_url).port or 80)
    with reported_errors():
        try:
            serve_forever(
                settings.telegram_bot_token.get_secret_value(),
                host=host,
                port=bind_port,
                seed=seed,
                max_records=max_records,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{bind_port}: {exc.strerror or exc}") from exc


def gateway(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port; default GATEWAY_PORT.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind; default GATEWAY_HOST.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    delivery_timeout: Annotated[
        float, typer.Option(min=0.5, max=60, help="Seconds to wait for a Kafka ack before answering 503.")
    ] = 5.0,
) -> None:
    """Receive Telegram's webhook on POST /webhook and write each update to Kafka before answering 200."""
    from tgstream.connectors import event_loops
    from tgstream.edges.gateway.server import GatewayOptions, run_workers, serve
    from tgstream.observability.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    options = GatewayOptions(
        host=host or settings.gateway_host,
        port=port if port is not None else settings.gateway_port,
        delivery_timeout_s=delivery_timeout,
    )
    with reported_errors():
        try:
            if workers == 1:
                event_loops.run(serve(settings, options))
                return
            code = run_workers({}, options, workers)
        except (OSError, ValueError) as exc:
            raise CommandError(f"gateway on {options.host}:{options.port}: {exc}") from exc
    if code:
        raise typer.Exit(code)


def poller(
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Ops port (/healthz, /metrics); default METRICS_PORT."),
    ] = None,
    poll_timeout: Annotated[int, typer.Option(min=0, max=50, help="getUpdates long-poll seconds.")] = 25,
    delete_webhook: Annotated[
        bool, typer.Option(help="Remove a registered webhook first (getUpdates refuses while one is set).")
    ] = False,
) -> None:
    """Long-poll getUpdates into Kafka, for bots without a public HTTPS webhook."""
    from tgstream.connectors import event_loops
    from tgstream.edges.poller_process import PollerOptions, serve
    from tgstream.observability.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    options = PollerOptions(
        ops_host=settings.metrics_host,
        ops_port=port if port is not None else settings.metrics_port,
        poll_timeout_s=poll_timeout,
        delete_webhook=delete_webhook,
    )
    with reported_errors(), _telegram_errors():
        try:
            event_loops.run(serve(settings, options))
        except OSError as exc:
            raise CommandError(f"poller: {exc}") from exc


def sender(
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Ops port (/healthz, /metrics); default METRICS_PORT."),
    ] = None,
    group_id: Annotated[str, typer.Option(help="Kafka consumer group shared by all sender replicas.")] = (
        "tgstream-sender"
    ),
    concurrency: Annotated[int, typer.Option(min=1, max=4096, help="Chats being sent to at once.")] = 256,
    max_pending: Annotated[
        int, typer.Option(min=10, help="Uncommitted records before reading pauses (backpressure).")
    ] = 2000,
) -> None:
    """Deliver replies from TOPIC_RESPONSES to Telegram in per-chat order within shared rate limits."""
    from tgstream.connectors import event_loops
    from tgstream.edges.sender.process import SenderOptions, serve
    from tgstream.edges.sender.service import LoopOptions
    from tgstream.observability.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    options = SenderOptions(
        group_id=group_id,
        ops_host=settings.metrics_host,
        ops_port=port if port is not None else settings.metrics_port,
        loop=LoopOptions(max_concurrency=concurrency, max_pending=max_pending),
    )
    with reported_errors(), _telegram_errors():
        event_loops.run(serve(settings, options))


@contextlib.contextmanager
def _telegram_errors() -> Iterator[None]:
    """Turn the Bot API failures an operator can fix into one clear line."""
    from telegram.error import InvalidToken, NetworkError, TelegramError

    try:
        yield
    except InvalidToken as exc:
        raise CommandError("TELEGRAM_BOT_TOKEN was rejected by TELEGRAM_API_URL (401)") from exc
    except NetworkError as exc:
        raise CommandError(f"cannot reach the Bot API at TELEGRAM_API_URL: {exc.message}") from exc
    except TelegramError as exc:
        raise CommandError(f"Bot API error: {exc.message}") from exc


def _run_bot_call(call: Callable[[telegram.Bot], Awaitable[T]]) -> T:
    from tgstream.connectors import event_loops
    from tgstream.connectors.telegram_bot import make_bot

    settings = settings_or_exit()

    async def run() -> T:
        async with make_bot(settings, pool_size=1) as bot:
            return await call(bot)

    with reported_errors(), _telegram_errors():
        return event_loops.run(run())
    raise AssertionError("unreachable")  # pragma: no cover


@webhook_app.command("set")
def webhook_set(
    url: Annotated[
        str | None, typer.Option(help="Public HTTPS URL of the gateway; default WEBHOOK_URL.")
    ] = None,
    max_connections: Annotated[
        int, typer.Option(min=1, max=100, help="Parallel deliveries Telegram may use.")
    ] = 40,
    drop_pending: Annotated[bool, typer.Option(help="Discard updates Telegram is still holding.")] = False,
) -> None:
    """Register the webhook with WEBHOOK_SECRET as its secret token (via python-telegram-bot)."""
    from tgstream.edges.poller import ALLOWED_UPDATES

    settings = settings_or_exit()
    target = url or settings.webhook_url
    _run_bot_call(
        lambda bot: bot.set_webhook(
            target,
            secret_token=settings.webhook_secret.get_secret_value(),
            max_connections=max_connections,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=drop_pending,
        )
    )
    typer.echo(f"webhook set to {target} (secret token from WEBHOOK_SECRET)")


@webhook_app.command("delete")
def webhook_delete(
    drop_pending: Annotated[bool, typer.Option(help="Discard updates Telegram is still holding.")] = False,
) -> None:
    """Remove the webhook (needed before `tgstream poller` can use getUpdates)."""
    _run_bot_call(lambda bot: bot.delete_webhook(drop_pending_updates=drop_pending))
    typer.echo("webhook deleted")


@webhook_app.command("info")
def webhook_info() -> None:
    """Show where Telegram delivers updates, how many wait, and the last delivery error."""
    info = _run_bot_call(lambda bot: bot.get_webhook_info())
    typer.echo(f"url:             {info.url or '(none: getUpdates mode)'}")
    typer.echo(f"pending updates: {info.pending_update_count}")
    typer.echo(f"max connections: {info.max_connections or '-'}")
    if info.last_error_message:
        typer.echo(f"last error:      {info.last_error_message} at {info.last_error_date}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("fake-telegram")(fake_telegram)
    app.command("gateway")(gateway)
    app.command("poller")(poller)
    app.command("sender")(sender)
    app.add_typer(webhook_app, name="webhook")
