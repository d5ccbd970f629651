"""The leader's problem-action reminders (bot.roles.duties) reach each owner exactly once: two
workers sweeping at the same moment, a worker that died mid-sweep (its transaction never
committed) and a restart (a new process with a new engine) send no reminder twice and lose
none. Each worker is its own engine and connection pool, as separate processes would be; on
PostgreSQL (KTN_TEST_DATABASE_URL) their transactions really race."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.database import Database
from bot.metrics import Metrics
from bot.roles.duties import make_problem_reminders_job
from handlers.context import Context
from handlers.problems import remind_due
from storage import problems as store
from storage.db import create_engine, session_factory
from storage.models import Area, Contact, Outbox, ProblemAction
from storage.types import utcnow
from tests.support.chats import core_config

ACTIONS = 40
OWNERS = 4


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def notify(self) -> None:
        self.woken += 1


def worker(url: str) -> Database:
    engine = create_engine(url)
    return Database(engine, session_factory(engine))


async def seed(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """A problem of one kelurahan with ACTIONS actions, all due to be reminded now."""
    now = utcnow()
    async with sessions() as s:
        area = Area(code="17.71.08.1004", name="Sumber Jaya", level="kelurahan")
        s.add(area)
        await s.flush()
        owners = [
            Contact(
                channel="telegram",
                external_id=9000 + n,
                role="officer",
                area_id=area.id,
                consent_at=now,
                display_name=f"Petugas {n}",
            )
            for n in range(OWNERS)
        ]
        s.add_all(owners)
        await s.flush()
        problem = await store.create(
            s, area_id=area.id, pillar="keamanan", title="Curanmor", created_by_id=None, now=now
        )
        ids = []
        for n in range(ACTIONS):
            action = await store.add_action(
                s,
                problem,
                f"Tindakan {n}",
                owner_id=owners[n % OWNERS].id,
                due_at=now + timedelta(hours=1),
                remind_at=now - timedelta(minutes=n),
                created_by_id=None,
                now=now - timedelta(hours=1),
            )
            ids.append(action.id)
        await s.commit()
    return ids


async def reminders(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        found = await s.scalars(select(Outbox).where(Outbox.kind == "problem"))
        return list(found.all())


async def test_each_owner_is_reminded_exactly_once_across_workers_and_a_restart(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await seed(sessions)
    core = core_config()

    # A worker dies in the middle of a sweep: it claimed some reminders, never committed.
    dying = worker(migrated_url)
    async with dying.sessions() as s:
        claimed = await remind_due(s, Context(core, now=utcnow()), limit=5)
        assert len(claimed) == 5
        await s.rollback()
    await dying.close()
    assert await reminders(sessions) == []

    # Two workers sweep at once, each several times, in pages smaller than the work.
    first, second = worker(migrated_url), worker(migrated_url)
    wakers = [Waker(), Waker()]
    jobs = [
        make_problem_reminders_job(db, core, waker, Metrics(), page=7)
        for db, waker in zip((first, second), wakers, strict=True)
    ]
    await asyncio.gather(*(job() for job in jobs * 3))
    await first.close()
    await second.close()

    # A restart: a new process, a new engine, the same sweep.
    restarted = worker(migrated_url)
    again = Waker()
    await make_problem_reminders_job(restarted, core, again, Metrics())()
    await restarted.close()

    sent = await reminders(sessions)
    per_action = Counter(int(row.payload["action_id"]) for row in sent)
    assert sorted(per_action) == sorted(ids) and set(per_action.values()) == {1}
    assert len({row.dedupe_key for row in sent}) == ACTIONS
    assert Counter(row.chat_id for row in sent) == {
        9000 + n: ACTIONS // OWNERS for n in range(OWNERS)
    }
    assert again.woken == 0, "the restarted worker had nothing left to send"
    assert sum(w.woken for w in wakers) >= 1
    async with sessions() as s:
        actions = (await s.scalars(select(ProblemAction))).all()
    assert all(a.reminded_at is not None for a in actions)


async def test_a_done_action_is_not_reminded(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await seed(sessions)
    now = utcnow()
    async with sessions() as s:
        action = await store.get_action(s, ids[0])
        assert action is not None
        await store.mark_done(s, action, actor_id=None, now=now)
        await s.commit()
    db = worker(migrated_url)
    await make_problem_reminders_job(db, core_config(), Waker(), Metrics())()
    await db.close()
    sent = await reminders(sessions)
    assert len(sent) == ACTIONS - 1
    assert ids[0] not in {int(r.payload["action_id"]) for r in sent}
