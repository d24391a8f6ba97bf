"""Secrets never reach a log line, whichever way they are logged; ids are hashed by default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from tgstream.config import Settings, load_settings
from tgstream.dataflows.records import Records
from tgstream.observability.logging import configure_logging, correlated, get_logger
from tgstream.observability.redaction import REDACTED, is_secret_key, scrub_text, secret_values

TOKEN = "5551234:AAF-leaky_Bot_token_value_9"
WEBHOOK = "hook-secret-Zq8w"
API_KEY = "sk-proj-very-secret-key-123"
SALT = "salt-for-analytics-77"
PG_PASSWORD = "pg-p4ss-w0rd"
REDIS_PASSWORD = "r3dis-pass-xyz"


@pytest.fixture
def secret_settings() -> Settings:
    return load_settings(
        telegram_bot_token=TOKEN,
        webhook_secret=WEBHOOK,
        openai_api_key=API_KEY,
        analytics_salt=SALT,
        database_url=f"postgresql://app:{PG_PASSWORD}@db.internal:5432/tgstream",
        redis_url=f"redis://default:{REDIS_PASSWORD}@redis.internal:6379/0",
        log_format="json",
        log_level="DEBUG",
    )


@pytest.fixture
def captured(secret_settings: Settings) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging(secret_settings, stream=buffer)
    yield buffer
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tgstream_log_handler", False):
            root.removeHandler(handler)
    structlog.reset_defaults()


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


ALL_SECRETS = (TOKEN, TOKEN.partition(":")[2], WEBHOOK, API_KEY, SALT, PG_PASSWORD, REDIS_PASSWORD)


def test_no_secret_appears_in_any_log_line(secret_settings: Settings, captured: io.StringIO) -> None:
    log = get_logger("tests.secrets")
    bot_url = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    log.info("calling bot api", url=bot_url)
    log.info("settings dump", settings=secret_settings.model_dump())
    log.warning("headers", headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK, "Content-Type": "json"})
    log.info("nested", payload={"deep": [{"api_key": API_KEY}, f"salt is {SALT}"]})
    log.info("connecting", dsn=secret_settings.database_url, redis=secret_settings.redis_url)
    log.info("secret objects", key=secret_settings.openai_api_key, token=secret_settings.telegram_bot_token)
    log.info("positional %s and %s", bot_url, WEBHOOK)
    logging.getLogger("httpx").warning('HTTP Request: POST %s "HTTP/1.1 500"', bot_url)
    logging.getLogger("aiohttp.client").warning("secret in message %s", API_KEY)
    try:
        raise ConnectionError(f"could not reach postgresql://app:{PG_PASSWORD}@db.internal/x via {bot_url}")
    except ConnectionError:
        log.exception("database down")
        logging.getLogger("psycopg").exception("stdlib path too")

    output = captured.getvalue()
    lines = _lines(captured)
    assert len(lines) == 11
    for secret in ALL_SECRETS:
        assert secret not in output, f"secret {secret[:4]}… leaked"
    assert output.count(REDACTED) >= 11
    assert "/bot[REDACTED]/sendMessage" in output
    assert any(line["logger"] == "httpx" for line in lines)


def test_chat_and_user_ids_are_hashed_like_the_analytics(
    secret_settings: Settings, captured: io.StringIO
) -> None:
    chat_id, user_id = 731_842_990_115, 55_001
    get_logger("tests.ids").info("turn", chat_id=chat_id, user_id=str(user_id), user_ids=[user_id])

    (line,) = _lines(captured)
    expected = Records(secret_settings.analytics_salt)
    assert line["chat_id"] == expected.hash_id(chat_id)
    assert line["user_id"] == expected.hash_id(user_id)
    assert line["user_ids"] == [expected.hash_id(user_id)]
    assert str(chat_id) not in captured.getvalue()


def test_raw_ids_only_when_asked(secret_settings: Settings) -> None:
    buffer = io.StringIO()
    configure_logging(secret_settings, stream=buffer, hash_ids=False)
    try:
        get_logger("tests.raw").info("turn", chat_id=42)
    finally:
        structlog.reset_defaults()
    assert json.loads(buffer.getvalue())["chat_id"] == 42


def test_correlation_id_follows_context_and_is_dropped_after(captured: io.StringIO) -> None:
    log = get_logger("tests.correlation")
    with correlated([907, 905, 906], stage="turn") as cid:
        log.info("inside")
    log.info("outside")

    inside, outside = _lines(captured)
    assert cid == "upd-905"
    assert inside["correlation_id"] == "upd-905"
    assert inside["update_ids"] == [905, 906, 907]
    assert inside["stage"] == "turn"
    assert "correlation_id" not in outside


def test_level_filter_applies_to_structlog_and_stdlib(secret_settings: Settings) -> None:
    buffer = io.StringIO()
    configure_logging(secret_settings.model_copy(update={"log_level": "WARNING"}), stream=buffer)
    try:
        get_logger("tests.level").info("hidden")
        logging.getLogger("lib").info("hidden too")
        get_logger("tests.level").warning("shown")
    finally:
        structlog.reset_defaults()
    assert [line["event"] for line in _lines(buffer)] == ["shown"]


def test_console_format_renders_text_and_still_redacts(secret_settings: Settings) -> None:
    buffer = io.StringIO()
    configure_logging(secret_settings.model_copy(update={"log_format": "console"}), stream=buffer)
    try:
        get_logger("tests.console").info("hello", token=TOKEN, url=f"/bot{TOKEN}/getMe")
    finally:
        structlog.reset_defaults()
    text = buffer.getvalue()
    assert "hello" in text
    assert not text.lstrip().startswith("{")
    assert TOKEN not in text


def test_secret_values_cover_every_secretstr_field(secret_settings: Settings) -> None:
    values = set(secret_values(secret_settings))
    assert {TOKEN, TOKEN.partition(":")[2], WEBHOOK, API_KEY, SALT, PG_PASSWORD, REDIS_PASSWORD} <= values


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("telegram_bot_token", True),
        ("X-Telegram-Bot-Api-Secret-Token", True),
        ("OPENAI_API_KEY", True),
        ("apikey", True),
        ("Authorization", True),
        ("completion_tokens", False),
        ("idempotency_key", False),
        ("chat_id", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_scrub_text_handles_unknown_tokens_and_passwords() -> None:
    text = "GET https://x/bot42:unknown-token_1/getUpdates from mysql://u:p%40ss@h/db"
    assert scrub_text(text, ()) == f"GET https://x/bot{REDACTED}/getUpdates from mysql://u:{REDACTED}@h/db"


def test_per_request_lines_of_http_clients_are_left_out_at_info(secret_settings: Settings) -> None:
    buffer = io.StringIO()
    configure_logging(secret_settings.model_copy(update={"log_level": "INFO"}), stream=buffer)
    try:
        logging.getLogger("httpx2").info(
            'HTTP Request: POST http://llm/v1/chat/completions "HTTP/1.1 200 OK"'
        )
        logging.getLogger("httpx2").warning("the pool is exhausted")
        assert [line["event"] for line in _lines(buffer)] == ["the pool is exhausted"]
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_tgstream_log_handler", False):
                root.removeHandler(handler)
        structlog.reset_defaults()
