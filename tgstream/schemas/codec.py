"""JSON encoding of events for Kafka values: orjson on the hot path, pydantic for validation."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class DecodeError(ValueError):
    """A Kafka value is not a valid event; ``reason`` is short enough for a dead-letter header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(event: BaseModel) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", by_alias=True))


def decode(model: type[ModelT], raw: bytes | str | None) -> ModelT:
    """Parse and validate one value, naming what is wrong in a way an operator can act on."""
    if raw is None:
        raise DecodeError("empty value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise DecodeError(f"{model.__name__}.{where}: {first['msg']} ({exc.error_count()} errors)") from exc
