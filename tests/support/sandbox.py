"""A sandbox served in the test's event loop, on its own config and database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.config import HttpSettings, Settings
from bot.sandbox import serve_sandbox
from bot.sandbox.telegram_fake import FloodLimits


def sandbox_config(tmp_path: Path) -> Settings:
    """Settings as loaded for a checkout in tmp_path (the sandbox picks its own database)."""
    return Settings(data_dir=tmp_path / "data", http=HttpSettings(port=0))


@contextlib.asynccontextmanager
async def running_sandbox(
    settings: Settings, flood_limits: FloodLimits | None = None
) -> AsyncIterator[str]:
    """The sandbox in this event loop on a free port, until the block ends; yields the page URL."""
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_sandbox(
            settings, "127.0.0.1", 0, stop, on_ready=ready.set_result, flood_limits=flood_limits
        )
    )
    either: set[asyncio.Future[Any]] = {task, ready}
    await asyncio.wait(either, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        stop.set()
        await task  # raises what went wrong
        raise AssertionError("the sandbox did not get ready in 30 s")
    try:
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
