"""Claims that do not rot: a claim with no update for the configured time is offered back
(the claimer first, then the officers' group with a claim button), and nobody holds more open
claims than the cap (a polite refusal naming their tickets)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.database import Database
from bot.metrics import Metrics
from bot.roles.duties import make_claims_job
from handlers.claims import offer_back_idle
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.escalation import escalate_due
from storage.models import Outbox, Report, ReportEvent
from tests.support.chats import ALERT_GROUP, Cast, core_config, staff_cast, texts

IDLE = timedelta(minutes=240)  # the shipped claim_idle_minutes


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def offer_back(
    sessions: async_sessionmaker[AsyncSession], at: datetime, config: CoreConfig | None = None
) -> list[int]:
    async with sessions() as session:
        done = await offer_back_idle(session, Context(config or core_config(), now=at))
        await session.commit()
        return done


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def test_an_idle_claim_is_offered_back_claimer_first_then_the_group(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded.filed
    report_id, ticket = filed["report_id"], filed["ticket"]
    claimed_at = cast.reporter.now + timedelta(minutes=5)
    cast.officer.now = claimed_at
    await cast.officer.in_group().send(button=f"claim:{report_id}")
    before = {r.id for r in await rows(sessions, Outbox)}

    assert await offer_back(sessions, claimed_at + IDLE - timedelta(minutes=1)) == []
    assert await offer_back(sessions, claimed_at + IDLE) == [report_id]
    assert await offer_back(sessions, claimed_at + IDLE + timedelta(hours=1)) == [], "once"

    new = [r for r in await rows(sessions, Outbox) if r.id not in before]
    assert [(r.kind, r.chat_id) for r in new] == [
        ("notice", cast.officer.user_id),  # the claimer is told first
        ("alert", ALERT_GROUP),
    ]
    told, alert = new
    assert told.payload["reply"]["text"].startswith(
        f"⏳ Laporan {ticket} belum ada kabar selama 4 jam sejak Anda tangani"
    )
    assert [o[1] for o in told.payload["reply"]["options"]] == [f"claim:{report_id}"]
    text = alert.payload["reply"]["text"]
    assert text.startswith("🔁 DITAWARKAN LAGI: petugas yang menangani belum memberi kabar")
    assert ticket in text
    assert f"claim:{report_id}" in [o[1] for o in alert.payload["reply"]["options"]]
    [report] = [r for r in await rows(sessions, Report) if r.id == report_id]
    assert (report.status, report.assignee_id) == ("new", None)
    [event] = [e for e in await rows(sessions, ReportEvent) if e.kind == "claim_expired"]
    assert (event.from_status, event.to_status) == ("claimed", "new")

    # Unclaimed again, it escalates afresh if nobody takes it.
    later = claimed_at + IDLE + timedelta(minutes=60)
    async with sessions() as session:
        assert await escalate_due(session, Context(core_config(), now=later)) == [report_id]
        await session.commit()

    # The claimer takes it again from the new alert; the reporter hears of it again.
    cast.officer.now = later
    out = await cast.officer.in_group().send(button=f"claim:{report_id}")
    assert out.notice == f"👍 Anda menangani {ticket}."
    news = [
        r
        for r in await rows(sessions, Outbox)
        if r.kind == "status" and r.chat_id == cast.reporter.user_id
    ]
    assert len(news) == 2 and all("ditangani" in r.payload["reply"]["text"] for r in news)


async def test_a_claim_with_news_or_closed_is_not_offered_back(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    first = (await cast.reporter.file_report("keamanan")).recorded.filed
    second = (await cast.resident.file_report("kesehatan")).recorded.filed
    start = cast.reporter.now
    await cast.officer.in_group().send(button=f"claim:{first['report_id']}")
    await cast.officer.in_group().send(button=f"claim:{second['report_id']}")
    cast.officer.now = start + IDLE - timedelta(minutes=10)
    await cast.officer.send(f"selesai {first['ticket']} sudah aman")
    assert await offer_back(sessions, start + IDLE) == [second["report_id"]]
    never = dataclasses.replace(core_config(), claim_idle_minutes=0)
    assert await offer_back(sessions, start + 10 * IDLE, never) == []


async def test_nobody_holds_more_open_claims_than_the_cap(cast: Cast) -> None:
    config = dataclasses.replace(core_config(), max_open_claims=2)
    officer = dataclasses.replace(cast.officer, config=config)
    filed = [(await cast.reporter.file_report(c)).recorded.filed for c in ("keamanan", "lainnya")]
    third = (await cast.resident.file_report("kesehatan")).recorded.filed
    for f in filed:
        out = await officer.in_group().send(button=f"claim:{f['report_id']}")
        assert out.notice == f"👍 Anda menangani {f['ticket']}."

    refused = await officer.in_group().send(button=f"claim:{third['report_id']}")
    tickets = f"{filed[0]['ticket']}, {filed[1]['ticket']}"
    assert refused.notice == (
        f"Maaf, Anda sedang menangani 2 laporan, batasnya 2: {tickets}. "
        "Selesaikan atau tolak salah satunya dulu, lalu tekan Tangani lagi."
    )
    typed = await officer.send(f"tangani {third['ticket']}")
    assert texts(typed).startswith("Maaf, Anda sedang menangani 2 laporan")
    async with cast.reporter.sessions() as session:
        report = await session.get(Report, third["report_id"])
        assert report is not None and report.status == "new", "nothing changed"

    await officer.send(f"selesai {filed[0]['ticket']} beres")  # one closed: room for one more
    out = await officer.in_group().send(button=f"claim:{third['report_id']}")
    assert out.notice == f"👍 Anda menangani {third['ticket']}."


async def test_the_leaders_claims_job_offers_back_and_counts(
    cast: Cast, engine: AsyncEngine
) -> None:
    """The job the leader runs (bot.roles.duties) on the real clock: a claim made on the test's
    clock (May 2025) has long been idle."""
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded.filed
    await cast.officer.in_group().send(button=f"claim:{filed['report_id']}")
    metrics = Metrics()
    woken: list[bool] = []

    class Waker:
        def notify(self) -> None:
            woken.append(True)

    job = make_claims_job(Database(engine, sessions), core_config(), Waker(), metrics)
    await job()
    await job()  # nothing more: it is nobody's claim now
    assert metrics.registry.get_sample_value("ktn_claims_offered_back_total") == 1
    assert woken == [True]
    [report] = [r for r in await rows(sessions, Report) if r.id == filed["report_id"]]
    assert report.status == "new"
