"""Leadership among workers: exactly one process runs a role (the schedules, the sender).

On PostgreSQL a role is a session-level advisory lock held on a dedicated connection, outside
the pool. Every worker keeps such a connection and tries for the lock every ``check_seconds``
(a standby); the holder pings its connection
at the same pace and steps down at once when the connection is lost (the server released the
lock, another worker may already hold it) or a ping stays unanswered for ``PING_TIMEOUT``. A
leader that dies loses its connection, so another worker takes over within ``check_seconds``
(TCP keepalives bound it when the host vanishes). A role with ``yield_to`` is handed to a
standby while this worker also holds that other role, so one crash never takes both.
On SQLite there is one process: it always leads, unless the role is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

from bot.roles.periodic import wait_unless_set
from storage.db import is_sqlite
from storage.locks import others_named, try_lock

log = logging.getLogger(__name__)


# Advisory lock keys (one bigint namespace per database; chosen not to clash with others').
SCHEDULER_LOCK = 0x4B544E_0001  # "KTN" 1: schedules and escalations
SENDER_LOCK = 0x4B544E_0002  # "KTN" 2: the outbox dispatcher
PING_TIMEOUT = 10.0  # seconds a ping of the lock's connection may take before we step down
LeaderJob = Callable[[asyncio.Event], Awaitable[None]]
Listener = Callable[[], None]


def asyncpg_dsn(url: str) -> str:
    """A plain libpq DSN for asyncpg from our SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Leadership:
    """Holds one role's lock while it can, and runs ``job`` only while holding it."""

    url: str
    key: int
    name: str = "scheduler"
    enabled: bool = True
    check_seconds: float = 5.0
    listeners: dict[str, Listener] = field(default_factory=dict)
    on_change: Callable[[bool], None] | None = None
    is_leader: bool = False
    terms: int = 0  # how many times this process became leader
    yield_to: Leadership | None = None  # holding that role too: hand this one to a standby
    yielded: bool = False

    async def run(self, stop: asyncio.Event, job: LeaderJob) -> None:
        """Compete for the role until ``stop``; ``job(step_down)`` runs while leading."""
        if not self.enabled:
            log.info("%s: disabled in this process", self.name)
            await stop.wait()
            return
        if is_sqlite(self.url):
            await self._lead(stop, asyncio.Event(), job)
            return
        while not stop.is_set():
            conn = await self._connect()
            if conn is None:
                await wait_unless_set(stop, self.check_seconds)
                continue
            got = False
            try:
                got = await self._standby(conn, stop)
                if got:
                    await self._hold(conn, stop, job)
            finally:
                await _close(conn)
            if got:
                await wait_unless_set(stop, self.check_seconds)  # let the others take over first

    async def _standby(self, conn: Any, stop: asyncio.Event) -> bool:
        """Try for the lock every interval; False when stopped or the connection failed."""
        while not stop.is_set():
            try:
                if await try_lock(conn, self.key):
                    return True
            except Exception:  # a broken connection: reconnect
                return False
            await wait_unless_set(stop, self.check_seconds)
        return False

    async def _hold(self, conn: Any, stop: asyncio.Event, job: LeaderJob) -> None:
        """Lead on this connection until stopped, the connection is lost, or we yield."""
        lost = asyncio.Event()
        conn.add_termination_listener(_listener(lost.set))
        for channel, callback in self.listeners.items():
            await conn.add_listener(channel, _listener(callback))
        watch = asyncio.create_task(self._watch(conn, lost, stop), name=f"{self.name}:watch")
        try:
            await self._lead(stop, lost, job)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _lead(self, stop: asyncio.Event, lost: asyncio.Event, job: LeaderJob) -> None:
        """Run ``job`` until stop or lost; it sees one event that is set on either."""
        step_down = asyncio.Event()
        relay = asyncio.create_task(_first(stop, lost, step_down))
        self._set(True)
        try:
            await job(step_down)
            await step_down.wait()  # a job that returned early still holds the role
        finally:
            self._set(False)
            relay.cancel()
            step_down.set()
        if lost.is_set() and not stop.is_set() and not self.yielded:
            log.warning("%s: lost the database connection; stepped down", self.name)
        self.yielded = False

    async def _connect(self) -> Any:
        """A dedicated connection for the lock, or None when the database is unreachable."""
        import asyncpg  # type: ignore[import-untyped]  # PostgreSQL only: SQLite never loads it

        try:
            return await asyncio.wait_for(
                asyncpg.connect(
                    asyncpg_dsn(self.url),
                    server_settings={
                        "application_name": self.application_name,
                        "tcp_keepalives_idle": str(max(1, int(self.check_seconds))),
                        "tcp_keepalives_interval": "1",
                        "tcp_keepalives_count": "3",
                    },
                ),
                timeout=PING_TIMEOUT,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("%s: database unreachable (%s)", self.name, exc.__class__.__name__)
            return None

    @property
    def application_name(self) -> str:
        """How this role's connections show in pg_stat_activity (holder and standbys alike)."""
        return f"ktn-bot {self.name}"

    async def _watch(self, conn: Any, lost: asyncio.Event, stop: asyncio.Event) -> None:
        """Ping the lock's connection; a failed or slow ping means the role is lost."""
        while not lost.is_set() and not stop.is_set():
            await wait_unless_set(stop, self.check_seconds)
            if stop.is_set():
                return
            try:
                # Generous: a busy event loop is slow to read the answer, which is no loss.
                standbys = await asyncio.wait_for(
                    others_named(conn, self.application_name), timeout=PING_TIMEOUT
                )
            except Exception:  # any failure: the lock can no longer be trusted
                self.yielded = False
                lost.set()
                return
            if standbys and self.yield_to is not None and self.yield_to.is_leader:
                # This worker also holds the other role: hand this one to a standby worker, so
                # that one crash never takes both roles (a sender dying mid-send may repeat it).
                log.info("%s: handing the role to a standby worker", self.name)
                self.yielded = True
                lost.set()
                return

    def _set(self, leading: bool) -> None:
        if leading == self.is_leader:
            return
        self.is_leader = leading
        if leading:
            self.terms += 1
        log.info("%s: %s", self.name, "leading" if leading else "not leading")
        if self.on_change is not None:
            self.on_change(leading)


def _listener(callback: Listener) -> Callable[..., None]:
    """asyncpg's listener signature around a no-argument callback."""

    def on_notify(*_args: object) -> None:
        callback()

    return on_notify


async def _first(stop: asyncio.Event, lost: asyncio.Event, out: asyncio.Event) -> None:
    """Set ``out`` as soon as either event is set."""
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        out.set()


async def _close(conn: Any) -> None:
    """Close a lock connection (releasing the lock); never raise."""
    try:
        await asyncio.wait_for(conn.close(), timeout=2)
    except Exception:
        conn.terminate()
