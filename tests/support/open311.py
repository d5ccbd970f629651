"""The Open311 API in-process over HTTP (httpx's ASGI transport) on the test's database, with a
clock the test moves, and the people of the staff tests (``staff_cast``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bot.config import Open311Settings
from bot.web.open311 import Open311Api
from storage import open311
from storage.areas import get_by_code
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA, WIYONO, Cast, staff_cast

BASE = "http://ktn.test/open311/v2"


@dataclass
class Clock:
    """Both clocks the API reads: the wall clock (UTC) and the monotonic one of its limits."""

    now: datetime = field(default_factory=lambda: datetime(2025, 5, 12, 3, 0, tzinfo=UTC))
    seconds: float = 1000.0

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self.seconds += step.total_seconds()


@dataclass
class Api:
    """The API and what a test needs around it."""

    sessions: async_sessionmaker[AsyncSession]
    cast: Cast
    clock: Clock
    settings: Open311Settings
    key: str  # Sumber Jaya's system
    key_id: int
    woken: list[int]
    address: str = "127.0.0.1"

    def app(self) -> Starlette:
        api = Open311Api(
            self.sessions,
            self.cast.reporter.config,
            self.settings,
            notify=lambda: self.woken.append(1),
            news_by_phone=True,
            max_body=65_536,
            clock=lambda: self.clock.seconds,
            now=lambda: self.clock.now,
        )
        return Starlette(routes=api.routes())

    def client(self, app: Starlette | None = None, address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=app or self.app(), client=(address or self.address, 4711)
        )
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    async def new_key(self, area_code: str, label: str | None = None) -> tuple[int, str]:
        return await make_key(self.sessions, area_code, label)


async def make_key(
    sessions: async_sessionmaker[AsyncSession], area_code: str, label: str | None = None
) -> tuple[int, str]:
    """What `ktn-bot open311 key --area CODE` makes: the key's id and the key."""
    async with sessions() as session:
        area = await get_by_code(session, area_code)
        assert area is not None, area_code
        row, key = await open311.create_key(session, area_id=area.id, label=label, now=utcnow())
        await session.commit()
        return row.id, key


def report_form(key: str | None, **fields: Any) -> dict[str, str]:
    """A POST requests form: a theft in Sumber Jaya with a pin, filed for Budi by phone."""
    form = {
        "service_code": "keamanan",
        "lat": "-3.7956",
        "long": "102.2592",
        "address_string": "Jl. Merpati 12, RT 03/RW 02",
        "description": "Motor hilang dari depan warung",
        "first_name": "Budi",
        "last_name": "Santoso",
        "phone": "0812-3456-7890",
        "email": "budi@example.id",
        "account_id": "crm-77",
    }
    if key is not None:
        form["api_key"] = key
    form.update({k: str(v) for k, v in fields.items() if v is not None})
    for name in [k for k, v in fields.items() if v is None]:
        form.pop(name, None)
    return form


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> Api:
    cast = await staff_cast(sessions)
    key_id, key = await make_key(sessions, SUMBER_JAYA, "Call centre Polres Bengkulu")
    await make_key(sessions, WIYONO, "Pemda Pesawaran")
    return Api(sessions, cast, Clock(), Open311Settings(), key, key_id, [])
