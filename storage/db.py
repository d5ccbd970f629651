"""Engine and session factory for SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from storage.sqlite_inline import connect as sqlite_inline_connect

Sessions: TypeAlias = async_sessionmaker[AsyncSession]
"""The session factory, as the rest of the program names it (no SQLAlchemy import needed)."""


def is_sqlite(url: str) -> bool:
    """Whether the URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(
    url: str,
    *,
    echo: bool = False,
    busy_timeout_ms: int = 10_000,
    pool_size: int = 10,
    sqlite_inline: bool = True,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE, and
    (``sqlite_inline``) runs its statements on the event loop's thread (storage.sqlite_inline)."""
    if is_sqlite(url):
        _ensure_sqlite_folder(url)
        inline: dict[str, Any] = {}
        if sqlite_inline:
            database = make_url(url).database or ":memory:"
            inline["async_creator"] = partial(sqlite_inline_connect, database, busy_timeout_ms)
        # A small pool: opening an SQLite connection (and its pragmas) per message halves
        # throughput; writers are serialised by BEGIN IMMEDIATE anyway.
        engine = create_async_engine(
            url, echo=echo, pool_size=5, max_overflow=10, hide_parameters=True, **inline
        )
        _configure_sqlite(engine, busy_timeout_ms, busy_wait=not sqlite_inline)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,  # errors must not log what people wrote (names, numbers, stories)
    )


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int, *, busy_wait: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if busy_wait:  # inline connections keep 0 and wait for BEGIN in a thread instead
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    queue = _WriterQueue(busy_timeout_ms / 1000)
    holders: set[int] = set()  # pool records whose connection holds the turn (records persist)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Queue in asyncio first: SQLite's own busy handler *sleeps* (1, 2, 5 ... 100 ms) between
        # tries, so writers waiting on it idle long after the lock is free. Then take the write
        # lock up front: a deferred transaction that reads and then writes can fail with
        # "database is locked" without waiting for busy_timeout.
        record = connection.connection._connection_record  # what "checkin" is given
        if id(record) not in holders:
            await_only(queue.acquire())
            holders.add(id(record))
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # The connection is back in the pool (even after an invalidation): its transaction has
        # committed or rolled back.
        if id(record) in holders:
            holders.discard(id(record))
            queue.release()


class _WriterQueue:
    """One process's SQLite transactions, one at a time, woken in order when the lock frees."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self) -> None:
        """Wait for this process's turn; "database is locked" after busy_timeout, as SQLite."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # an engine reused on a new loop
            self._lock, self._loop = asyncio.Lock(), loop
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a task's cancellation
            # when the lock was granted at the same moment (the task would run on, uncancelled).
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("BEGIN IMMEDIATE", None, locked) from None

    def release(self) -> None:
        """Hand the turn to the next waiting transaction."""
        if self._lock is not None and self._lock.locked():
            self._lock.release()


def session_factory(engine: AsyncEngine) -> Sessions:
    """Sessions that keep loaded values after commit (no lazy I/O behind the caller's back)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(conn: AsyncConnection) -> None:
    """A trivial query: raises when the database does not answer."""
    await conn.execute(text("SELECT 1"))
