"""Telegram edge commands: `fake-telegram`, `gateway`, `poller`, `sender` and `webhook set|delete|info`.

Each command only parses options and hands over to its process module, which is imported inside
the command so that ``tgstream --help`` does not pay for aiohttp, confluent-kafka or PTB.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from tgstream.cli.errors import CommandError, err_console, reported_errors, settings_or_exit

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
    import asyncio

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
                asyncio.run(serve(settings, options))
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
    import asyncio

    from tgstream.edges.poller_process import PollerOptions, serve
    from tgstream.observability.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    options = PollerOptions(
        ops_port=port if port is not None else settings.metrics_port,
        poll_timeout_s=poll_timeout,
        delete_webhook=delete_webhook,
    )
    with reported_errors():
        try:
            asyncio.run(serve(settings, options))
        except OSError as exc:
            raise CommandError(f"poller: {exc}") from exc


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("fake-telegram")(fake_telegram)
    app.command("gateway")(gateway)
    app.command("poller")(poller)
    app.add_typer(webhook_app, name="webhook")
    _ = err_console
