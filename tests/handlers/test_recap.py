"""Daily and weekly recaps for coordinators: when they are due in each time zone, once per
period, and numbers that match the database."""

from __future__ import annotations

import logging
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from bot.roles.recaps import RecapJob
from bot.wiring import CHANNELS
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.i18n import Catalog
from handlers.recap import due_periods, send_due_recaps
from handlers.types import Reply
from storage import patrol
from storage.areas import get_by_code
from storage.models import Area, Contact, Outbox, Report
from storage.types import Role
from tests.support.chats import (
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    WIYONO,
    FakeChat,
    core_config,
    load_areas,
    make_invite,
)

CONFIG = core_config()


def test_due_periods_in_the_three_zones_and_over_a_month_end() -> None:
    # 1 March 2027 is a Monday; 07:00 local is 00:00 UTC in WIB, 23:00 UTC the day before in WITA.
    wib = due_periods(datetime(2027, 3, 1, 0, 0, tzinfo=UTC), "Asia/Jakarta")
    assert [(p.kind, p.first_day, p.last_day) for p in wib] == [
        ("daily", date(2027, 2, 28), date(2027, 2, 28)),
        ("weekly", date(2027, 2, 22), date(2027, 2, 28)),
    ]
    assert wib[0].start == datetime(2027, 2, 27, 17, 0, tzinfo=UTC)  # 28 Feb 00:00 WIB
    assert wib[0].end == datetime(2027, 2, 28, 17, 0, tzinfo=UTC)
    wita = due_periods(datetime(2027, 2, 28, 23, 0, tzinfo=UTC), "Asia/Makassar")
    assert [p.first_day for p in wita] == [date(2027, 2, 28), date(2027, 2, 22)]
    assert wita[0].start == datetime(2027, 2, 27, 16, 0, tzinfo=UTC)
    # 06:59 WIT on that Monday: nothing yet in Jayapura (the week before went last Monday).
    assert due_periods(datetime(2027, 2, 28, 21, 59, tzinfo=UTC), "Asia/Jayapura") == []
    wit = due_periods(datetime(2027, 2, 28, 22, 0, tzinfo=UTC), "Asia/Jayapura")
    assert wit[0].start == datetime(2027, 2, 27, 15, 0, tzinfo=UTC)
    # A Wednesday afternoon: yesterday's daily, and the last full week still (late but once).
    mid = due_periods(datetime(2027, 3, 3, 8, 0, tzinfo=UTC), "Asia/Jakarta")
    assert [(p.kind, p.first_day) for p in mid] == [
        ("daily", date(2027, 3, 2)),
        ("weekly", date(2027, 2, 22)),
    ]


async def coordinator(
    sessions: async_sessionmaker[AsyncSession], user_id: int, area: str, role: Role
) -> Contact:
    chat = FakeChat(sessions, user_id=user_id, name=f"Koordinator {user_id}")
    code = await make_invite(sessions, role, area)
    await chat.send(f"/daftar {code}")
    await chat.press("consent:yes")
    async with sessions() as session:
        found = await session.scalar(select(Contact).where(Contact.external_id == user_id))
        assert found is not None
        return found


def report(area_id: int, n: int, category: str, created: datetime, **fields: object) -> Report:
    values: dict[str, object] = {
        "ticket": f"KTN-T{n:05d}",
        "category": category,
        "description": "x",
        "area_id": area_id,
        "status": "new",
        "created_at": created,
    }
    values.update(fields)
    return Report(**values)


