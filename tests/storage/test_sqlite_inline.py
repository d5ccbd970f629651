"""SQLite statements on the event loop's thread: BEGIN never blocks the loop on a lock held
elsewhere, a cancelled wait leaves the connection clean, and the thread driver still works."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import create_engine, session_factory


@pytest.fixture(params=[True, False], ids=["inline", "thread"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}",
        busy_timeout_ms=3_000,
        sqlite_inline=request.param,
    )
    async with eng.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE notes (body TEXT)")
    yield eng
    await eng.dispose()


@pytest.fixture
def other_writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection to the same file (a CLI command, a backup tool)."""
    conn = sqlite3.connect(tmp_path / "lock.db", isolation_level=None, check_same_thread=False)
    yield conn
    conn.close()


async def add_note(sessions: async_sessionmaker[AsyncSession], body: str) -> None:
    async with sessions() as s:
        await s.execute(text("INSERT INTO notes VALUES (:b)"), {"b": body})
        await s.commit()


async def notes(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(text("SELECT body FROM notes ORDER BY rowid"))).all())


async def test_a_write_waits_for_another_writer_while_the_bot_keeps_answering(
    engine: AsyncEngine, other_writer: sqlite3.Connection
) -> None:
    """Someone else holds the write lock: our write waits, other chats go on, then it lands."""
    sessions = session_factory(engine)
    other_writer.execute("BEGIN IMMEDIATE")
    other_writer.execute("INSERT INTO notes VALUES ('theirs')")
    waiting = asyncio.create_task(add_note(sessions, "ours"))
    for _ in range(20):  # the loop runs other work meanwhile (a blocking wait would stop it)
        await asyncio.sleep(0)
    assert not waiting.done()
    other_writer.execute("COMMIT")
    await asyncio.wait_for(waiting, timeout=10)
    assert await notes(sessions) == ["theirs", "ours"]


async def test_a_write_waiting_past_the_busy_timeout_is_told_database_is_locked(
    tmp_path: Path, other_writer: sqlite3.Connection
) -> None:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}", busy_timeout_ms=200)
    sessions = session_factory(eng)
    try:
        other_writer.execute("CREATE TABLE notes (body TEXT)")
        other_writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            await add_note(sessions, "ours")
        other_writer.execute("ROLLBACK")
        await add_note(sessions, "later")  # the connection went back to the pool clean
        assert await notes(sessions) == ["later"]
    finally:
        await eng.dispose()


async def test_a_write_cancelled_while_waiting_leaves_no_transaction_behind(
    engine: AsyncEngine, other_writer: sqlite3.Connection
) -> None:
    """A cancelled wait (a shutdown, a client gone) must not leave its BEGIN holding the lock."""
    sessions = session_factory(engine)
    other_writer.execute("BEGIN IMMEDIATE")
    waiting = asyncio.create_task(add_note(sessions, "never"))
    for _ in range(20):
        await asyncio.sleep(0)
    waiting.cancel()
    other_writer.execute("COMMIT")  # its BEGIN may now succeed in its thread: it must be undone
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other_writer.execute("BEGIN IMMEDIATE")  # nobody holds the lock: no wait
    other_writer.execute("COMMIT")
    await add_note(sessions, "next")
    assert await notes(sessions) == ["next"]
