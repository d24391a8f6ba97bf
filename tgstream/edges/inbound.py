"""From a raw Telegram update to a durable record on ``telegram_messages``: shared by gateway and poller.

The order of :meth:`Ingestor.accept` is the contract (at-least-once, duplicates dropped only when
safe):

1. claim the update id in Redis (see :mod:`tgstream.state.dedupe`); a ``done`` id is a duplicate,
   a ``pending`` one is being written by another request right now;
2. produce the normalised message keyed by chat id and wait for the broker's ack;
3. only then mark the id ``done`` (queued ahead of any later claim, not waited for by the
   answer to Telegram); on a failed produce release the claim so a retry can proceed.

Redis being down does not stop ingestion: dedupe fails open (counted), because a duplicate that
slips through is dropped later by the reply's idempotency key, while refusing updates would make
Telegram queue them for everyone.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from tgstream.connectors.kafka_io import (
    ERROR_HEADER,
    ORIGIN_HEADER,
    AsyncProducer,
    Delivered,
    KafkaUnavailableError,
)
from tgstream.schemas.events import InboundMessage
from tgstream.schemas.telegram import Update
from tgstream.state.dedupe import Claim, DedupeUnavailableError, UpdateDedupe
from tgstream.steps.validate import clean_tree, truncate_utf16

log = structlog.get_logger(__name__)


class RejectedUpdateError(ValueError):
    """The body is not a Telegram update we can read; ``reason`` is short, for metrics and headers."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"
    IGNORED = "ignored"
    UNAVAILABLE = "unavailable"


_UNICODE_TROUBLE = ("surrogate", "hex escape", "unicode", "utf-8")
_MAX_NAME_CHARS = 256
_MAX_LANGUAGE_CHARS = 35


def _lenient_update(body: bytes) -> Update | None:
    """Read a body the strict parser refused over Unicode only (lone surrogate escapes, bad UTF-8).

    Such bodies are valid messages with a broken character; refusing them would lose the message.
    The lone surrogates and NULs are removed, as the dataflow's parser would.
    """
    try:
        data = json.loads(body.decode("utf-8", "replace"))
        return Update.model_validate(clean_tree(data))
    except (ValueError, RecursionError):
        return None


def _bounded(message: InboundMessage) -> InboundMessage:
    """Cut fields to Telegram's own limits, so the record stays readable downstream whatever came in."""
    text = truncate_utf16(message.text)
    name = message.first_name[:_MAX_NAME_CHARS]
    language = message.language_code[:_MAX_LANGUAGE_CHARS] if message.language_code else message.language_code
    if (text, name, language) == (message.text, message.first_name, message.language_code):
        return message
    return message.model_copy(update={"text": text, "first_name": name, "language_code": language})


def parse_update(body: bytes, *, received_at: float) -> InboundMessage | None:
    """The normalised message of a webhook/getUpdates body, or None for an update with no chat."""
    try:
        update = Update.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        reason = "not_json" if first["type"] == "json_invalid" else "invalid_update"
        lenient = None
        if reason == "not_json" and any(word in first["msg"].lower() for word in _UNICODE_TROUBLE):
            lenient = _lenient_update(body)
        if lenient is None:
            raise RejectedUpdateError(reason, f"{where}: {first['msg']}") from exc
        update = lenient
    try:
        message = InboundMessage.from_update(update, received_at=received_at)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RejectedUpdateError("unsupported_update", f"{first['loc']}: {first['msg']}") from exc
    return None if message is None else _bounded(message)


@dataclass
class IngestStats:
    accepted: int = 0
    dedupe_unavailable: int = 0
    dead_letters: int = 0