async def test_recap_numbers_match_the_database_and_go_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions)
    kecamatan = await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    await coordinator(sessions, 7002, WIYONO, Role.ADMIN)
    day = datetime(2027, 3, 2, 17, 0, tzinfo=UTC)  # 3 March 00:00 WIB: the period is 2 March
    start, end = day - timedelta(days=1), day
    async with sessions() as session:
        sumber = await get_by_code(session, SUMBER_JAYA)
        wiyono = await get_by_code(session, WIYONO)
        assert sumber is not None and wiyono is not None
        h = timedelta(hours=1)
        session.add_all(
            [
                report(sumber.id, 1, "keamanan", start + h, escalate_at=start + 2 * h),
                report(sumber.id, 2, "keamanan", start + 2 * h, status="claimed"),
                report(
                    sumber.id,
                    3,
                    "kesehatan",
                    start + 3 * h,
                    status="resolved",
                    closed_at=start + 5 * h,
                ),
                report(
                    sumber.id,
                    4,
                    "bencana",
                    start - 20 * h,
                    status="resolved",
                    closed_at=start + 4 * h,
                    escalated_at=start + h,
                ),
                report(sumber.id, 5, "keamanan", start - 48 * h, escalate_at=start),
                report(sumber.id, 6, "keamanan", end + h),  # the next day: not counted
                report(wiyono.id, 7, "keamanan", start + h),  # another kecamatan's
                report(sumber.id, 8, "lainnya", start + 6 * h, status="rejected", closed_at=end),
            ]
        )
        # Tonight's ronda in Sumber Jaya: three members announced, one said "Hadir".
        team = await patrol.add_team(session, sumber.id, "Regu Melati", ["Anto", "Beni", "Cici"])
        shift = await patrol.create_shift(
            session, sumber.id, team.team.id, date(2027, 3, 2), start + 12 * h
        )
        assert shift is not None
        await patrol.record_answer(session, shift.id, team.members[0].id, start + 13 * h)
        await session.commit()
    now = day + timedelta(hours=8)  # 08:00 WIB on Wednesday 3 March
    ctx = Context(CONFIG, now=now)
    async with sessions() as session:
        rows = await send_due_recaps(session, ctx)
        await session.commit()
    mine = [r for r in rows if r.contact_id == kecamatan.id]
    assert sorted(r.dedupe_key or "" for r in mine) == [
        f"recap:daily:{kecamatan.id}:2027-03-02",
        f"recap:weekly:{kecamatan.id}:2027-02-22",
    ]
    (daily,) = [r for r in mine if "daily" in (r.dedupe_key or "")]
    # The expected numbers, straight from the database rows.
    async with sessions() as session:
        ids = [a.id for a in (await session.scalars(select(Area))).all() if a.code.startswith("17")]
        every = (await session.scalars(select(Report).where(Report.area_id.in_(ids)))).all()
    before_end = [r for r in every if r.created_at < end]
    new = [r for r in before_end if r.created_at >= start]
    open_ = [r for r in before_end if r.status in ("new", "claimed")]
    overdue = [r for r in open_ if r.status == "new" and r.escalate_at and r.escalate_at <= now]
    resolved = [
        r for r in every if r.status == "resolved" and r.closed_at and start <= r.closed_at < end
    ]
    minutes = [(r.closed_at - r.created_at).total_seconds() / 60 for r in resolved if r.closed_at]
    stats = daily.payload["recap"]
    assert (stats["new"], stats["open"], stats["overdue"]) == (len(new), len(open_), len(overdue))
    assert (stats["new"], stats["open"], stats["overdue"]) == (4, 3, 2)
    assert stats["by_category"]["keamanan"] == [2, 3, 2]
    assert stats["resolved"] == len(resolved) == 2
    assert stats["median_minutes"] == round(statistics.median(minutes)) == 780
    assert stats["escalations"] == 1
    async with sessions() as session:
        on_shift = await patrol.patrol_confirmations(session, ids, start, end)
    came = [c for c in on_shift if c.confirmed_at is not None]
    assert stats["patrol"] == {
        "expected": len(on_shift),
        "confirmed": len(came),
        "missed": len(on_shift) - len(came),
    }
    assert stats["patrol"] == {"expected": 3, "confirmed": 1, "missed": 2}
    text = Reply.from_json(daily.payload["reply"]).text
    assert "Rekap harian Kampung Melayu — 02/03/2027" in text
    assert "Laporan baru: 4" in text and "lewat batas waktu: 2" in text
    assert "median 13 j 0 mnt" in text and "Ronda: hadir 1 dari 3" in text

    # Later the same day, or after a restart: nothing is written twice.
    async with sessions() as session:
        again = await send_due_recaps(session, Context(CONFIG, now=now + timedelta(hours=5)))
        await session.commit()
        assert again == []
        total = len((await session.scalars(select(Outbox))).all())
    assert total == len(rows)


