"""What the two roles do while a worker holds them: the leader's periodic duties (reminders and
patrol through the scheduler, escalations, recaps, problem actions' reminders and suggestions,
retention, the media store's sweep) and the sender's dispatching."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.config import (
    Settings,
)
from bot.database import Database
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.waker import Notifier
from bot.media.library import MediaLibrary
from bot.metrics import Metrics
from bot.roles.leader import LeaderJob
from bot.roles.periodic import Periodic, wait_unless_set
from bot.roles.recaps import RecapJob
from bot.roles.retention import Purger
from bot.roles.scheduler import ReminderScheduler
from handlers import board
from handlers.claims import offer_back_idle
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.escalation import escalate_due
from handlers.problems import remind_due, suggest_everywhere
from handlers.states import State
from handlers.sweep import ItemFailure
from storage.outbox import release_claims
from storage.types import utcnow

log = logging.getLogger(__name__)
RETENTION_SECONDS = 3600.0  # how often the leader forgets what is no longer needed
BOARD_SWEEP_SECONDS = 15.0  # how often the leader closes report boards a surge left behind


def make_escalation_job(
    db: Database, core: CoreConfig, dispatcher: Notifier, metrics: Metrics, *, page: int = 100
) -> Callable[[], Awaitable[None]]:
    """One escalation sweep: reports unclaimed past their time go up one more level.

    A page at a time, each its own transaction, while a page makes progress: escalates a report
    or meets a failing one not seen yet in this sweep (set aside, so the next page gets past it).
    Every page removes a report from the due ones or adds one to the failed ones, so the sweep
    ends even when setting a failed report aside fails too.
    """

    async def sweep() -> None:
        failures: list[ItemFailure] = []
        failed: set[str] = set()  # the reports that failed in this sweep

        def on_failure(failure: ItemFailure) -> None:
            metrics.item_failed(failure)
            failures.append(failure)

        while True:
            before = len(failures)
            steps: list[int] = []

            def on_step(_report: int, level: int, taken: list[int] = steps) -> None:
                taken.append(level)

            async with db.sessions() as session:
                escalated = await escalate_due(
                    session,
                    Context(config=core, now=utcnow()),
                    limit=page,
                    on_failure=on_failure,
                    on_step=on_step,
                )
                await session.commit()
            for level in steps:  # counted once committed
                metrics.escalations.labels(level=str(level)).inc()
            if escalated:
                dispatcher.notify()
                log.info("escalated %d report(s)", len(escalated))
            new = {f.item for f in failures[before:]} - failed
            failed |= new
            if not escalated and not new:
                return

    return sweep


def make_claims_job(
    db: Database, core: CoreConfig, dispatcher: Notifier, metrics: Metrics, *, page: int = 100
) -> Callable[[], Awaitable[None]]:
    """One sweep of idle claims: each is offered back to the officers (``handlers.claims``),
    a page per transaction while a page offers something back."""

    async def sweep() -> None:
        while True:
            async with db.sessions() as session:
                offered = await offer_back_idle(
                    session,
                    Context(config=core, now=utcnow()),
                    limit=page,
                    on_failure=metrics.item_failed,
                )
                await session.commit()
            if not offered:
                return
            metrics.claims_offered_back.inc(len(offered))
            dispatcher.notify()
            log.info("offered back %d idle claim(s)", len(offered))

    return sweep


def make_problem_reminders_job(
    db: Database, core: CoreConfig, dispatcher: Notifier, metrics: Metrics, *, page: int = 100
) -> Callable[[], Awaitable[None]]:
    """Remind the owners of problem actions whose time has come (``handlers.problems``), a
    page per transaction while a page reminds someone; each reminder once, whatever the
    restarts and workers (claimed with its outbox row)."""

    async def sweep() -> None:
        while True:
            async with db.sessions() as session:
                sent = await remind_due(
                    session,
                    Context(config=core, now=utcnow()),
                    limit=page,
                    on_failure=metrics.item_failed,
                )
                await session.commit()
            if not sent:
                return
            dispatcher.notify()
            log.info("reminded %d problem action owner(s)", len(sent))

    return sweep


def make_suggestions_job(db: Database, core: CoreConfig) -> Callable[[], Awaitable[None]]:
    """Propose problems where reports recur (``[problems] suggest_min_reports`` in
    ``suggest_days``): staff see them in /masalah, the recap and the desk."""

    async def sweep() -> None:
        async with db.sessions() as session:
            made = await suggest_everywhere(session, Context(config=core, now=utcnow()))
            await session.commit()
        if made:
            log.info("proposed %d problem suggestion(s)", len(made))

    return sweep


def make_board_job(
    db: Database, core: CoreConfig, dispatcher: Notifier
) -> Callable[[], Awaitable[None]]:
    """Close the groups' report boards nothing went onto for a whole group window: their last
    edit says the queue is back to normal (``handlers.board.sweep``)."""

    async def sweep() -> None:
        async with db.sessions() as session:
            closed = await board.sweep(session, Context(config=core, now=utcnow()))
            await session.commit()
        if closed:
            dispatcher.notify()

    return sweep


# Report drafts expire when idle (handlers.core): their files go with them.
EXPIRING_DRAFTS = tuple(state.value for state in State if state.in_report)


def make_media_job(
    library: MediaLibrary, grace: timedelta, draft_idle: timedelta
) -> Callable[[], Awaitable[None]]:
    """Delete stored files that nothing has needed for ``grace``: no report, broadcast or
    draft refers to them (an idle report draft counts as expired), no message holds them."""

    async def sweep() -> None:
        deleted = await library.sweep(
            grace, idle_before=utcnow() - draft_idle, expiring_states=EXPIRING_DRAFTS
        )
        if deleted:
            log.info("deleted %d stored file(s) nothing refers to", deleted)

    return sweep


def make_leader_duties(
    settings: Settings,
    db: Database,
    core: CoreConfig,
    waker: Notifier,
    metrics: Metrics,
    reminders: ReminderScheduler | None,
    media: MediaLibrary | None = None,
) -> LeaderJob:
    """What only the leader does, while it leads: reminders and patrol, escalations, recaps,
    retention, and the media store's sweep."""
    escalations = Periodic(
        "escalations",
        settings.reports.escalation_check_seconds,
        make_escalation_job(db, core, waker, metrics),
    )
    claims = Periodic(
        "claims",
        settings.reports.escalation_check_seconds,
        make_claims_job(db, core, waker, metrics),
    )
    recaps = RecapJob(
        db.sessions,
        core,
        waker.notify,
        hour=settings.scheduler.recap_hour,
        on_failure=metrics.item_failed,
    )
    recap_job = Periodic("recaps", RecapJob.INTERVAL, recaps.run_once)
    purger = Purger(
        db,
        settings.retention,
        core.catalog.text(core.default_language, "retention.purged_description"),
        metrics=metrics,
        media=media,
    )
    retention_job = Periodic("retention", RETENTION_SECONDS, purger.run_once)

    problem_reminders = Periodic(
        "problem_reminders",
        settings.problems.check_seconds,
        make_problem_reminders_job(db, core, waker, metrics),
    )
    suggestions = Periodic(
        "problem_suggestions",
        settings.problems.suggest_check_seconds,
        make_suggestions_job(db, core),
    )

    jobs = [escalations, claims, recap_job, retention_job, problem_reminders, suggestions]
    if core.board_after_seconds is not None:
        jobs.append(Periodic("boards", BOARD_SWEEP_SECONDS, make_board_job(db, core, waker)))
    if media is not None:
        jobs.append(
            Periodic(
                "media",
                settings.media.sweep_seconds,
                make_media_job(
                    media,
                    timedelta(hours=settings.media.orphan_grace_hours),
                    timedelta(minutes=settings.reports.draft_idle_minutes),
                ),
            )
        )

    async def duties(step_down: asyncio.Event) -> None:
        purger.stop = step_down  # a long purge ends at its next batch when the role ends
        if reminders is not None:  # its first sweep queues what came due while nobody led
            await reminders.start()
        try:
            await asyncio.gather(*(job.run(step_down) for job in jobs))
        finally:
            if reminders is not None:
                await reminders.stop()

    return duties


def make_sender_job(db: Database, dispatcher: Dispatcher, shared: bool, grace: float) -> LeaderJob:
    """The sender role: dispatch, and take over what a previous sender left claimed.

    On PostgreSQL rows still claimed after a grace period were a dead worker's (one that merely
    lost its role records its sends in hand meanwhile). SQLite serves one process, so a row
    still claimed when this process starts sending was claimed by one that died (SIGKILL, a
    power cut): it is taken over at once, not after its lease (two minutes of a report's alert
    waiting, found by the reliability suite's R1).
    """
    wait = grace if shared else 0.0

    async def take_over(step_down: asyncio.Event) -> None:
        await wait_unless_set(step_down, wait)
        if step_down.is_set():
            return
        async with db.sessions() as session:
            taken = await release_claims(session, keep=dispatcher.worker_id)
            await session.commit()
        if taken:
            log.info("took over %d message(s) a previous sender had claimed", taken)
            dispatcher.notify()

    async def send(step_down: asyncio.Event) -> None:
        orphans = asyncio.create_task(take_over(step_down))
        try:
            await dispatcher.run(step_down)
        finally:
            orphans.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await orphans

    return send
