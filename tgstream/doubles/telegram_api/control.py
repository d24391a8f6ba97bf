"""The control API that tests and the demo use to drive the fake Bot API and read what it saw.

- ``GET  /control/sent?chat_id=&after=&kind=&limit=`` — messages, edits and chat actions the bot
  sent, oldest first, each with ``seq`` (use the last one as the next ``after``), ``mono`` and
  ``wall`` receive times.
- ``GET  /control/stats`` — counts, open flood windows, 429 violations, webhook delivery counters.
- ``POST /control/updates`` — simulated users: ``{"messages": [{"chat_id", "text", "user_id"?,
  "first_name"?, "chat_type"?}], "updates": [raw Update objects]}``. Ids are assigned when absent.
  They go to the webhook when one is set, otherwise they wait for getUpdates.
- ``POST /control/faults`` — replace the fault rules: ``{"rules": [...], "blocked_chat_ids": [...]}``
  (see :class:`~tgstream.doubles.telegram_api.faults.FaultRule`). ``GET`` shows them.
- ``POST /control/reset`` — forget messages, updates, faults and the webhook.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson
from aiohttp import web

from tgstream.doubles.telegram_api.faults import FaultRule
from tgstream.doubles.telegram_api.methods import FakeBotApi

API_KEY: web.AppKey[FakeBotApi] = web.AppKey("fake_bot_api", FakeBotApi)
_message_ids = itertools.count(1)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _client_error(reason: str) -> web.Response:
    return _json({"ok": False, "error": reason}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _int_query(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from exc


async def sent(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    records = api.store.query(
        chat_id=_int_query(request, "chat_id", None),
        after=_int_query(request, "after", 0) or 0,
        kind=request.query.get("kind") or None,
        limit=_int_query(request, "limit", 100_000) or 100_000,
    )
    return _json({"ok": True, "records": [r.to_json() for r in records]})


async def stats(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    faults = api.faults
    now = faults.clock()
    deliverer = api.deliverer
    return _json(
        {
            "ok": True,
            "sent_records": len(api.store.sent),
            "last_seq": api.store.next_seq - 1,
            "pending_updates": len(api.store.pending),
            "violations": faults.violations,
            "global_flood_s": max(0.0, faults.global_until - now),
            "chat_floods": sum(1 for until in faults.chat_until.values() if until > now),
            "webhook": {
                "delivered": deliverer.delivered if deliverer else 0,
                "dropped": deliverer.dropped if deliverer else 0,
                "failed_attempts": deliverer.failed_attempts if deliverer else 0,
                "queued": deliverer.queued if deliverer else 0,
            },
        }
    )


def _message_update(spec: dict[str, Any]) -> dict[str, Any]:
    chat_id = int(spec["chat_id"])
    user_id = int(spec.get("user_id", chat_id))
    chat_type = spec.get("chat_type") or ("private" if chat_id > 0 else "supergroup")
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type != "private":
        chat["title"] = spec.get("title", f"chat{chat_id}")
    return {
        "message": {
            "message_id": int(spec.get("message_id", next(_message_ids))),
            "date": int(spec.get("date", time.time())),
            "chat": chat,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": spec.get("first_name", f"user{user_id}"),
                "language_code": spec.get("language_code", "en"),
            },
            "text": str(spec["text"]),
        }
    }


async def updates(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        built = [_message_update(spec) for spec in body.get("messages", [])]
    except (KeyError, TypeError, ValueError) as exc:
        return _client_error(f"each message needs chat_id and text: {exc!r}")
    raw = body.get("updates", [])
    if not isinstance(raw, list) or not all(isinstance(u, dict) for u in raw):
        return _client_error("updates must be a list of Update objects")
    ids = request.app[API_KEY].queue_updates(built + raw)
    return _json({"ok": True, "update_ids": ids})


async def set_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        rules = [FaultRule.from_json(rule) for rule in body.get("rules", [])]
        blocked = {int(c) for c in body.get("blocked_chat_ids", [])}
    except (KeyError, TypeError, ValueError) as exc:
        return _client_error(f"bad fault rule: {exc}")
    request.app[API_KEY].faults.replace(rules, blocked)
    return await get_faults(request)


async def get_faults(request: web.Request) -> web.Response:
    faults = request.app[API_KEY].faults
    return _json(
        {"ok": True, "rules": [r.to_json() for r in faults.rules], "blocked_chat_ids": sorted(faults.blocked)}
    )


async def reset(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    await api.forget_webhook()
    api.store.reset()
    api.faults.clear()
    return _json({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/control/sent", sent)
    app.router.add_get("/control/stats", stats)
    app.router.add_post("/control/updates", updates)
    app.router.add_post("/control/faults", set_faults)
    app.router.add_get("/control/faults", get_faults)
    app.router.add_post("/control/reset", reset)
