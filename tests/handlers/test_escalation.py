"""Escalation: an unclaimed report climbs the area tree, one level each interval (sooner when
urgent), until it is claimed or reaches the top; driven by the database (a restart loses
nothing, two workers take a step once)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.database import Database
from bot.metrics import Metrics
from bot.roles.duties import make_escalation_job
from bot.wiring import CHANNELS
from handlers.config import Category, CoreConfig
from handlers.context import Context
from handlers.escalation import escalate_due
from handlers.i18n import Catalog
from storage.db import create_engine, session_factory
from storage.models import Outbox, Report, ReportEvent
from storage.types import Channel
from tests.support.chats import (
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    WIYONO,
    Cast,
    FakeChat,
    core_config,
    link_group,
    load_areas,
    photo,
    staff_cast,
    texts,
)

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
        done = await escalate_due(session, Context(config or core_config(), now=at))
        await session.commit()
        return done


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def test_an_unclaimed_report_escalates_once_urgent_sooner(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    start = cast.reporter.now
    calm = (await cast.reporter.file_report("keamanan")).recorded.filed
    urgent = (await cast.resident.file_report("bencana", "Banjir setinggi lutut")).recorded.filed
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
        f"merge:{urgent['report_id']}",  # Duplikat: on the group's alert
        f"pmenu:{urgent['report_id']}",  # Masalah…: likewise
    ]
    events = [e for e in await rows(sessions, ReportEvent) if e.kind == "escalated"]
    assert sorted(e.report_id for e in events) == sorted([urgent["report_id"], calm["report_id"]])
    reports_ = {r.id: r for r in await rows(sessions, Report)}
    assert reports_[urgent["report_id"]].escalated_at == start + timedelta(minutes=10)


async def test_a_claimed_report_does_not_escalate(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded.filed
    await cast.officer.in_group().send(button=f"claim:{filed['report_id']}")
    assert await sweep(sessions, cast.reporter.now + timedelta(hours=2)) == []


async def test_the_coordinator_can_claim_from_the_escalation(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    filed = (await cast.reporter.file_report()).recorded.filed
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
    filed = (await cast.reporter.file_report()).recorded.filed
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
    filed = [(await cast.reporter.file_report(c)).recorded.filed for c in ("lainnya", "kesehatan")]
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
        channels=CHANNELS,
    )
    await load_areas(sessions)
    reporter = FakeChat(sessions, config=config)
    await reporter.onboard()
    far = FakeChat(sessions, user_id=4009, name="Kompol Rudi", config=config)
    await far.enrol("coordinator", "17.71")
    filed = (await reporter.file_report("keamanan")).recorded.filed
    start = reporter.now
    assert await sweep(sessions, start + timedelta(minutes=4), config) == []
    assert await sweep(sessions, start + timedelta(minutes=5), config) == [filed["report_id"]]
    [row] = [r for r in await rows(sessions, Outbox) if r.kind == "escalation"]
    assert row.chat_id == far.user_id, "nobody in the kecamatan: the kota's coordinator"
    assert row.payload["route"] == "coordinator"


def broken_media_line(tmp_path: Path) -> CoreConfig:
    """A deployment's override that loads (same placeholder) but cannot be formatted: only an
    alert with a photo has that line, so only reports with a photo fail to escalate."""
    overrides = tmp_path / "texts.toml"
    overrides.write_text('[id]\n"alert.media" = "Foto/file: {count:q}"\n', encoding="utf-8")
    return CoreConfig(catalog=Catalog.load(overrides), channels=CHANNELS)


async def file_with_photo(chat: FakeChat) -> dict[str, Any]:
    await chat.send("/lapor")
    await chat.press("cat:keamanan")
    await chat.send("Pagar balai desa dirusak orang")
    await chat.send("RT 01/RW 01 depan balai")
    await chat.send(media=[photo("file-pagar")])
    await chat.press("anon:no")
    return (await chat.press("sum:send")).recorded.filed


async def escalation_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    """Report id -> how many escalation copies it has in the outbox."""
    counts: dict[int, int] = {}
    for row in await rows(sessions, Outbox):
        if row.kind == "escalation":
            counts[int(row.report_id or 0)] = counts.get(int(row.report_id or 0), 0) + 1
    return counts


async def test_a_report_that_cannot_escalate_is_set_aside_and_the_others_go_up(
    cast: Cast, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = cast.reporter.sessions
    start = cast.reporter.now
    bad = await file_with_photo(cast.reporter)  # filed first: the first of the sweep
    good = [(await cast.resident.file_report(c)).recorded.filed for c in ("lainnya", "kesehatan")]
    broken = broken_media_line(tmp_path)  # deployed after the reports were filed

    with caplog.at_level(logging.WARNING):
        done = await sweep(sessions, start + timedelta(hours=1), broken)
    assert done == [g["report_id"] for g in good]
    assert await escalation_rows(sessions) == {g["report_id"]: 2 for g in good}, (
        "the good reports reach the parent group and the coordinator; the bad one adds nothing"
    )
    [line] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert line.getMessage().startswith(f"escalation: report {bad['report_id']} failed (ValueError")
    assert "Budi" not in line.getMessage() and "Pagar" not in line.getMessage()
    [aside] = [e for e in await rows(sessions, ReportEvent) if e.kind == "escalate_failed"]
    assert (aside.report_id, aside.note) == (bad["report_id"], "ValueError")

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert await sweep(sessions, start + timedelta(hours=2), broken) == []
    assert not [r for r in caplog.records if "failed" in r.getMessage()], "not tried again"
    later = (await cast.resident.file_report("bencana", "Pohon tumbang")).recorded.filed
    assert await sweep(sessions, start + timedelta(hours=3), broken) == [later["report_id"]]
    [report] = [r for r in await rows(sessions, Report) if r.id == bad["report_id"]]
    assert (report.status, report.escalated_at) == ("new", None), "still open, not escalated"


async def test_the_escalation_job_gets_past_a_failing_report_page_after_page(
    cast: Cast, engine: AsyncEngine, tmp_path: Path
) -> None:
    """One report a page: the failing one first fills the page alone, yet the sweep goes on
    to the reports after it, and ends."""
    sessions = cast.reporter.sessions
    bad = await file_with_photo(cast.reporter)
    good = [(await cast.resident.file_report(c)).recorded.filed for c in ("lainnya", "kesehatan")]
    metrics = Metrics()
    woken: list[bool] = []

    class Waker:
        def notify(self) -> None:
            woken.append(True)

    job = make_escalation_job(
        Database(engine, sessions), broken_media_line(tmp_path), Waker(), metrics, page=1
    )
    async with asyncio.timeout(60):  # a sweep that never ends fails here, not at the suite's end
        await job()
    assert await escalation_rows(sessions) == {g["report_id"]: 2 for g in good}
    assert metrics.registry.get_sample_value("ktn_escalations_total", {"level": "1"}) == 2
    failures = metrics.registry.get_sample_value(
        "ktn_job_item_failures_total", {"job": "escalation"}
    )
    assert failures == 1 and woken == [True, True]
    async with asyncio.timeout(60):
        await job()  # the next sweep: nothing due, the set-aside report not tried again
    assert (
        metrics.registry.get_sample_value("ktn_job_item_failures_total", {"job": "escalation"}) == 1
    )
    assert bad["report_id"] not in await escalation_rows(sessions)


# --- escalation that climbs ------------------------------------------------------------------

KOTA = "17.71"
PROVINSI = "17"
WA_KOTA_COORDINATOR = 6281255556666


def on_whatsapp(sessions: async_sessionmaker[AsyncSession], number: int, name: str) -> FakeChat:
    return FakeChat(
        sessions,
        channel=Channel.WHATSAPP,
        user_id=number,
        name=name,
        phone=f"+{number}",
        bot_username=None,
    )


async def steps_of(sessions: async_sessionmaker[AsyncSession], report_id: int) -> list[str]:
    """The report's escalation trail: the notes of its 'escalated' / 'escalation_end' events."""
    return [
        f"{e.kind} {e.note}"
        for e in await rows(sessions, ReportEvent)
        if e.report_id == report_id and e.kind.startswith("escalat")
    ]


