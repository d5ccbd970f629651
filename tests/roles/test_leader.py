"""Leadership: one holder of a role at a time, a quick take-over, stepping down at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.roles.leader import SCHEDULER_LOCK, SENDER_LOCK, Leadership, asyncpg_dsn
from storage.db import is_sqlite


@dataclass
class Worker:
    """One leadership competing in this process, with a job that records its terms."""

    leadership: Leadership
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    running_jobs: int = 0
    task: asyncio.Task[None] | None = None

    async def job(self, step_down: asyncio.Event) -> None:
        """A leader-only job: counts itself as running until told to step down."""
        self.running_jobs += 1
        try:
            await step_down.wait()
        finally:
            self.running_jobs -= 1

    def start(self) -> None:
        self.leadership.on_change = lambda _leading: self.changed.set()
        self.task = asyncio.create_task(self.leadership.run(self.stop, self.job))

    async def until(self, leading: bool) -> None:
        """Wait until this worker's leadership is ``leading``."""
        while self.leadership.is_leader != leading:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=30)

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=10)


@contextlib.asynccontextmanager
async def workers(url: str, count: int, **kwargs: object) -> AsyncIterator[list[Worker]]:
    """``count`` competing leaderships for the scheduler role."""
    group = [
        Worker(Leadership(url, SCHEDULER_LOCK, name=f"w{i}", **kwargs))  # type: ignore[arg-type]
        for i in range(count)
    ]
    for w in group:
        w.start()
    try:
        yield group
    finally:
        for w in group:
            await w.close()


async def test_on_sqlite_the_one_process_always_leads(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    async with workers(url, 1) as (w,):
        await w.until(True)
        assert w.running_jobs == 1
    assert w.running_jobs == 0
    assert not w.leadership.is_leader


async def test_a_disabled_scheduler_never_leads(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    async with workers(url, 1, enabled=False) as (w,):
        for _ in range(5):
            await asyncio.sleep(0)
        assert not w.leadership.is_leader
        assert w.running_jobs == 0


async def _terminate(url: str, name: str) -> int:
    """pg_terminate_backend on the lock connection of leadership ``name``; returns how many."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            f"ktn-bot {name}",
        )
    finally:
        await conn.close()
    return len(killed)


async def test_one_leader_and_a_takeover_when_its_connection_is_killed(db_url: str) -> None:
    if is_sqlite(db_url):
        pytest.skip("advisory locks need PostgreSQL (runs in the PostgreSQL pass)")
    async with workers(db_url, 2, check_seconds=0.5) as group:
        while not any(w.leadership.is_leader for w in group):
            waits = {asyncio.ensure_future(w.changed.wait()) for w in group}
            await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
        leader, other = group if group[0].leadership.is_leader else group[::-1]
        assert (leader.running_jobs, other.running_jobs) == (1, 0)

        assert await _terminate(db_url, leader.leadership.name) == 1
        await leader.until(False)  # steps down at once: its job is stopped
        assert leader.running_jobs == 0
        await other.until(True)
        assert other.running_jobs == 1
        assert leader.running_jobs + other.running_jobs == 1  # never both at once

        # the old leader competes again but cannot take the lock while the new one holds it
        await asyncio.sleep(3 * leader.leadership.check_seconds)
        assert not leader.leadership.is_leader
        assert other.leadership.terms == 1


async def test_two_workers_end_up_holding_one_role_each(db_url: str) -> None:
    if is_sqlite(db_url):
        pytest.skip("advisory locks need PostgreSQL (runs in the PostgreSQL pass)")
    changed = asyncio.Event()
    pairs = []
    for _ in range(2):  # each worker: a sender role, and a scheduler role that yields to it
        sender = Leadership(db_url, SENDER_LOCK, name="sender", check_seconds=0.3)
        scheduler = Leadership(
            db_url, SCHEDULER_LOCK, name="scheduler", check_seconds=0.3, yield_to=sender
        )
        for role in (sender, scheduler):
            role.on_change = lambda _leading: changed.set()
        pairs.append((sender, scheduler))
    stop = asyncio.Event()

    async def idle(step_down: asyncio.Event) -> None:
        await step_down.wait()

    tasks = [asyncio.create_task(role.run(stop, idle)) for pair in pairs for role in pair]
    try:
        while not (
            sum(s.is_leader for s, _ in pairs) == 1
            and sum(c.is_leader for _, c in pairs) == 1
            and not any(s.is_leader and c.is_leader for s, c in pairs)
        ):
            changed.clear()
            await asyncio.wait_for(changed.wait(), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
