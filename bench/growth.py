"""P4 growth: a database already holding a year of a province's reports, seeded in bulk.

``seed`` writes ``contacts`` residents and ``reports`` reports (with their audit event), spread
over every sample area and the last 365 days, mostly closed, as ktn-bot itself would have left
them. Rows go in with multi-row INSERTs in chunks, outside the app's code paths: seeding is not
what is measured, the bot's speed on top of it is.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Area, Contact, Report, ReportEvent

CHUNK = 5_000
CATEGORIES = ("keamanan", "kesehatan", "sosial", "pangan", "bencana")
STORY = "Laporan lama warga: pencurian sandal di masjid, sudah ditangani petugas setempat."


async def seed(
    sessions: async_sessionmaker[AsyncSession], *, contacts: int, reports: int, seed: int = 7
) -> float:
    """Insert the rows; returns the seconds it took."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    async with sessions() as session:
        areas = list((await session.scalars(select(Area.id))).all())
        first_contact = (await session.scalar(select(Contact.id).order_by(Contact.id.desc()))) or 0
    for start in range(0, contacts, CHUNK):
        rows = [
            {
                "channel": "telegram" if i % 3 else "whatsapp",
                "external_id": 7_000_000_000 + i,
                "display_name": f"Warga {i}",
                "language": "id",
                "role": "resident",
                "area_id": areas[i % len(areas)],
                "consent_at": now - timedelta(days=400),
                "last_inbound_at": now - timedelta(days=rng.randrange(365)),
                "created_at": now - timedelta(days=400),
            }
            for i in range(start, min(start + CHUNK, contacts))
        ]
        await _insert(sessions, Contact, rows)
    for start in range(0, reports, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, reports)):
            created = now - timedelta(days=1 + 364 * rng.random())
            closed = rng.random() < 0.995
            rows.append(
                {
                    "ticket": f"KTN-S{i:07d}",
                    "category": CATEGORIES[i % len(CATEGORIES)],
                    "description": STORY,
                    "address_text": f"RT {i % 20 + 1:02d} / RW {i % 7 + 1:02d}",
                    "area_id": areas[i % len(areas)],
                    "reporter_id": first_contact + 1 + rng.randrange(contacts),
                    "anonymous": i % 10 == 0,
                    "urgent": i % 25 == 0,
                    "status": "resolved" if closed else "new",
                    "created_at": created,
                    "updated_at": created,
                    "closed_at": created + timedelta(hours=5) if closed else None,
                }
            )
        await _insert(sessions, Report, rows)
    async with sessions() as session:
        ids = (await session.scalars(select(Report.id).where(Report.ticket.like("KTN-S%")))).all()
    for start in range(0, len(ids), CHUNK):
        events = [
            {"report_id": rid, "kind": "created", "to_status": "new", "created_at": now}
            for rid in ids[start : start + CHUNK]
        ]
        await _insert(sessions, ReportEvent, events)
    return time.perf_counter() - started


async def _insert(
    sessions: async_sessionmaker[AsyncSession], model: Any, rows: list[dict[str, Any]]
) -> None:
    async with sessions() as session:
        await session.execute(insert(model), rows)
        await session.commit()