async def targets(sessions: async_sessionmaker[AsyncSession], report_id: int) -> list[Any]:
    return sorted(
        (r.channel, r.chat_id, r.payload["route"])
        for r in await rows(sessions, Outbox)
        if r.kind == "escalation" and r.report_id == report_id
    )


async def test_an_escalation_climbs_a_level_each_interval_on_both_channels_and_stops_at_the_claim(
    cast: Cast,
) -> None:
    """Level 1: the village's own coordinator and the kecamatan's group and coordinator; level
    2: the kota's coordinator (on WhatsApp, with the words to answer); the kota's coordinator
    claims it and nothing climbs to the provinsi."""
    sessions = cast.reporter.sessions
    village_coordinator = FakeChat(sessions, user_id=4010, name="Lurah Sri")
    await village_coordinator.enrol("coordinator", SUMBER_JAYA)
    kota = on_whatsapp(sessions, WA_KOTA_COORDINATOR, "Kompol Rudi")
    await kota.enrol("coordinator", KOTA)
    provinsi = FakeChat(sessions, user_id=4011, name="AKBP Dewi")
    await provinsi.enrol("coordinator", PROVINSI)
    start = cast.reporter.now
    filed = (await cast.reporter.file_report("bencana", "Banjir setinggi lutut")).recorded.filed
    report_id = filed["report_id"]
    levels: list[tuple[int, int]] = []

    async def sweep_at(minutes: int) -> list[int]:
        async with sessions() as session:
            done = await escalate_due(
                session,
                Context(core_config(), now=start + timedelta(minutes=minutes)),
                on_step=lambda report, level: levels.append((report, level)),
            )
            await session.commit()
            return done

    assert await sweep_at(9) == []
    assert await sweep_at(10) == [report_id]
    assert await targets(sessions, report_id) == [
        ("telegram", PARENT_GROUP, "group"),
        ("telegram", cast.coordinator.user_id, "coordinator"),
        ("telegram", village_coordinator.user_id, "coordinator"),
    ], "level 1: the kecamatan's group and coordinator, and the village's own coordinator"
    assert await sweep_at(19) == [], "the next level waits for the next interval"
    assert await sweep_at(20) == [report_id]
    level_2 = [
        r
        for r in await rows(sessions, Outbox)
        if r.kind == "escalation" and r.chat_id == WA_KOTA_COORDINATOR
    ]
    [row] = level_2
    assert row.channel == "whatsapp" and row.payload["route"] == "coordinator"
    text = row.payload["reply"]["text"]
    assert text.startswith("⏰ ESKALASI tingkat 2: belum ditangani setelah 20 menit.")
    assert f"TANGANI {filed['ticket']}" in text, "WhatsApp: the words to answer with"
    assert levels == [(report_id, 1), (report_id, 2)]

    kota.now = start + timedelta(minutes=25)
    claimed = await kota.send(f"TANGANI {filed['ticket']}")
    assert texts(claimed) == f"👍 Anda menangani {filed['ticket']}."
    assert await sweep_at(30) == [] and await sweep_at(600) == [], "the claim stops it"
    assert not [r for r in await rows(sessions, Outbox) if r.chat_id == provinsi.user_id]
    assert await steps_of(sessions, report_id) == [
        "escalated level 1: 17.71.08 Kampung Melayu",
        "escalated level 2: 17.71 Kota Bengkulu",
    ]
    [report] = [r for r in await rows(sessions, Report) if r.id == report_id]
    assert report.escalation_level == 2
    assert report.escalated_at == start + timedelta(minutes=10), "the first step's time"


