"""The Bot API wire format: how parameters arrive and how results and errors leave.

Telegram accepts a method's parameters as a query string, a urlencoded or multipart form, or a
JSON body, and always answers ``{"ok": ..., ...}`` with the HTTP status equal to ``error_code``.
Clients differ (python-telegram-bot posts forms whose values are JSON-encoded strings), so every
accessor here accepts both a native JSON value and its string form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """A Bot API error response; ``description`` uses Telegram's own wording."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def ok_response(result: Any) -> web.Response:
    return web.Response(body=orjson.dumps({"ok": True, "result": result}), content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    return web.Response(
        body=orjson.dumps(error.payload()), status=error.code, content_type="application/json"
    )


class Params:
    """A method's parameters, merged from the query string and the body."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    @classmethod
    async def read(cls, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = orjson.loads(await request.read())
                except orjson.JSONDecodeError as exc:
                    raise bad_request("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise bad_request("JSON body must be an object")
                values.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                values.update({key: value for key, value in form.items() if isinstance(value, str)})
        return cls(values)

    def has(self, name: str) -> bool:
        return self._values.get(name) not in (None, "")

    def get_int(self, name: str, default: int | None = None) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            if default is None:
                raise bad_request(f"{name} is empty")
            return default
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError as exc:
            raise bad_request(f"invalid {name} specified") from exc

    def optional_int(self, name: str) -> int | None:
        return self.get_int(name) if self.has(name) else None

    def get_str(self, name: str, default: str | None = None) -> str:
        value = self._values.get(name)
        if value is None:
            if default is None:
                raise bad_request(f"{name} is empty")
            return default
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "1")

    def get_json(self, name: str) -> Any:
        """A structured parameter (reply_parameters, allowed_updates...), given natively or encoded."""
        value = self._values.get(name)
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise bad_request(f"can't parse {name} JSON object") from exc
        return value

    def chat_id(self) -> int:
        """Only numeric chat ids exist in the double; an @username is reported as Telegram would."""
        value = self._values.get("chat_id")
        if isinstance(value, str) and value.startswith("@"):
            raise bad_request("chat not found")
        return self.get_int("chat_id")
