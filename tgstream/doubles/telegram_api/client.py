"""An async client for the fake Bot API's control API, for tests and the demo's simulated users."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson


class ControlError(RuntimeError):
    """The control API refused a request; the message carries its reason."""


class FakeTelegramControl:
    """Talks to ``/control/*``; an async context manager that owns its HTTP session."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FakeTelegramControl:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self, verb: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use FakeTelegramControl as an async context manager")
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        data = orjson.dumps(body) if body is not None else None
        async with self._session.request(verb, f"{self._base}{path}", data=data, params=query) as response:
            raw = await response.read()
        if response.status != 200:
            raise ControlError(f"{verb} {path} -> {response.status}: {raw[:300]!r}")
        return orjson.loads(raw)

    async def send_user_messages(self, messages: Iterable[Mapping[str, Any]]) -> list[int]:
        """Queue simulated users' text messages; returns their update ids in order."""
        result = await self._call("POST", "/control/updates", {"messages": list(messages)})
        return list(result["update_ids"])

    async def push_updates(self, updates: Iterable[Mapping[str, Any]]) -> list[int]:
        result = await self._call("POST", "/control/updates", {"updates": list(updates)})
        return list(result["update_ids"])

    async def sent(
        self, *, chat_id: int | None = None, after: int = 0, kind: str | None = None
    ) -> list[dict[str, Any]]:
        result = await self._call(
            "GET", "/control/sent", params={"chat_id": chat_id, "after": after, "kind": kind}
        )
        return list(result["records"])

    async def stats(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/control/stats"))

    async def set_faults(
        self, rules: Iterable[Mapping[str, Any]] = (), *, blocked_chat_ids: Iterable[int] = ()
    ) -> None:
        await self._call(
            "POST", "/control/faults", {"rules": list(rules), "blocked_chat_ids": list(blocked_chat_ids)}
        )

    async def reset(self) -> None:
        await self._call("POST", "/control/reset", {})