class Ingestor:
    """Writes accepted updates to Kafka exactly as the module docstring describes."""

    def __init__(
        self,
        producer: AsyncProducer,
        dedupe: UpdateDedupe | None,
        *,
        topic: str,
        dead_letter_topic: str,
        origin: str,
    ) -> None:
        self._producer = producer
        self._dedupe = dedupe
        self._topic = topic
        self._dead_letter_topic = dead_letter_topic
        self._origin = origin
        self.stats = IngestStats()
        self.last_produce_s = 0.0

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def in_flight(self) -> int:
        return self._producer.in_flight

    @property
    def producers_replaced(self) -> int:
        return self._producer.replaced

    async def accept(self, message: InboundMessage) -> Outcome:
        claimed = await self._claim(message.update_id)
        if claimed is Claim.DUPLICATE:
            return Outcome.DUPLICATE
        if claimed is Claim.IN_FLIGHT:
            return Outcome.IN_FLIGHT
        started = time.perf_counter()
        try:
            await self._producer.produce(
                self._topic, message.model_dump_json().encode(), key=str(message.chat_id).encode()
            )
        except KafkaUnavailableError as exc:
            log.warning("produce failed", update_id=message.update_id, error=str(exc))
            await self._settle(message.update_id, durable=False)
            return Outcome.UNAVAILABLE
        self.last_produce_s = time.perf_counter() - started
        self.stats.accepted += 1
        self._commit_soon(message.update_id)
        return Outcome.ACCEPTED

    async def accept_batch(self, messages: list[InboundMessage]) -> list[Outcome]:
        """Accept a batch, producing in input order so each chat's updates stay in order.

        Claims are taken first (concurrently), then every new message is queued to the producer in
        order, then the acks are awaited. With an idempotent producer a partition's failures are a
        suffix of what was queued to it, so retrying the failed ones keeps the order.
        """
        claims = await asyncio.gather(*(self._claim(m.update_id) for m in messages))
        outcomes: list[Outcome] = []
        pending: list[tuple[int, asyncio.Future[Delivered]]] = []
        queue_failed = False
        for index, (message, claim) in enumerate(zip(messages, claims, strict=True)):
            if claim is Claim.DUPLICATE:
                outcomes.append(Outcome.DUPLICATE)
                continue
            if claim is Claim.IN_FLIGHT:
                outcomes.append(Outcome.IN_FLIGHT)
                continue
            outcomes.append(Outcome.UNAVAILABLE)
            if queue_failed:
                await self._settle(message.update_id, durable=False)
                continue
            try:
                future = self._producer.submit(
                    self._topic, message.model_dump_json().encode(), key=str(message.chat_id).encode()
                )
            except KafkaUnavailableError:
                # Queue nothing after a refused record, or a later one could overtake it.
                queue_failed = True
                await self._settle(message.update_id, durable=False)
                continue
            pending.append((index, future))
        results = await asyncio.gather(*(future for _, future in pending), return_exceptions=True)
        for (index, _), result in zip(pending, results, strict=True):
            durable = not isinstance(result, BaseException)
            if durable:
                outcomes[index] = Outcome.ACCEPTED
                self.stats.accepted += 1
            await self._settle(messages[index].update_id, durable=durable)
        return outcomes

    async def _claim(self, update_id: int) -> Claim | None:
        if self._dedupe is None:
            return None
        try:
            return await self._dedupe.claim(update_id)
        except DedupeUnavailableError as exc:
            self.stats.dedupe_unavailable += 1
            log.warning("dedupe unavailable, failing open", error=str(exc))
            return None

    def _commit_soon(self, update_id: int) -> None:
        """Mark the update done without holding the answer to Telegram for it (see commit_soon)."""
        if self._dedupe is None:
            return
        self._dedupe.commit_soon(update_id).add_done_callback(self._committed)

    def _committed(self, future: asyncio.Future[object]) -> None:
        error = future.exception()
        if error is not None:
            self.stats.dedupe_unavailable += 1
            log.warning("dedupe unavailable after produce", error=str(error))

    async def _settle(self, update_id: int, *, durable: bool) -> None:
        if self._dedupe is None:
            return
        try:
            if durable:
                await self._dedupe.commit(update_id)
            else:
                await self._dedupe.release(update_id)
        except DedupeUnavailableError as exc:
            self.stats.dedupe_unavailable += 1
            log.warning("dedupe unavailable after produce", error=str(exc))

    async def dead_letter(self, raw: bytes, reason: str, *, key: bytes | None = None) -> bool:
        """Keep an unreadable body for inspection; False if Kafka did not take it."""
        headers: list[tuple[str, str | bytes | None]] = [
            (ERROR_HEADER, reason),
            (ORIGIN_HEADER, self._origin),
        ]
        try:
            await self._producer.produce(self._dead_letter_topic, raw, key=key, headers=headers)
        except KafkaUnavailableError as exc:
            log.warning("dead-letter produce failed", reason=reason, error=str(exc))
            return False
        self.stats.dead_letters += 1
        return True