async def test_unclaimed_it_climbs_to_the_top_and_stops_there(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    provinsi = FakeChat(sessions, user_id=4011, name="AKBP Dewi")
    await provinsi.enrol("coordinator", PROVINSI)
    start = cast.reporter.now
    filed = (await cast.reporter.file_report("lainnya")).recorded.filed
    for hours in (1, 2, 3, 4):
        await sweep(sessions, start + timedelta(hours=hours))
    assert await steps_of(sessions, filed["report_id"]) == [
        "escalated level 1: 17.71.08 Kampung Melayu",
        "escalated level 3: 17 Bengkulu",  # nobody in the kota: passed over
        "escalation_end level 3",
    ]
    assert await sweep(sessions, start + timedelta(hours=10)) == []
    assert len(await steps_of(sessions, filed["report_id"])) == 3, "nothing more after the top"


async def test_a_top_level_cap_stops_the_climb(cast: Cast) -> None:
    sessions = cast.reporter.sessions
    provinsi = FakeChat(sessions, user_id=4011, name="AKBP Dewi")
    await provinsi.enrol("coordinator", PROVINSI)
    config = dataclasses.replace(core_config(), escalation_max_level=2)
    filed = (await cast.reporter.file_report("lainnya")).recorded.filed
    for hours in (1, 2, 3):
        await sweep(sessions, cast.reporter.now + timedelta(hours=hours), config)
    assert await steps_of(sessions, filed["report_id"]) == [
        "escalated level 1: 17.71.08 Kampung Melayu",
        "escalation_end level 1",
    ], "the provinsi is above the configured top (2 levels up: the kota, which has nobody)"


async def test_a_report_with_no_one_above_goes_to_its_own_areas_coordinator(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    """Today's bug: 'nobody above it to escalate to' although the area has a coordinator."""
    await load_areas(sessions)
    reporter = FakeChat(sessions)
    await reporter.onboard(WIYONO)
    coordinator = on_whatsapp(sessions, WA_KOTA_COORDINATOR, "Ibu Kades")
    await coordinator.enrol("coordinator", WIYONO)
    filed = (await reporter.file_report("bencana", "Banjir")).recorded.filed
    with caplog.at_level(logging.WARNING):
        assert await sweep(sessions, reporter.now + timedelta(minutes=10)) == [filed["report_id"]]
    assert await targets(sessions, filed["report_id"]) == [
        ("whatsapp", WA_KOTA_COORDINATOR, "coordinator")
    ]
    assert "nobody above" not in caplog.text
