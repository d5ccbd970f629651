"""Escalation: an unclaimed report goes once to the parent area's group and coordinators, sooner
when urgent, driven by the database (a restart loses nothing, two workers escalate once)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import Category, CoreConfig
from handlers.context import Context
from handlers.escalation import escalate_due
from storage.db import create_engine, session_factory
from storage.models import Outbox, Report, ReportEvent
from tests.support.chats import KAMPUNG_MELAYU, Cast, FakeChat, link_group, load_areas, staff_cast

PARENT_GROUP = -300


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    await link_group(sessions, KAMPUNG_MELAYU, chat_id=PARENT_GROUP, title="Polsek KM")
    return cast


async def sweep(
    sessions: async_sessionmaker[AsyncSession], at: datetime, config: CoreConfig | None = None
) -> list[int]:
    async with sessions() as session:
        done = await escalate_due(session, Context(config or CoreConfig.default(), now=at))
        await session.commit()
        return done


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def test_an_unclaimed_report_escalates_once_urgent_sooner(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    start = cast.reporter.now
    calm = (await cast.reporter.file_report("keamanan")).recorded
    urgent = (await cast.resident.file_report("bencana", "Banjir setinggi lutut")).recorded
    before = {r.id for r in await rows(sessions, Outbox)}

    assert await sweep(sessions, start + timedelta(minutes=9)) == []
    assert await sweep(sessions, start + timedelta(minutes=10)) == [urgent["report_id"]]
    assert await sweep(sessions, start + timedelta(minutes=30)) == [], "once only"
    assert await sweep(sessions, start + timedelta(minutes=60)) == [calm["report_id"]]
    assert await sweep(sessions, start + timedelta(hours=5)) == []

    new = [r for r in await rows(sessions, Outbox) if r.id not in before]
    assert {r.kind for r in new} == {"escalation"}, "the reporter is not spammed"
    by_report: dict[int, list[Outbox]] = {}
    for row in new:
        by_report.setdefault(int(row.report_id or 0), []).append(row)
    coordinator = cast.coordinator.user_id
    for report_id in (urgent["report_id"], calm["report_id"]):
        targets = sorted((r.chat_id, r.payload["route"]) for r in by_report[report_id])
        assert targets == [(PARENT_GROUP, "group"), (coordinator, "coordinator")]
    [urgent_group] = [r for r in by_report[urgent["report_id"]] if r.chat_id == PARENT_GROUP]
    text = urgent_group.payload["reply"]["text"]
    assert text.startswith("⏰ ESKALASI: belum ditangani setelah 10 menit. Mohon dibantu.\n")
    assert "🚨 LAPORAN MENDESAK" in text and urgent["ticket"] in text
    assert [o[1] for o in urgent_group.payload["reply"]["options"]] == [
        f"claim:{urgent['report_id']}",
        f"resolve:{urgent['report_id']}",
        f"reject:{urgent['report_id']}",
    ]
    events = [e for e in await rows(sessions, ReportEvent) if e.kind == "escalated"]
    assert sorted(e.report_id for e in events) == sorted([urgent["report_id"], calm["report_id"]])
    reports_ = {r.id: r for r in await rows(sessions, Report)}
    assert reports_[urgent["report_id"]].escalated_at == start + timedelta(minutes=10)


async def test_a_claimed_report_does_not_escalate(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded
    await cast.officer.in_group().send(button=f"claim:{filed['report_id']}")
    assert await sweep(sessions, cast.reporter.now + timedelta(hours=2)) == []


async def test_the_coordinator_can_claim_from_the_escalation(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded
    await sweep(sessions, cast.reporter.now + timedelta(hours=1))
    group = cast.coordinator.in_group(chat_id=PARENT_GROUP)
    out = await group.send(button=f"claim:{filed['report_id']}")
    assert out.notice == f"👍 Anda menangani {filed['ticket']}."
    edits = [r for r in await rows(sessions, Outbox) if r.kind == "alert_edit"]
    originals = {r.id for r in await rows(sessions, Outbox) if r.kind in ("alert", "escalation")}
    assert {e.payload["edit_of"] for e in edits} == originals, "alert and escalations edited"
    out = await cast.other_officer.in_group(chat_id=PARENT_GROUP).send(
        button=f"resolve:{filed['report_id']}"
    )
    assert out.notice is not None and out.notice.startswith("Maaf")


async def test_escalation_survives_a_restart(cast: Cast, db_url: str) -> None:
    filed = (await cast.reporter.file_report()).recorded
    later = cast.reporter.now + timedelta(hours=1)
    engine = create_engine(db_url)  # a new process: nothing in memory, only the database
    try:
        assert await sweep(session_factory(engine), later) == [filed["report_id"]]
    finally:
        await engine.dispose()
    engine = create_engine(db_url)
    try:
        assert await sweep(session_factory(engine), later + timedelta(hours=1)) == []
    finally:
        await engine.dispose()


async def test_two_workers_escalate_a_report_once(cast: Cast, db_url: str) -> None:
    filed = [(await cast.reporter.file_report(c)).recorded for c in ("lainnya", "kesehatan")]
    later = cast.reporter.now + timedelta(hours=1)
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(sweep(session_factory(e), later) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    flat = sorted(i for result in results for i in result)
    assert flat == sorted(f["report_id"] for f in filed)
    escalations = [r for r in await rows(cast.reporter.sessions, Outbox) if r.kind == "escalation"]
    assert len(escalations) == 4  # two reports x (parent group + coordinator)


async def test_per_category_minutes_and_walking_up_when_the_parent_has_nobody(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    config = CoreConfig(
        catalog=CoreConfig.default().catalog,
        categories=(Category("keamanan", escalate_after_minutes=5), Category("lainnya")),
    )
    await load_areas(sessions)
    reporter = FakeChat(sessions, config=config)
    await reporter.onboard()
    far = FakeChat(sessions, user_id=4009, name="Kompol Rudi", config=config)
    await far.enrol("coordinator", "17.71")
    filed = (await reporter.file_report("keamanan")).recorded
    start = reporter.now
    assert await sweep(sessions, start + timedelta(minutes=4), config) == []
    assert await sweep(sessions, start + timedelta(minutes=5), config) == [filed["report_id"]]
    [row] = [r for r in await rows(sessions, Outbox) if r.kind == "escalation"]
    assert row.chat_id == far.user_id, "nobody in the kecamatan: the kota's coordinator"
    assert row.payload["route"] == "coordinator"
