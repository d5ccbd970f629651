"""aiosqlite's connection, run on the event loop's own thread (the SQLite driver of the engine).

aiosqlite sends every call to a worker thread and back. A transaction of the conversation core
makes about fifteen such round trips, and on a busy event loop each one waits its turn behind
every other ready task: measured under the P1 load, a 5 ms transaction held SQLite's single
write lock for ~30 ms, and the lock, not the CPU, bounded throughput. Here statements run
inline: once begun, a transaction runs to its commit without yielding to the loop, so the lock
is held only as long as the work takes (indexed statements take microseconds).

The one statement that may have to wait is ``BEGIN IMMEDIATE`` (another process, or another
engine in this process, writing). It is tried at once with no busy wait; when the database is
locked it waits in a thread with the configured busy timeout, so the loop never blocks on a
lock. What still runs on the loop's thread is the work itself: a query over a whole year of
reports (an export) pauses other chats for as long as it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the waiting caller, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An ``aiosqlite.Connection`` without its thread (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]
        self.busy_timeout_ms = busy_timeout_ms

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and args[0].lstrip().upper().startswith("BEGIN"):
            return await self._begin(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _begin(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """BEGIN at once if the database is free, else wait for it in a thread."""
        try:
            return fn(*args, **kwargs)  # busy_timeout is 0 here: "locked" at once, no blocking
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        waiting = asyncio.ensure_future(asyncio.to_thread(self._begin_waiting, fn, args, kwargs))
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread cannot be stopped: let its BEGIN end, then undo it, so the connection
            # goes back to the pool outside any transaction (and no rollback races the thread).
            with contextlib.suppress(Exception):
                await waiting
                self._conn.rollback()
            raise

    def _begin_waiting(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        try:
            return fn(*args, **kwargs)
        finally:
            conn.execute("PRAGMA busy_timeout=0")


async def connect(database: str, busy_timeout_ms: int) -> InlineConnection:
    """An inline connection to the database file (or ``file:`` URI); busy_timeout 0."""

    def connector() -> sqlite3.Connection:
        conn = sqlite3.connect(
            database,
            isolation_level=None,  # SQLAlchemy's "begin" event decides when transactions begin
            check_same_thread=False,  # BEGIN may wait in a thread (see InlineConnection._begin)
            uri=database.startswith("file:"),
        )
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    connection = InlineConnection(connector, busy_timeout_ms)
    await connection._connect()  # aiosqlite's own step, without the thread
    return connection
