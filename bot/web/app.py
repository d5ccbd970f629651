"""The one HTTP server: health, metrics, and the channel webhooks mounted by later wiring."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.database import Database


class BodyTooLarge(Exception):
    """A request body over the limit; nothing more of it was read."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read at most ``limit`` bytes far: a declared Content-Length over the
    limit is refused before reading anything, a chunked body as soon as it passes the limit.

    ``BodyTooLarge`` otherwise; a malformed Content-Length counts as too large (it cannot be
    trusted to bound the read).
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Role(Protocol):
    """A role this process may hold (the scheduler's leadership, the sender's)."""

    is_leader: bool


def build_app(
    db: Database,
    registry: CollectorRegistry,
    routes: Sequence[BaseRoute] = (),
    roles: Mapping[str, Role] | None = None,
) -> Starlette:
    """The Starlette app with /healthz, /metrics and any channel routes."""

    async def healthz(_request: Request) -> Response:
        """200 when the database answers, 503 otherwise; which roles this worker holds."""
        ok = await db.ping()
        body: dict[str, object] = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if ok else "unreachable",
        }
        for name, role in (roles or {}).items():
            body[name] = role.is_leader
        body["pid"] = os.getpid()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_request: Request) -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *routes,
        ]
    )
