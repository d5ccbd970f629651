"""The numbers page: its figures equal plain SQL counts on a seeded set and the chat recap's
(``handlers.recap.compute_stats``) for the same week; median and p90 as ``statistics`` has them."""

from __future__ import annotations

import math
import random
import re
import statistics
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.recap import Period, compute_stats
from storage import desk
from storage.areas import descendant_ids, get_by_code
from storage.models import Contact, Report
from storage.reports import create_report
from storage.types import Role
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, WIYONO, FakeChat, load_areas
from tests.support.desk import client, desk_app, sign_in, with_desk

NOW = datetime(2025, 5, 14, 3, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Jakarta
# Last week in Jakarta: Monday 5 May 00:00 WIB to Monday 12 May 00:00 WIB.
WEEK = Period(
    "weekly",
    datetime(2025, 5, 5).date(),
    datetime(2025, 5, 11).date(),
    datetime(2025, 5, 4, 17, 0, tzinfo=UTC),
    datetime(2025, 5, 11, 17, 0, tzinfo=UTC),
)
CATEGORIES = ("keamanan", "kesehatan", "bencana")


async def seed(sessions: async_sessionmaker[AsyncSession], officer_id: int) -> None:
    """60 reports over three weeks in Sumber Jaya and 15 in Wiyono (outside the scope): some
    claimed, resolved, rejected, escalated, overdue."""
    rng = random.Random(19)
    async with sessions() as s:
        sumber = await get_by_code(s, SUMBER_JAYA)
        wiyono = await get_by_code(s, WIYONO)
        assert sumber is not None and wiyono is not None
        for i in range(75):
            area = sumber if i < 60 else wiyono
            created = NOW - timedelta(minutes=rng.randrange(60, 21 * 24 * 60))
            report = await create_report(
                s,
                category=CATEGORIES[i % 3],
                description=f"Laporan {i}",
                area_id=area.id,
                reporter_id=None,
                anonymous=True,
                urgent=i % 7 == 0,
                now=created,
                ticket=f"KTN-N{i:05d}",
            )
            report.escalate_at = created + timedelta(minutes=60)
            fate = i % 5
            if fate in (1, 2, 3):
                report.claimed_at = created + timedelta(minutes=rng.randrange(1, 600))
                report.assignee_id = officer_id
                report.status = "claimed"
            if fate in (2, 3):
                report.closed_at = report.claimed_at + timedelta(minutes=rng.randrange(5, 3000))  # type: ignore[operator]
                report.status = "resolved" if fate == 2 else "rejected"
                if report.closed_at > NOW:
                    report.closed_at, report.status = None, "claimed"
            if fate == 4 and i % 2:
                report.escalated_at = created + timedelta(minutes=61)
        await s.commit()


async def test_numbers_equal_sql_counts_and_the_recap(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_areas(sessions)
    coordinator = FakeChat(sessions, user_id=4003, name="Iptu Sari", now=NOW)
    await coordinator.enrol(Role.COORDINATOR, KAMPUNG_MELAYU)
    async with sessions() as s:
        officer_id = await s.scalar(select(Contact.id).where(Contact.external_id == 4003))
        area = await get_by_code(s, KAMPUNG_MELAYU)
        assert officer_id is not None and area is not None
        scope = await descendant_ids(s, area.id)
    await seed(sessions, officer_id)
    async with sessions() as s:
        found = await desk.numbers(s, scope, WEEK.start, WEEK.end, NOW)
        recap = await compute_stats(s, scope, WEEK, NOW)
        in_week = (Report.area_id.in_(scope), Report.created_at >= WEEK.start)
        in_week += (Report.created_at < WEEK.end,)
        by_category = dict(
            (
                await s.execute(
                    select(Report.category, func.count()).where(*in_week).group_by(Report.category)
                )
            ).all()
        )
        resolved = (
            await s.scalars(
                select(Report).where(
                    Report.area_id.in_(scope),
                    Report.status == "resolved",
                    Report.closed_at >= WEEK.start,
                    Report.closed_at < WEEK.end,
                )
            )
        ).all()
        claimed = (
            await s.scalars(
                select(Report).where(
                    Report.area_id.in_(scope),
                    Report.claimed_at >= WEEK.start,
                    Report.claimed_at < WEEK.end,
                )
            )
        ).all()
        open_now = await s.scalar(
            select(func.count()).where(
                Report.area_id.in_(scope), Report.status.in_(("new", "claimed"))
            )
        )
    assert found.by_category == by_category and found.created == sum(by_category.values()) > 0
    # the chat recap's figures for the same week
    assert found.created == recap.new
    assert {k: v[0] for k, v in recap.by_category.items() if v[0]} == found.by_category
    assert found.resolve_all.count == recap.resolved == len(resolved) > 1
    assert found.resolve_all.median is not None
    assert round(found.resolve_all.median) == recap.median_minutes
    assert found.escalations == recap.escalations > 0
    assert found.overdue == recap.overdue > 0
    # median and p90 as statistics computes them (p90: nearest rank)
    waits = sorted((r.claimed_at - r.created_at).total_seconds() / 60 for r in claimed)  # type: ignore[operator]
    assert found.claim_all.count == len(waits) > 1
    assert found.claim_all.median is not None and found.claim_all.p90 is not None
    assert math.isclose(found.claim_all.median, statistics.median(waits), abs_tol=0.01)
    assert math.isclose(found.claim_all.p90, waits[math.ceil(0.9 * len(waits)) - 1], abs_tol=0.01)
    assert found.claim_by_officer[officer_id].count == len(waits)
    assert sum(found.open_by_age) == open_now

    # the page shows the same numbers
    with_desk(coordinator)
    app, _desk = desk_app(sessions, coordinator)
    async with client(app) as http:
        await sign_in(http, coordinator)
        page = (await http.get("/dasbor/angka?from=2025-05-05&to=2025-05-11")).text
    shown = dict(re.findall(r'data-testid="([a-z-]+)">([^<]+)<', page))
    assert int(shown["created"]) == recap.new
    assert int(shown["resolved"]) == recap.resolved
    assert int(shown["escalations"]) == recap.escalations
    assert int(shown["overdue"]) == recap.overdue
    hours, minutes = divmod(recap.median_minutes or 0, 60)
    expected = (
        f"{hours} j {minutes} mnt"
        if recap.median_minutes and recap.median_minutes >= 60
        else f"{minutes} mnt"
    )
    if recap.median_minutes and recap.median_minutes >= 48 * 60:
        expected = f"{recap.median_minutes // 1440} hr {(recap.median_minutes % 1440) // 60} j"
    assert shown["resolve-median"] == expected
    assert "<svg" in page and 'role="img"' in page
    for label, count in (("Keamanan", by_category.get("keamanan", 0)),):
        assert f'data-total="{label}">{count}<' in page
