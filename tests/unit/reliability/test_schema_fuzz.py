"""Property-based hostile input against the pure layer the gateway and the dataflow share.

Whatever a client sends, the gateway's parser either refuses it with a named reason or yields a
message that the dataflow's parser accepts again (an accepted update that the dataflow
dead-letters would be a user who never gets a reply). The handler test drives the real aiohttp
handler with an in-memory producer; the HTTP test in tests/integration/reliability does the same
over a socket with real Kafka and Redis.

Example counts: see ``hostile_updates.examples``; ``TGSTREAM_FUZZ_EXAMPLES=100000`` for the long run.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast
from unittest import mock

from aiohttp import streams
from aiohttp.test_utils import make_mocked_request
from hostile_updates import bodies, dump, examples, hostile_text, huge_text_body, update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tgstream.connectors.kafka_io import AsyncProducer
from tgstream.edges.gateway.app import SECRET_HEADER, webhook_handler
from tgstream.edges.gateway.metrics import GatewayMetrics
from tgstream.edges.inbound import Ingestor, RejectedUpdateError, parse_update
from tgstream.schemas.events import InboundMessage
from tgstream.schemas.telegram import MAX_TEXT_UTF16, Update
from tgstream.steps.validate import InvalidRecord, Parsed, parse_inbound


def fuzz(default: int) -> settings:
    return settings(
        max_examples=examples(default),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


SECRET = b"fuzz-secret"
MAX_BODY = 1_048_576


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check_accepted(message: InboundMessage) -> None:
    """What the gateway accepts must survive the trip through Kafka into the dataflow."""
    parsed = parse_inbound(message.model_dump_json().encode())
    assert isinstance(parsed, Parsed), parsed
    assert (parsed.message.update_id, parsed.message.chat_id) == (message.update_id, message.chat_id)
    assert utf16_units(parsed.message.text) <= MAX_TEXT_UTF16
    assert "\x00" not in parsed.message.text
    parsed.message.text.encode("utf-8")  # no lone surrogate left for Postgres or Telegram


@fuzz(5000)
@given(body=bodies)
def test_parse_update_refuses_by_name_or_yields_a_message_the_dataflow_reads(body: bytes) -> None:
    try:
        message = parse_update(body, received_at=1.0)
    except RejectedUpdateError as exc:
        reason = exc.reason
        assert reason in {"not_json", "invalid_update", "unsupported_update"}
        return
    if message is not None:
        check_accepted(message)


@fuzz(1500)
@given(data=update())
def test_update_model_and_from_update_never_raise_anything_but_validation(data: dict[str, Any]) -> None:
    text = json.dumps(data, ensure_ascii=False)
    try:
        parsed = Update.model_validate_json(text.encode("utf-8", "surrogatepass"))
    except ValueError:
        return
    message = InboundMessage.from_update(parsed, received_at=2.0)
    if message is not None:
        check_accepted(message)


@fuzz(1500)
@given(
    raw=st.one_of(bodies, st.builds(lambda t: dump({"v": 1, "text": t}, "raw"), hostile_text)),
    as_str=st.booleans(),
)
def test_parse_inbound_never_raises(raw: bytes, as_str: bool) -> None:
    value: bytes | str = raw.decode("utf-8", "surrogateescape") if as_str else raw
    result = parse_inbound(value)
    assert isinstance(result, Parsed | InvalidRecord)
    if isinstance(result, InvalidRecord):
        assert 0 < len(result.reason) <= 500


class MemoryProducer:
    """Stands in for Kafka in this unit test: every produce is acked and kept."""

    in_flight = 0
    replaced = 0

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    async def produce(self, topic: str, value: bytes, **_: Any) -> None:
        self.records.append((topic, value))


async def _post(handler: Any, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    protocol = mock.Mock(_reading_paused=False)
    payload = streams.StreamReader(protocol, limit=2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request(
        "POST", "/webhook", headers={**headers, "Content-Length": str(len(body))}, payload=payload
    )
    response = await handler(request)
    return response.status, response.body


@fuzz(2000)
@given(
    body=bodies, secret=st.sampled_from([SECRET.decode(), None, "", "wrong", SECRET.decode() + "x", "\u00e9"])
)
def test_webhook_handler_answers_only_200_400_401_413(body: bytes, secret: str | None) -> None:
    producer = MemoryProducer()
    ingestor = Ingestor(
        cast(AsyncProducer, producer), None, topic="in", dead_letter_topic="dlq", origin="fuzz"
    )
    handler = webhook_handler(ingestor, GatewayMetrics(ingestor), secret=SECRET, max_body_bytes=MAX_BODY)
    headers = {} if secret is None else {SECRET_HEADER: secret}
    status, _ = asyncio.run(_post(handler, body, headers))
    if secret != SECRET.decode():
        assert (status, producer.records) == (401, [])
        return
    assert status in {200, 400, 413}
    if status == 400:
        assert [topic for topic, _ in producer.records] == ["dlq"]
    if status == 200 and producer.records:
        [(topic, value)] = producer.records
        assert topic == "in"
        assert isinstance(parse_inbound(value), Parsed)


def test_bodies_over_the_limit_are_413_and_never_produced() -> None:
    producer = MemoryProducer()
    ingestor = Ingestor(
        cast(AsyncProducer, producer), None, topic="in", dead_letter_topic="dlq", origin="fuzz"
    )
    handler = webhook_handler(ingestor, GatewayMetrics(ingestor), secret=SECRET, max_body_bytes=MAX_BODY)
    body = huge_text_body(MAX_BODY + 10)
    assert len(body) > MAX_BODY
    status, _ = asyncio.run(_post(handler, body, {SECRET_HEADER: SECRET.decode()}))
    assert (status, producer.records) == (413, [])


def test_a_body_just_under_the_limit_is_accepted_and_readable_downstream() -> None:
    body = huge_text_body(MAX_BODY - 1)
    assert len(body) < MAX_BODY
    message = parse_update(body, received_at=1.0)
    assert message is not None
    check_accepted(message)


def _text_update(text_json: str, *, message_id: str = "1", date: str = "1") -> bytes:
    """A body with raw JSON fragments spliced in (json.dumps could not write a lone surrogate escape)."""
    head = '{"update_id":5,"message":{"message_id":' + message_id + ',"date":' + date
    return (head + ',"chat":{"id":42},"from":{"id":42},"text":"' + text_json + '"}}').encode()


def test_lone_surrogate_escapes_are_repaired_not_refused() -> None:
    """Valid JSON with a lone surrogate escape is a real message (Telegram splits emoji badly at times)."""
    message = parse_update(_text_update("hi \\ud83d there\\u0000 \\udfff"), received_at=1.0)
    assert message is not None
    check_accepted(message)
    assert message.text == "hi  there "


def test_ids_the_dataflow_cannot_read_are_refused_at_the_door() -> None:
    """A message_id or date beyond 64 bits would be accepted here and dead-lettered downstream."""
    for big in (str(2**63), str(2**64 + 1), str(-(2**63) - 1)):
        for body in (_text_update("x", message_id=big), _text_update("x", date=big)):
            try:
                message = parse_update(body, received_at=1.0)
            except RejectedUpdateError as exc:
                reason = exc.reason
                assert reason == "invalid_update"
                continue
            assert message is not None
            check_accepted(message)
