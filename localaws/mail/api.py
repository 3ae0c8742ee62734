"""HTTP side of the mail catcher: MailHog's v1 and v2 JSON API and the HTML pages.

Routes, query parameters and response shapes follow MailHog-Server's api/v1.go
and api/v2.go, so tests and curl commands written for MailHog work unchanged.
Differences from MailHog: every JSON response has the type
`application/json` (MailHog sends `text/json` on most routes), an unknown
message ID is 404 (MailHog returns 500), and a 400 carries a JSON body with an
`error` message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from localaws.errors import ToolkitError
from localaws.mail import web as pages
from localaws.mail.model import message_to_json
from localaws.mail.store import SEARCH_KINDS, MessageStore, StoredMessage

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
# MailHog caps v2 pages at 250 messages and the v1 list at 1000.
MAX_V2_LIMIT = 250
MAX_V1_MESSAGES = 1000

STORE_KEY = web.AppKey("store", MessageStore)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(store: MessageStore) -> web.Application:
    """Build the aiohttp application serving the API and pages for `store`."""
    app = web.Application(middlewares=[_error_middleware])
    app[STORE_KEY] = store
    app.router.add_get("/api/v2/messages", _v2_messages)
    app.router.add_get("/api/v2/search", _v2_search)
    app.router.add_get("/api/v1/messages", _v1_messages)
    app.router.add_delete("/api/v1/messages", _v1_delete_all)
    app.router.add_get("/api/v1/messages/{id}", _v1_message)
    app.router.add_delete("/api/v1/messages/{id}", _v1_delete_one)
    app.router.add_get("/api/v1/messages/{id}/download", _v1_download)
    pages.setup_routes(app, store)
    return app


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ToolkitError as error:
        logger.error("%s %s failed: %s", request.method, request.path, error)
        return _json_error(500, str(error))


async def _v2_messages(request: web.Request) -> web.Response:
    start, limit = _start_and_limit(request)
    store = request.app[STORE_KEY]

    def load() -> dict[str, Any]:
        messages = store.list_messages(start, limit)
        return _page(messages, start, store.count())

    return web.json_response(await asyncio.to_thread(load))


async def _v2_search(request: web.Request) -> web.Response:
    start, limit = _start_and_limit(request)
    kind = request.query.get("kind", "")
    query = request.query.get("query", "")
    if kind not in SEARCH_KINDS:
        raise _bad_request(f"Invalid search kind {kind!r}: pass kind=to, kind=from or kind=containing.")
    if not query:
        raise _bad_request("Missing search query: pass a non-empty query parameter.")
    store = request.app[STORE_KEY]

    def load() -> dict[str, Any]:
        messages, total = store.search(kind, query, start, limit)
        return _page(messages, start, total)

    return web.json_response(await asyncio.to_thread(load))


async def _v1_messages(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]

    def load() -> list[dict[str, Any]]:
        return [message_to_json(message) for message in store.list_messages(0, MAX_V1_MESSAGES)]

    return web.json_response(await asyncio.to_thread(load))


async def _v1_message(request: web.Request) -> web.Response:
    message = await _load_message(request)
    return web.json_response(await asyncio.to_thread(message_to_json, message))


async def _v1_download(request: web.Request) -> web.Response:
    message = await _load_message(request)
    return web.Response(
        body=message.raw,
        content_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{message.id}.eml"'},
    )


async def _v1_delete_all(request: web.Request) -> web.Response:
    deleted = await asyncio.to_thread(request.app[STORE_KEY].delete_all)
    logger.info("Deleted all %d message(s)", deleted)
    return web.Response(status=200)


async def _v1_delete_one(request: web.Request) -> web.Response:
    message_id = request.match_info["id"]
    if not await asyncio.to_thread(request.app[STORE_KEY].delete, message_id):
        raise _not_found(message_id)
    logger.info("Deleted message %s", message_id)
    return web.Response(status=200)


async def _load_message(request: web.Request) -> StoredMessage:
    message_id = request.match_info["id"]
    message = await asyncio.to_thread(request.app[STORE_KEY].get, message_id)
    if message is None:
        raise _not_found(message_id)
    return message


def _page(messages: list[StoredMessage], start: int, total: int) -> dict[str, Any]:
    items = [message_to_json(message) for message in messages]
    return {"total": total, "count": len(items), "start": start, "items": items}


def _start_and_limit(request: web.Request) -> tuple[int, int]:
    """Read `start` and `limit` the way MailHog does, but reject values that are not integers.

    As in MailHog, a start or limit of 0 or less falls back to 0 and 50, and
    a limit above 250 is lowered to 250.
    """
    start = _integer_parameter(request, "start")
    limit = _integer_parameter(request, "limit")
    start = start if start is not None and start > 0 else 0
    limit = limit if limit is not None and limit > 0 else DEFAULT_LIMIT
    return start, min(limit, MAX_V2_LIMIT)


def _integer_parameter(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise _bad_request(f"Invalid {name} {value!r}: pass a whole number.") from None


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=_json_text(message), content_type="application/json")


def _not_found(message_id: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(
        text=_json_text(
            f"Message {message_id} not found. List the stored messages with GET /api/v2/messages."
        ),
        content_type="application/json",
    )


def _json_text(message: str) -> str:
    return json.dumps({"error": message})
