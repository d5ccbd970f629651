"""The schedules of one process: reminders and tonight's patrol, on APScheduler 3.

Reminders and patrol rotations are rows; this object turns them into APScheduler jobs with
deterministic ids (``reminder:<id>``, ``patrol:<area id>``) in the area's time zone, at start-up
and whenever they change (``sync``; also every ``resync_seconds`` as a safety net). A job does not
carry the message: it asks the database what is due (``handlers.reminders.send_due``,
``handlers.patrol.announce_due``), which sends each occurrence once however often it runs. So a
restart loses nothing and duplicates nothing: the start-up sweep sends what came due while the
process was down, within ``misfire_grace``, and logs what is older. Start and stop live here
alone: the worker holding the leader role (``bot.roles.leader``) calls ``start``. One reminder
or area that fails is rolled back alone (``handlers.sweep``) and reported to ``on_failure``; the
others go out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import patrol, reminders
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.schedule import Schedule, ScheduleError, parse_time, zone
from handlers.sweep import FailureHook
from storage import patrol as patrol_store
from storage import reminders as reminder_store
from storage.models import Area
from storage.types import DEFAULT_BOT, utcnow

log = logging.getLogger(__name__)

SYNC_JOB = "schedules:sync"


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger for our ``Schedule`` in one time zone."""

    def __init__(self, schedule: Schedule, tz: ZoneInfo) -> None:
        self.schedule = schedule
        self.timezone = tz

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The occurrence after the previous one, or the first at or after ``now``."""
        after = previous_fire_time or now - timedelta(microseconds=1)
        return self.schedule.next_after(after, self.timezone).astimezone(self.timezone)

    def __str__(self) -> str:
        return f"schedule[{self.schedule.spec} {self.timezone.key}]"


class ReminderScheduler:
    """Reminder and patrol jobs for one process; ``start``/``stop`` and ``sync`` after changes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        core: CoreConfig,
        *,
        misfire_grace: timedelta,
        default_tz: str = "Asia/Jakarta",
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        resync_seconds: float = 60.0,
        bot: str = DEFAULT_BOT,
        on_failure: FailureHook | None = None,
    ) -> None:
        self.sessions = sessions
        self.core = core
        self.grace = misfire_grace
        self.default_tz = default_tz
        self.notify = notify
        self.clock = clock
        self.resync_seconds = resync_seconds
        self.bot = bot
        self.on_failure = on_failure
        self.scheduler: AsyncIOScheduler | None = None
        self._specs: dict[str, str] = {}

    def context(self) -> Context:
        """A context on this scheduler's clock."""
        return Context(self.core, now=self.clock(), bot=self.bot)

    async def start(self) -> None:
        """Send what came due while down (within the grace), then schedule every row."""
        self.scheduler = AsyncIOScheduler(timezone=ZoneInfo("UTC"))
        self.scheduler.start()
        await self.sync()
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.resync_seconds,
            id=SYNC_JOB,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        log.info("scheduler started: %d reminder/patrol job(s)", len(self._specs))

    @property
    def running(self) -> bool:
        """Started here (this process leads); only then may a change be synced at once."""
        return self.scheduler is not None

    async def stop(self) -> None:
        """Stop firing (jobs already running finish on their own)."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        self._specs.clear()

    async def run_due(self) -> int:
        """One sweep: every due reminder occurrence and patrol announcement; outbox rows written."""
        async with self.sessions() as session:
            ctx = self.context()
            sweep = await reminders.send_due(
                session,
                ctx,
                grace=self.grace,
                default_tz=self.default_tz,
                on_failure=self.on_failure,
            )
            rows = await patrol.announce_due(
                session,
                ctx,
                grace=self.grace,
                default_tz=self.default_tz,
                on_failure=self.on_failure,
            )
            await session.commit()
        written = len(sweep.outbox_ids) + len(rows)
        if written:
            self.notify()
        return written

    async def sync(self) -> None:
        """Sweep, then make the jobs match the rows (added, changed, paused, deleted)."""
        await self.run_due()
        wanted = await self._wanted()
        if self.scheduler is None:
            return
        for job_id in set(self._specs) - set(wanted):
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.remove_job(job_id)
            del self._specs[job_id]
        for job_id, (schedule, tz) in wanted.items():
            key = f"{schedule.spec} {tz.key}"
            if self._specs.get(job_id) == key:
                continue
            self.scheduler.add_job(
                self._fire,
                ScheduleTrigger(schedule, tz),
                id=job_id,
                name=job_id,
                replace_existing=True,
                misfire_grace_time=max(1, int(self.grace.total_seconds())),
                coalesce=True,
                max_instances=1,
            )
            self._specs[job_id] = key

    async def _wanted(self) -> dict[str, tuple[Schedule, ZoneInfo]]:
        """Job id -> (schedule, zone) for every active reminder and patrol rotation."""
        wanted: dict[str, tuple[Schedule, ZoneInfo]] = {}
        async with self.sessions() as session:
            zones: dict[int, ZoneInfo] = {}

            async def zone_of(area_id: int) -> ZoneInfo:
                if area_id not in zones:
                    area = await session.get(Area, area_id)
                    zones[area_id] = zone(area.timezone if area else None, self.default_tz)
                return zones[area_id]

            for row in await reminder_store.active(session):
                try:
                    schedule = Schedule.from_spec(row.cron)
                except ScheduleError:
                    continue
                wanted[f"reminder:{row.id}"] = (schedule, await zone_of(row.area_id))
            for rota in await patrol_store.active_rotas(session):
                at = parse_time(rota.announce_time)
                if at is not None:
                    schedule = Schedule("daily", at[0], at[1])
                    wanted[f"patrol:{rota.area_id}"] = (schedule, await zone_of(rota.area_id))
        return wanted

    async def _fire(self) -> None:
        """A job's time has come: sweep (it sends exactly what is due, once)."""
        try:
            await self.run_due()
        except Exception:
            log.exception("reminder/patrol sweep failed; the next sync retries")

    def jobs(self) -> dict[str, Any]:
        """Job id -> next run time (for tests and /healthz-style introspection)."""
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
