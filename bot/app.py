"""`ktn-bot run`: the one async process, started and stopped cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from prometheus_client import CollectorRegistry

from bot.config import Settings
from bot.database import connect, prepare_schema
from bot.serving import bind_socket, make_server
from bot.web import build_app

log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then shut down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    db = connect(settings)
    try:
        await prepare_schema(db, settings.database.url)
        registry = CollectorRegistry()
        app = build_app(db, registry)
        server = make_server(app)
        sock = bind_socket(settings.http.host, settings.http.port)
        log.info("listening on http://%s:%d", *sock.getsockname()[:2])
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        server.should_exit = True
        stopping.cancel()
        await serving
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await db.close()
    log.info("stopped")
