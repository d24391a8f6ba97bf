"""Log set-up shared by every tgstream process: JSON lines by default, hashed ids, never a secret.

Third-party libraries log through the stdlib, and some log exactly what must not leak: httpx
(under python-telegram-bot and openai) logs every request URL at INFO, and a Bot API URL carries
the bot token. So the stdlib root logger is routed through the same processors as structlog's own
events, and redaction runs last, after exceptions were rendered to text.

Correlation: bind the update ids a piece of work came from with :func:`correlated`; every line
logged inside (in this thread or asyncio task) carries ``correlation_id`` and ``update_ids``, so
one user message can be followed from the gateway through the dataflow to the send.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from tgstream.config import Settings
from tgstream.observability.redaction import IdHasher, SecretRedactor, secret_values

_HANDLER_MARK = "_tgstream_log_handler"


CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2")
"""Libraries that log every request at INFO; shown only when LOG_LEVEL is DEBUG."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None, hash_ids: bool = True) -> None:
    """Route structlog and stdlib logging to one stream; safe to call again (it replaces itself).

    ``hash_ids=False`` logs raw chat and user ids: only for a local debugging session, never in
    production, where ids are personal data.
    """
    out = stream if stream is not None else sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if hash_ids:
        shared.append(IdHasher.from_settings(settings))
    renderer: Processor
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            SecretRedactor(secret_values(settings)),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # One INFO line per HTTP request (httpx under openai and PTB) is a JSON render per LLM call and
    # per send: 1,753 of the dataflow's 2,086 lines in a 20 s load run. Kept at DEBUG.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module ``name``; pass ids and context as keywords so they can be hashed."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def correlation_id(update_ids: Iterable[int]) -> str:
    """The id of the work that started with these updates: the first (smallest) update id.

    A burst merged into one turn keeps its first message's id; ``update_ids`` is bound next to it,
    so a search for any of the burst's updates still finds the turn.

    >>> correlation_id([105, 103, 104])
    'upd-103'
    """
    ids = list(update_ids)
    if not ids:
        raise ValueError("a correlation id needs at least one update_id")
    return f"upd-{min(ids)}"


@contextlib.contextmanager
def correlated(update_ids: int | Iterable[int], **context: Any) -> Iterator[str]:
    """Bind ``correlation_id`` and ``update_ids`` (plus ``context``) for everything logged inside."""
    ids = sorted({update_ids} if isinstance(update_ids, int) else set(update_ids))
    cid = correlation_id(ids)
    with structlog.contextvars.bound_contextvars(correlation_id=cid, update_ids=ids, **context):
        yield cid
