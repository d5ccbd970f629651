"""handlers.sweep: each item of a periodic sweep in its own savepoint, on SQLite (BEGIN IMMEDIATE
from storage.db) and PostgreSQL alike; a failing item is rolled back alone and reported."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from handlers.sweep import ItemFailure, ItemGuard
from storage.models import Area


async def codes(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(Area.code).order_by(Area.code))).all())


async def test_a_failing_item_is_rolled_back_alone_and_the_sweep_commits_the_others(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[ItemFailure] = []
    async with sessions() as session:
        session.add(Area(code="31", name="Jawa Barat", level="provinsi"))
        guard = ItemGuard(session, "recap", heard.append)
        with caplog.at_level(logging.WARNING, logger="handlers.sweep"):
            for n in (1, 2, 3, 4):
                async with guard.item(f"area {n}") as attempt:
                    session.add(Area(code=f"31.0{n}", name="Desa Rahasia", level="desa"))
                    if n == 2:  # the database refuses it: a duplicate code, found at the flush
                        session.add(Area(code="31", name="Desa Rahasia", level="desa"))
                    if n == 3:
                        raise LookupError("Desa Rahasia")  # a bug in the item's own code
                    if n == 4:
                        continue  # leaving the block early keeps the item's changes
                assert attempt.failed == (n in (2, 3))
        await session.commit()
    assert await codes(sessions) == ["31", "31.01", "31.04"]
    assert [(f.job, f.item, f.error) for f in heard] == [
        ("recap", "area 2", "IntegrityError"),
        ("recap", "area 3", "LookupError"),
    ]
    assert guard.failures == heard
    assert heard[1].where.startswith("test_sweep.py:")  # outside bot/, handlers/, storage/
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1] == (
        f"recap: area 3 failed (LookupError at {heard[1].where}); "
        "rolled back alone, the sweep goes on"
    )
    assert not any("Rahasia" in line for line in lines), "no message text in the log"


def test_failures_are_counted_per_job_and_every_job_shows_from_the_start() -> None:
    metrics = Metrics()

    def failures(job: str) -> float | None:
        return metrics.registry.get_sample_value("ktn_job_item_failures_total", {"job": job})

    assert [failures(job) for job in ("escalation", "reminder", "patrol", "recap")] == [0] * 4
    metrics.item_failed(ItemFailure("reminder", "reminder 3", "ValueError", "handlers/x.py:1"))
    assert (failures("reminder"), failures("recap")) == (1, 0)
