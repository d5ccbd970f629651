"""The scheduler object and `run`: jobs rebuilt from the rows (deterministic ids, the area's
zone), exactly once across restarts, and a reminder reaching a group through the fake Bot API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SchedulerSettings
from bot.metrics import Metrics
from bot.roles.scheduler import ReminderScheduler, ScheduleTrigger
from bot.sandbox.telegram_fake import TelegramFake
from handlers import reminders as reminder_sweep
from handlers.schedule import parse_schedule
from storage import reminders as store
from storage.areas import get_by_code
from storage.models import Contact, Outbox
from storage.types import Role
from tests.support.chats import FakeChat, core_config, link_group, load_areas, texts
from tests.support.telegram_run import GROUP, bot_running, link_alert_group, settings_for

CSV = """code,name,level,parent_code,timezone
31,Jawa Barat,provinsi,,Asia/Jakarta
31.01,Desa Barat,desa,31,Asia/Jakarta
73,Sulawesi Selatan,provinsi,,Asia/Makassar
73.01,Desa Tengah,desa,73,Asia/Makassar
94,Papua,provinsi,,Asia/Jayapura
94.01,Desa Timur,desa,94,Asia/Jayapura
"""
GROUPS = {"31.01": -101, "73.01": -102, "94.01": -103}
START = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)  # morning in all three zones
GRACE = timedelta(minutes=30)
ZONES = (ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura"))


class Clock:
    """The time the scheduler sees; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def coordinators(sessions: async_sessionmaker[AsyncSession]) -> dict[str, FakeChat]:
    """A coordinator in a WIB, a WITA and a WIT village, each with a daily 19:00 reminder."""
    await load_areas(sessions, CSV)
    people = {}
    for n, (code, chat) in enumerate(GROUPS.items()):
        await link_group(sessions, code, chat_id=chat, title=code)
        person = FakeChat(sessions, user_id=7000 + n, name=f"Lurah {code}")
        await person.enrol(Role.COORDINATOR, code)
        reply = await person.send("/pengingat tambah setiap hari 19:00 | grup | Kerja bakti")
        assert "19:00" in texts(reply)
        people[code] = person
    return people


def scheduler(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, notified: list[int] | None = None
) -> ReminderScheduler:
    return ReminderScheduler(
        sessions,
        core_config(),
        misfire_grace=GRACE,
        clock=clock,
        notify=lambda: (notified if notified is not None else []).append(1),
    )


