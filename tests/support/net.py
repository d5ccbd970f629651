"""Loopback helpers: a free port, and waiting until a started process answers /healthz."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from bot.web.serving import free_port

__all__ = ["free_port", "until_healthy"]


async def until_healthy(url: str, task: asyncio.Task[None]) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(200):
            if task.done():
                task.result()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the bot never answered /healthz")
