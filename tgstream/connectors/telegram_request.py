"""python-telegram-bot's transport seam, filled with one pooled aiohttp session and orjson.

PTB's ``BaseRequest`` maps HTTP statuses to its exceptions once; a subclass only moves bytes. Its
default subclass runs on httpx, whose connection-pool bookkeeping was 21 % of the sender's busy
samples in a profile at 60 msg/s (docs/benchmarks.md). This one sends the same Bot API calls as a
JSON body through aiohttp (which the gateway, the LLM client and the fake Bot API already use)
and parses answers with orjson, so the sender keeps PTB's ``Bot``, its types and its error
classes while paying less per call.

File uploads are not supported: tgstream only sends text and chat actions.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


def _or(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """Lifecycle: :meth:`initialize` opens the session (PTB's ``Bot`` does it in ``async with``),
    :meth:`shutdown` closes it; a request before ``initialize`` raises ``RuntimeError``."""

    def __init__(
        self,
        *,
        pool_size: int = 64,
        read_timeout_s: float | None = 10.0,
        connect_timeout_s: float | None = 5.0,
        pool_timeout_s: float | None = 10.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self._pool_size = pool_size
        self._read_timeout_s = read_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._pool_timeout_s = pool_timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout_s

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            parsed: JSONDict = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise TelegramError("Invalid server response") from exc
        return parsed

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized; use the Bot as `async with`")
        if request_data is not None and request_data.contains_files:
            raise TelegramError("AiohttpRequest does not upload files")
        body: Any = orjson.dumps(request_data.parameters) if request_data is not None else None
        read_s = _or(read_timeout, self._read_timeout_s)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=_or(pool_timeout, self._pool_timeout_s),
            sock_connect=_or(connect_timeout, self._connect_timeout_s),
            sock_read=read_s,
        )
        try:
            async with self._session.request(
                method, url, data=body, headers=_JSON if body is not None else None, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut(f"no answer from the Bot API within {read_s} s") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