async def sent(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    async with sessions() as session:
        rows = (await session.scalars(select(Outbox).order_by(Outbox.id))).all()
    return [(r.chat_id, r.dedupe_key or "") for r in rows if r.kind == "reminder"]


async def test_jobs_are_rebuilt_from_rows_in_each_areas_zone(
    sessions: async_sessionmaker[AsyncSession], coordinators: dict[str, FakeChat]
) -> None:
    clock = Clock(START)
    first = scheduler(sessions, clock)
    await first.start()
    try:
        jobs = first.jobs()
        assert set(jobs) == {"reminder:1", "reminder:2", "reminder:3", "schedules:sync"}
        # APScheduler runs on the real clock: the next 19:00 local, whatever today is.
        local = {
            job: jobs[job].astimezone(ZoneInfo(zone)).strftime("%H:%M")
            for job, zone in (
                ("reminder:1", "Asia/Jakarta"),
                ("reminder:2", "Asia/Makassar"),
                ("reminder:3", "Asia/Jayapura"),
            )
        }
        assert set(local.values()) == {"19:00"}
        assert all(jobs[job] - datetime.now(UTC) <= timedelta(days=1) for job in local)
        utc_hours = sorted(jobs[f"reminder:{n}"].astimezone(UTC).hour for n in (1, 2, 3))
        assert utc_hours == [10, 11, 12]

        # Paused in chat: the job goes at the next sync; resumed: it is back.
        await coordinators["73.01"].send("/pengingat jeda 2")
        await first.sync()
        assert "reminder:2" not in first.jobs()
        await coordinators["73.01"].send("/pengingat lanjut 2")
        await first.sync()
        assert "reminder:2" in first.jobs()
    finally:
        await first.stop()
    assert first.jobs() == {}


async def test_each_zone_gets_its_reminder_at_its_own_19_00_once(
    sessions: async_sessionmaker[AsyncSession], coordinators: dict[str, FakeChat]
) -> None:
    clock = Clock(START)
    notified: list[int] = []
    sched = scheduler(sessions, clock, notified)
    for hour, chats in ((10, [-103]), (11, [-103, -102]), (12, [-103, -102, -101])):
        clock.now = datetime(2025, 5, 12, hour, 0, tzinfo=UTC)
        await sched.run_due()
        assert [chat for chat, _ in await sent(sessions)] == chats
    assert len(notified) == 3, "the dispatcher is woken when rows are written"
    await sched.run_due()
    assert len(await sent(sessions)) == 3


async def test_restart_sends_what_was_missed_within_grace_once_and_logs_older(
    sessions: async_sessionmaker[AsyncSession],
    coordinators: dict[str, FakeChat],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Down from 18:00 WIB to 19:20 WIB: WIB's 19:00 is 20 min late (within the grace); WITA's
    # 19:00 was 80 min ago and WIT's 140 min ago (beyond it): skipped and logged.
    clock = Clock(datetime(2025, 5, 12, 12, 20, tzinfo=UTC))
    with caplog.at_level(logging.WARNING, logger="handlers.reminders"):
        first = scheduler(sessions, clock)
        await first.start()
        await first.stop()
    assert [chat for chat, _ in await sent(sessions)] == [-101]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and any("reminder 2" in m for m in skipped)
    # Crash and restart five minutes later: nothing again.
    clock.now += timedelta(minutes=5)
    second = scheduler(sessions, clock)
    await second.start()
    await second.stop()
    assert len(await sent(sessions)) == 1
    # The next evening all three go out as usual.
    for hour in (10, 11, 12):
        clock.now = datetime(2025, 5, 13, hour, 0, tzinfo=UTC)
        await scheduler(sessions, clock).run_due()
    assert sorted(chat for chat, _ in await sent(sessions)) == [-103, -102, -101, -101]


async def test_one_failing_reminder_is_counted_and_the_other_zones_still_get_theirs(
    sessions: async_sessionmaker[AsyncSession],
    coordinators: dict[str, FakeChat],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug hits WITA's reminder (id 2) only: WIT's and WIB's go out in the same sweep, the
    failure is counted in the process's metrics, and later sweeps are not blocked."""
    real_deliver = reminder_sweep.deliver

    async def deliver(session: AsyncSession, ctx: Any, reminder: Any, at: datetime) -> list[int]:
        if reminder.id == 2:
            raise RuntimeError("a bug in one reminder's delivery")
        return await real_deliver(session, ctx, reminder, at)

    monkeypatch.setattr(reminder_sweep, "deliver", deliver)
    metrics = Metrics()
    notified: list[int] = []
    clock = Clock(datetime(2025, 5, 12, 12, 0, tzinfo=UTC))  # 19:00 WIB, 20:00 WITA, 21:00 WIT
    sched = ReminderScheduler(
        sessions,
        core_config(),
        misfire_grace=timedelta(hours=3),  # all three within it
        clock=clock,
        notify=lambda: notified.append(1),
        on_failure=metrics.item_failed,
    )

    def failures() -> float | None:
        return metrics.registry.get_sample_value("ktn_job_item_failures_total", {"job": "reminder"})

    assert await sched.run_due() == 2
    assert sorted(chat for chat, _ in await sent(sessions)) == [-103, -101]
    assert (failures(), notified) == (1, [1])
    clock.now += timedelta(minutes=1)
    assert await sched.run_due() == 0, "the others not twice"
    assert failures() == 2, "reminder 2 tried again (within the grace)"
    monkeypatch.setattr(reminder_sweep, "deliver", real_deliver)  # the fix is deployed
    clock.now += timedelta(minutes=1)
    assert await sched.run_due() == 1
    assert sorted(chat for chat, _ in await sent(sessions)) == [-103, -102, -101]


async def test_apscheduler_runs_the_job_at_the_areas_local_time() -> None:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        for tz in ZONES:
            job = scheduler.add_job(
                print,
                ScheduleTrigger(parse_schedule("setiap Senin 08:00"), tz),
                id=f"reminder:{tz.key}",
                replace_existing=True,
            )
            trigger = job.trigger
            first = trigger.get_next_fire_time(None, START)
            assert first.astimezone(tz).isoformat().startswith("2025-05-19T08:00")
            again = trigger.get_next_fire_time(first, first)
            assert again - first == timedelta(days=7)
    finally:
        scheduler.shutdown(wait=False)


def test_scheduler_settings_default_to_enabled_with_a_grace() -> None:
    settings = SchedulerSettings()
    assert settings.enabled and settings.misfire_grace_minutes == 30


async def test_a_reminder_reaches_the_group_through_the_bot_api_once_across_restarts(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await link_alert_group(sessions)
    now = datetime.now(UTC)
    five_ago = (now - timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Jakarta"))
    coordinator_id = 8001
    async with sessions() as s:
        area = await get_by_code(s, "17.71.08.1004")
        assert area is not None
        s.add(
            Contact(
                channel="telegram",
                external_id=coordinator_id,
                display_name="Ibu Lurah",
                role=Role.COORDINATOR.value,
                area_id=area.id,
                consent_at=now,
                language="id",
            )
        )
        # Added ten minutes ago for 19:00-style "every day at HH:MM", due five minutes ago,
        # while the process was down.
        await store.create(
            s,
            area_id=area.id,
            title="Kerja bakti",
            text="Waktunya kerja bakti",
            words=f"setiap hari {five_ago:%H:%M}",
            spec=f"daily {five_ago:%H:%M}",
            target="groups",
            template=None,
            created_by_id=None,
            now=now - timedelta(minutes=10),
        )
        await s.commit()
    async with TelegramFake() as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(coordinator_id, "Ibu", "Lurah")
        settings = settings_for(fake, migrated_url, tmp_path)
        async with bot_running(fake, settings, sessions):
            message = await fake.wait_for_message(
                GROUP, contains="Waktunya kerja bakti", timeout=10
            )
            assert message.content == "🔔 Waktunya kerja bakti"
        async with bot_running(fake, settings, sessions):
            # The scheduler's start-up sweep runs before the bot takes messages: once this
            # answer arrives, a duplicate would have been queued already.
            fake.send_text(coordinator_id, coordinator_id, "/pengingat")
            listing = await fake.wait_for_message(coordinator_id, contains="#1", timeout=10)
            assert "Kerja bakti" in listing.content
            fake.send_text(coordinator_id, coordinator_id, "/pengingat jeda 1")
            await fake.wait_for_message(coordinator_id, contains="dijeda", timeout=10)
        reminders = [m for m in fake.messages(GROUP) if "kerja bakti" in m.content]
        assert len(reminders) == 1