async def test_a_demoted_coordinator_gets_no_recap(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions)
    person = await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    async with sessions() as session:
        await session.execute(update(Contact).where(Contact.id == person.id).values(role="officer"))
        await session.commit()
        rows = await send_due_recaps(
            session, Context(CONFIG, now=datetime(2027, 3, 3, 1, 0, tzinfo=UTC))
        )
    assert rows == []


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])
async def test_recaps_follow_the_area_time_zone(
    sessions: async_sessionmaker[AsyncSession], zone: str
) -> None:
    await load_areas(sessions)
    async with sessions() as session:
        await session.execute(update(Area).values(timezone=zone))
        await session.commit()
    person = await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    offset = {"Asia/Jakarta": 7, "Asia/Makassar": 8, "Asia/Jayapura": 9}[zone]
    seven_local = datetime(2027, 3, 3, 7, 0, tzinfo=UTC) - timedelta(hours=offset)
    async with sessions() as session:
        early = await send_due_recaps(
            session, Context(CONFIG, now=seven_local - timedelta(minutes=1))
        )
        assert [r.dedupe_key for r in early if "daily" in (r.dedupe_key or "")] == []
        late = await send_due_recaps(session, Context(CONFIG, now=seven_local))
        assert [r.dedupe_key for r in late if "daily" in (r.dedupe_key or "")] == [
            f"recap:daily:{person.id}:2027-03-02"
        ]


async def test_the_recap_job_writes_due_recaps_once_and_wakes_the_dispatcher(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions)
    await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    woken: list[bool] = []
    job = RecapJob(
        sessions,
        CONFIG,
        lambda: woken.append(True),
        clock=lambda: datetime(2027, 3, 3, 1, 0, tzinfo=UTC),  # 08:00 WIB
    )
    assert await job.run_once() == 2  # yesterday's daily and last week's weekly
    assert await job.run_once() == 0  # the next minute (or another process): nothing again
    assert woken == [True]
    async with sessions() as session:
        kinds = (await session.scalars(select(Outbox.kind))).all()
    assert kinds == ["recap", "recap"]


async def test_a_new_coordinator_gets_no_recap_of_days_before_they_came(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Registering today, at any hour, brings no 'yesterday' recap (the sandbox, a new lurah)."""
    await load_areas(sessions)
    person = await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    async with sessions() as session:
        joined = (await session.get(Contact, person.id)).created_at  # type: ignore[union-attr]
        rows = await send_due_recaps(session, Context(CONFIG, now=joined + timedelta(hours=1)))
        assert rows == []
        later = await send_due_recaps(session, Context(CONFIG, now=joined + timedelta(days=2)))
        assert [r.contact_id for r in later if "daily" in (r.dedupe_key or "")] == [person.id]


async def test_a_coordinators_recap_that_fails_does_not_hold_back_the_others(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The camat reads English and the English recap text is broken: the admin of Wiyono still
    gets both recaps; the camat's are counted, logged and not retried every minute; a restart
    with the text fixed sends them."""
    await load_areas(sessions)
    camat = await coordinator(sessions, 7001, KAMPUNG_MELAYU, Role.COORDINATOR)
    admin = await coordinator(sessions, 7002, WIYONO, Role.ADMIN)
    await FakeChat(sessions, user_id=7001).send("/bahasa en")
    overrides = tmp_path / "texts.toml"
    overrides.write_text('[en]\n"recap.new" = "New reports: {count:q}"\n', encoding="utf-8")
    broken = CoreConfig(catalog=Catalog.load(overrides), channels=CHANNELS)
    metrics = Metrics()

    def clock() -> datetime:
        return datetime(2027, 3, 3, 1, 0, tzinfo=UTC)  # 08:00 WIB, Wednesday

    async def recipients() -> list[int | None]:
        async with sessions() as session:
            found = await session.scalars(select(Outbox).order_by(Outbox.id))
            return [r.contact_id for r in found if r.kind == "recap"]

    def failures() -> float | None:
        return metrics.registry.get_sample_value("ktn_job_item_failures_total", {"job": "recap"})

    job = RecapJob(sessions, broken, lambda: None, clock=clock, on_failure=metrics.item_failed)
    with caplog.at_level(logging.WARNING):
        assert await job.run_once() == 2
    assert await recipients() == [admin.id, admin.id], "the admin's daily and weekly"
    assert failures() == 2, "the camat's daily and weekly"
    lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    periods = [("daily", "2027-03-02"), ("weekly", "2027-02-22")]
    assert [line.split(" (")[0] for line in lines] == [
        f"recap: recap:{kind}:{camat.id}:{day} failed" for kind, day in periods
    ]
    assert all("(ValueError at handlers/i18n.py:" in line for line in lines)

    assert await job.run_once() == 0
    assert failures() == 2, "not tried again every minute"
    restarted = RecapJob(sessions, CONFIG, lambda: None, clock=clock)
    assert await restarted.run_once() == 2
    assert sorted(await recipients()) == sorted([admin.id, admin.id, camat.id, camat.id])
