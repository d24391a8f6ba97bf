"""Process configuration, read once at start-up from env vars and `.env`.

Every setting is a plain upper-case env var (``KAFKA_BOOTSTRAP_SERVERS``...). A wrong or
missing value stops the process before it touches any service, with one line that names
the variable, because a half-configured bot that starts and then fails on its first
message is much harder to diagnose than one that refuses to start.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbeddingsBackend = Literal["local", "openai"]
LogFormat = Literal["json", "console"]


class ConfigError(Exception):
    """A setting is wrong or missing; the message names the env var."""


class Settings(BaseSettings):
    """All of tgstream's settings; frozen so no component can drift from what was validated."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    kafka_bootstrap_servers: str = "127.0.0.1:39092"
    topic_messages: str = "telegram_messages"
    topic_responses: str = "telegram_responses"
    topic_events: str = "conversation_events"
    topic_dead_letter: str = "tgstream_dead_letter"
    topic_chat_actions: str = "telegram_chat_actions"
    messages_partitions: int = Field(12, ge=1, le=1024)
    responses_partitions: int = Field(6, ge=1, le=1024)
    events_partitions: int = Field(6, ge=1, le=1024)
    dead_letter_partitions: int = Field(3, ge=1, le=1024)
    chat_actions_partitions: int = Field(6, ge=1, le=1024)

    redis_url: str = "redis://127.0.0.1:36379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:35432/tgstream"

    openai_base_url: str = "http://127.0.0.1:38080/v1"
    openai_api_key: SecretStr = SecretStr("sk-local-no-key")
    llm_model: str = "smollm2-135m-instruct"
    llm_stub_url: str = "http://127.0.0.1:38081/v1"
    llm_stub_latency_ms: float = Field(300.0, ge=0)
    llm_timeout_s: float = Field(20.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_tokens: int = Field(160, ge=1, le=8192)
    llm_temperature: float = Field(0.7, ge=0, le=2)
    llm_max_in_flight: int = Field(512, ge=1)
    typing_actions: bool = True
    typing_after_s: float = Field(1.0, ge=0)
    """Show "typing..." only for a turn still running after this long; a faster reply needs none."""
    llm_context_tokens: int = Field(1536, ge=128)
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_s: float = Field(10.0, gt=0)

    embeddings_backend: EmbeddingsBackend = "local"
    embeddings_base_url: str | None = None
    embeddings_model: str = "all-MiniLM-L6-v2"
    embeddings_dim: int = Field(384, ge=1)
    memory_top_k: int = Field(4, ge=0, le=50)
    # Swept by benchmarks/memory_recall: recall@4 is 0.93 at 0.15 but 0.50 at 0.30 with MiniLM scores.
    memory_min_score: float = Field(0.15, ge=0, le=1)
    # An exchange is stored as a memory only at this importance (steps/importance.py): small talk
    # scores 0.02-0.12, one personal fact 0.4+; each row costs 0.7-5 ms of Postgres CPU.
    memory_min_importance: float = Field(0.35, ge=0, le=1)
    # Fernet keys, comma-separated, newest first; unset = memory text stored in clear.
    memory_encryption_key: SecretStr | None = None

    telegram_bot_token: SecretStr = SecretStr("123456:dev-token-not-secret")
    telegram_api_url: str = "http://127.0.0.1:38082"
    webhook_secret: SecretStr = SecretStr("dev-webhook-secret")
    webhook_url: str = "http://127.0.0.1:38000/webhook"

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(38000, ge=0, le=65535)
    gateway_max_body_bytes: int = Field(1_048_576, ge=1024)
    dedupe_ttl_s: int = Field(26 * 3600, ge=86_400)

    rate_per_minute: int = Field(10, ge=1)
    rate_per_hour: int = Field(100, ge=1)
    rate_per_day: int = Field(1000, ge=1)
    spam_threshold: float = Field(0.7, gt=0, le=1)

    send_global_per_s: float = Field(30.0, gt=0)
    send_per_chat_per_s: float = Field(1.0, gt=0)
    send_per_group_per_min: float = Field(20.0, gt=0)

    conversation_ttl_s: int = Field(3600, ge=60)
    context_window_turns: int = Field(12, ge=1, le=200)

    parquet_dir: Path = Path(".dev/data/conversation_events")
    parquet_roll_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    parquet_roll_s: float = Field(60.0, gt=0)
    analytics_salt: SecretStr = SecretStr("dev-analytics-salt")

    recovery_dir: Path = Path(".dev/recovery")
    recovery_partitions: int = Field(4, ge=1)
    snapshot_interval_s: float = Field(2.0, gt=0)

    dev_dir: Path = Path(".dev")
    # Where every process's /metrics, /healthz and /readyz listen; containers set 0.0.0.0.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: LogFormat = "json"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                msg = f"expected host:port[,host:port...], got {server!r}"
                raise ValueError(msg)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        return _require_scheme(value, ("redis", "rediss", "unix"))

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        return _require_scheme(value, ("postgresql", "postgres"))

    @field_validator("openai_base_url", "llm_stub_url", "telegram_api_url", "webhook_url")
    @classmethod
    def _http_scheme(cls, value: str) -> str:
        return _require_scheme(value, ("http", "https")).rstrip("/")

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        bot_id, sep, rest = value.get_secret_value().partition(":")
        if not sep or not bot_id.isdigit() or not rest:
            msg = "expected the BotFather form <digits>:<secret>"
            raise ValueError(msg)
        return value

    @property
    def bot_id(self) -> int:
        return int(self.telegram_bot_token.get_secret_value().partition(":")[0])


def _require_scheme(value: str, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        msg = f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {value!r}"
        raise ValueError(msg)
    return value


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings, turning pydantic's report into one line per bad env var."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "SETTINGS"
            lines.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from exc


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, validated on first use."""
    return load_settings()
