"""The desk (bot/web/desk) in tests: its app in this process, a browser-less client, signing in
through the chat's /dasbor link."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bot.config import WebSettings
from bot.media.library import MediaLibrary
from bot.web.desk import Desk
from tests.support.chats import FakeChat, texts

DESK_URL = "http://desk.test"
LINK = re.compile(r"(https?://\S+/dasbor/masuk/[A-Za-z0-9_\-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def desk_app(
    sessions: async_sessionmaker[AsyncSession],
    chat: FakeChat,
    clock: Callable[[], datetime] | None = None,
    *,
    media: MediaLibrary | None = None,
    photo_limit: int = 0,
    **web: object,
) -> tuple[Starlette, Desk]:
    """The desk alone, on the chat's configuration and clock (tiles off: no network); with
    ``media``, closure photos up to ``photo_limit`` bytes are taken."""
    settings = WebSettings(tiles_url="", **web)  # type: ignore[arg-type]
    desk = Desk(
        sessions,
        chat.config,
        settings,
        media=media,
        photo_limit=photo_limit,
        clock=clock or (lambda: chat.now),
    )
    return Starlette(routes=desk.routes()), desk


def with_desk(*chats: FakeChat, url: str = DESK_URL) -> None:
    """Give the chats a configuration whose /dasbor links point at ``url``."""
    for chat in chats:
        chat.config = dataclasses.replace(chat.config, desk_url=url)


def client(app: Starlette, base_url: str = DESK_URL) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def link_of(chat: FakeChat, word: str = "/dasbor") -> str:
    """Send /dasbor and return the sign-in link the bot answered with."""
    outcome = await chat.send(word)
    found = LINK.search(texts(outcome))
    assert found, texts(outcome)
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, chat: FakeChat) -> str:
    """Sign the chat's person in; returns the CSRF token of their session."""
    link = await link_of(chat)
    path = link.removeprefix(DESK_URL)
    answer = await http.post(path)
    assert answer.status_code == 303, answer.text
    page = await http.get("/dasbor/")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found
    return found.group(1)
