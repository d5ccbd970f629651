"""The outbox dispatcher: sends every message that must not be lost, exactly as the rows say.

Rows are written by the core in the same transaction as the change that caused them. The
dispatcher claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write
lock does the same), sends them per chat in order, within each channel's flood limits, and
records the result: sent, retried later with backoff (honouring ``retry_after``), or given up with
the reason. A row whose lease ran out (a crashed worker) is claimed again, so delivery is
at-least-once; a row marked sent is never sent again.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics
from storage.groups import migrate_chat
from storage.models import Contact, Outbox
from storage.types import OutboxKind, OutboxStatus, utcnow

log = logging.getLogger(__name__)

ChatKey = tuple[str, str, int]  # channel, bot, chat id


@dataclass(frozen=True, slots=True)
class Envelope:
    """One claimed outbox row, as a sender sees it."""

    id: int
    channel: str
    bot: str
    chat_id: int
    kind: str
    payload: dict[str, Any]
    contact_id: int | None
    attempts: int
    edit_target: str | None = None

    @property
    def key(self) -> ChatKey:
        return (self.channel, self.bot, self.chat_id)


class SendError(Exception):
    """A send that did not go through, and what to do about it."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        blocked: bool = False,
        migrated_to: int | None = None,
        final_status: OutboxStatus | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.blocked = blocked
        self.migrated_to = migrated_to
        self.final_status = final_status


class Sender(Protocol):
    """A channel's way of delivering one envelope; returns the channel's message id."""

    async def send(self, envelope: Envelope) -> str | None: ...


class SlidingWindow:
    """At most ``limit`` messages in any ``period`` seconds, as the receiving server counts them.

    A message occupies the window from the moment it is sent until its answer arrives, and is
    then counted at its completion time. The server saw it somewhere in between, so spacing the
    next sends from completion times keeps within the limit whatever the network jitter.
    """

    __slots__ = ("_done", "in_flight", "limit", "paused_until", "period")

    def __init__(self, limit: int, period: float, margin: float = 0.005) -> None:
        self.limit = max(1, limit)
        self.period = period + margin
        self._done: deque[float] = deque()
        self.in_flight = 0
        self.paused_until = 0.0

    def next_free(self, now: float) -> float:
        """The earliest time another send may start (``inf``: wait for a send to complete)."""
        while self._done and self._done[0] <= now - self.period:
            self._done.popleft()
        if len(self._done) + self.in_flight < self.limit:
            free = now
        elif self._done:
            free = self._done[0] + self.period
        else:
            free = math.inf
        return max(free, self.paused_until)

    def start(self) -> None:
        """A send begins."""
        self.in_flight += 1

    def finish(self, now: float) -> None:
        """A send's answer arrived at ``now``."""
        self.in_flight -= 1
        self._done.append(now)

    def pause(self, until: float) -> None:
        """Allow nothing before ``until`` (a channel's retry_after)."""
        self.paused_until = max(self.paused_until, until)


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Flood limits of one channel, per bot/sender: (messages, seconds) windows."""

    overall_window: tuple[int, float]
    group_window: tuple[int, float] | None = None
    chat_window: tuple[int, float] | None = None

    @classmethod
    def rates(
        cls,
        per_second: float,
        group_per_minute: float | None = None,
        chat_per_second: float | None = None,
    ) -> ChannelLimits:
        """Limits from rates as Telegram states them (30/s, 20/min per group, 1/s per chat)."""
        return cls(
            _as_window(per_second, 1.0),
            _as_window(group_per_minute / 60.0, 60.0) if group_per_minute else None,
            _as_window(chat_per_second, 1.0) if chat_per_second else None,
        )

    def overall(self) -> SlidingWindow:
        return SlidingWindow(*self.overall_window)

    def for_chat(self, chat_id: int) -> SlidingWindow | None:
        window = self.group_window if chat_id < 0 else self.chat_window
        return SlidingWindow(*window) if window else None


def _as_window(rate: float, period: float) -> tuple[int, float]:
    """A rate per period as (count, seconds); rates below one per period stretch the period."""
    if rate * period >= 1:
        return (round(rate * period), period)
    return (1, 1.0 / rate)


@dataclass(slots=True)
class _Result:
    envelope: Envelope
    external_id: str | None = None
    error: SendError | None = None


@dataclass
class Dispatcher:
    """Claims due outbox rows and sends them through the channel senders."""

    sessions: async_sessionmaker[AsyncSession]
    senders: Mapping[str, Sender]
    limits: Mapping[str, ChannelLimits]
    metrics: Metrics = field(default_factory=Metrics)
    max_attempts: int = 8
    sweep_seconds: float = 5.0
    batch_size: int = 500
    concurrency: int = 32
    lease_seconds: float = 120.0
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._overall: dict[tuple[str, str], SlidingWindow] = {}
        self._chats: dict[ChatKey, SlidingWindow | None] = {}

    def notify(self) -> None:
        """New rows were committed: wake up now instead of at the next sweep."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; sweep every ``sweep_seconds`` for retries and crashes."""
        log.info("outbox dispatcher %s started", self.worker_id)
        while not stop.is_set():
            self._wake.clear()
            try:
                sent = await self.drain_once(stop)
            except Exception:
                log.exception("outbox batch failed; retrying after a sweep interval")
                sent = 0
            if sent == 0 and not stop.is_set():
                await _wait_any(stop, self._wake, self.sweep_seconds)
        log.info("outbox dispatcher %s stopped", self.worker_id)

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Send everything due now (tests, one-shot CLI use); returns how many rows were handled."""
        total = 0
        while (handled := await self.drain_once(stop)) > 0:
            total += handled
        return total

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim one batch and send it; returns how many rows were handled."""
        batch = await self._claim()
        if not batch:
            await self._update_depth()
            return 0
        ready, deferred = await self._resolve_edit_targets(batch)
        results = await self._send_batch(ready, stop or asyncio.Event())
        handled = {r.envelope.id for r in results}
        await self._record(results, deferred, [e for e in ready if e.id not in handled])
        return len(batch)

    async def _claim(self) -> list[Envelope]:
        """Lease up to batch_size due rows (pending and due, or sending with an expired lease)."""
        now = self.wall()
        due = or_(
            (Outbox.status == OutboxStatus.PENDING) & (Outbox.next_attempt_at <= now),
            (Outbox.status == OutboxStatus.SENDING) & (Outbox.lease_until < now),
        )
        ids = (
            select(Outbox.id)
            .where(due)
            .order_by(Outbox.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(ids.scalar_subquery()))
                    .values(
                        status=OutboxStatus.SENDING,
                        lease_until=now + timedelta(seconds=self.lease_seconds),
                        claimed_by=self.worker_id,
                    )
                    .returning(
                        Outbox.id,
                        Outbox.channel,
                        Outbox.bot,
                        Outbox.chat_id,
                        Outbox.kind,
                        Outbox.payload,
                        Outbox.contact_id,
                        Outbox.attempts,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            await session.commit()
        envelopes = [
            Envelope(r.id, r.channel, r.bot, r.chat_id, r.kind, r.payload, r.contact_id, r.attempts)
            for r in rows
        ]
        envelopes.sort(key=lambda e: e.id)
        return envelopes

    async def _resolve_edit_targets(
        self, batch: list[Envelope]
    ) -> tuple[list[Envelope], list[tuple[Envelope, datetime]]]:
        """Give each edit the message id of the message it edits; defer it until that is sent."""
        edit_of = {
            e.id: int(e.payload["edit_of"]) for e in batch if e.kind == OutboxKind.ALERT_EDIT
        }
        if not edit_of:
            return batch, []
        async with self.sessions() as session:
            originals = {
                r.id: r
                for r in (
                    await session.execute(
                        select(
                            Outbox.id, Outbox.status, Outbox.external_id, Outbox.next_attempt_at
                        ).where(Outbox.id.in_(set(edit_of.values())))
                    )
                ).all()
            }
        # Only the newest edit of a message matters; older ones are superseded.
        newest: dict[int, int] = {}
        for env_id, target_id in edit_of.items():
            newest[target_id] = max(newest.get(target_id, 0), env_id)
        ready: list[Envelope] = []
        deferred: list[tuple[Envelope, datetime]] = []
        superseded: list[_Result] = []
        for env in batch:
            if env.id not in edit_of:
                ready.append(env)
                continue
            original = originals.get(edit_of[env.id])
            if newest[edit_of[env.id]] != env.id:
                superseded.append(_Result(env, None))
            elif original is not None and original.external_id:
                ready.append(_with_target(env, original.external_id))
            elif original is None or original.status in (
                OutboxStatus.FAILED,
                OutboxStatus.NEEDS_TEMPLATE,
            ):
                superseded.append(
                    _Result(env, error=SendError("original message was never sent", permanent=True))
                )
            else:  # try again when the original is due (it goes first: lower id)
                deferred.append((env, original.next_attempt_at))
        if superseded:
            await self._record(superseded, [], [])
        return ready, deferred

    async def _send_batch(self, batch: list[Envelope], stop: asyncio.Event) -> list[_Result]:
        """Send per chat in order, several chats at once, within every flood limit."""
        queues: dict[ChatKey, deque[Envelope]] = {}
        for env in batch:
            queues.setdefault(env.key, deque()).append(env)
        heap: list[tuple[float, int, ChatKey]] = []
        seq = 0
        now = self.monotonic()
        for key in queues:
            heapq.heappush(heap, (self._chat_free(key, now), seq, key))
            seq += 1
        results: list[_Result] = []
        in_flight: set[asyncio.Task[None]] = set()
        done_event = asyncio.Event()

        async def send_one(env: Envelope, windows: list[SlidingWindow]) -> None:
            try:
                result = await self._send(env)
            finally:
                finished = self.monotonic()
                for window in windows:
                    window.finish(finished)
            results.append(result)
            queue = queues[env.key]
            if result.error is not None and not result.error.permanent and queue:
                # Keep this chat's order: what follows a failed row waits for the next round.
                queue.clear()
            if result.error is not None and result.error.retry_after:
                self._pause(env, result.error.retry_after)
            if queue:
                nonlocal seq
                now = self.monotonic()
                heapq.heappush(heap, (min(self._chat_free(env.key, now), now + 0.02), seq, env.key))
                seq += 1
            done_event.set()

        while (heap or in_flight) and not stop.is_set():
            now = self.monotonic()
            if heap and len(in_flight) < self.concurrency and heap[0][0] <= now:
                _, _, key = heapq.heappop(heap)
                env = queues[key][0]
                overall = self._overall_window(env)
                free = max(overall.next_free(now), self._chat_free(key, now))
                if free > now:
                    # inf: every slot is in flight; look again shortly (a completion wakes us too)
                    heapq.heappush(heap, (min(free, now + 0.02), seq, key))
                    seq += 1
                    continue
                queues[key].popleft()
                windows = [overall]
                chat_window = self._chat_window(key)
                if chat_window is not None:
                    windows.append(chat_window)
                for window in windows:
                    window.start()
                task = asyncio.create_task(send_one(env, windows))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                continue
            done_event.clear()
            timeout = (
                max(0.0, heap[0][0] - now) if heap and len(in_flight) < self.concurrency else None
            )
            await _wait_any(stop, done_event, timeout)
        if in_flight:
            await asyncio.gather(*in_flight)
        return results

    async def _send(self, env: Envelope) -> _Result:
        sender = self.senders.get(env.channel)
        if sender is None:
            return _Result(
                env, error=SendError(f"no sender for channel {env.channel}", permanent=True)
            )
        try:
            external_id = await sender.send(env)
        except SendError as exc:
            result = "rate_limited" if exc.retry_after else ("failed" if exc.permanent else "retry")
            self.metrics.sends.labels(env.channel, result).inc()
            if exc.retry_after:
                self.metrics.rate_limited.labels(env.channel).inc()
            return _Result(env, error=exc)
        except Exception as exc:
            log.warning("send of outbox row %d failed unexpectedly", env.id, exc_info=True)
            self.metrics.sends.labels(env.channel, "retry").inc()
            return _Result(env, error=SendError(f"{exc.__class__.__name__}: {exc}"))
        self.metrics.sends.labels(env.channel, "sent").inc()
        return _Result(env, external_id)

    async def _record(
        self,
        results: list[_Result],
        deferred: list[tuple[Envelope, datetime]],
        unsent: list[Envelope],
    ) -> None:
        """Write every outcome of a batch in one transaction."""
        now = self.wall()
        sent: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        blocked_contacts: set[int] = set()
        migrations: dict[int, int] = {}
        retry_at: dict[ChatKey, datetime] = {}
        for r in results:
            env, err = r.envelope, r.error
            if err is None:
                sent.append(
                    {
                        "id": env.id,
                        "status": OutboxStatus.SENT,
                        "external_id": r.external_id,
                        "sent_at": now,
                        "status_at": now,
                        "attempts": env.attempts + 1,
                        "lease_until": None,
                        "last_error": None,
                    }
                )
                continue
            attempts = env.attempts + (0 if err.retry_after or err.migrated_to else 1)
            row: dict[str, Any] = {
                "id": env.id,
                "attempts": attempts,
                "lease_until": None,
                "last_error": err.reason[:500],
                "status_at": now,
            }
            if err.blocked and env.contact_id is not None:
                blocked_contacts.add(env.contact_id)
            if err.migrated_to is not None:
                migrations[env.chat_id] = err.migrated_to
            if err.final_status is not None:
                row["status"] = err.final_status
            elif err.permanent or attempts >= self.max_attempts:
                row["status"] = OutboxStatus.FAILED
                log.warning("outbox row %d (%s) given up: %s", env.id, env.kind, err.reason)
            else:
                row["status"] = OutboxStatus.PENDING
                row["next_attempt_at"] = now + timedelta(seconds=self._backoff(attempts, err))
                retry_at[env.key] = row["next_attempt_at"]
            changes.append(row)
        for env, due in deferred:
            changes.append(
                {
                    "id": env.id,
                    "status": OutboxStatus.PENDING,
                    "lease_until": None,
                    "next_attempt_at": max(due, now),
                }
            )
        for env in unsent:  # held back behind a failed row of the same chat, or stopped
            changes.append(
                {
                    "id": env.id,
                    "status": OutboxStatus.PENDING,
                    "lease_until": None,
                    "next_attempt_at": retry_at.get(env.key, now),
                }
            )
        async with self.sessions() as session:
            for rows in (sent, changes):
                if rows:
                    await session.execute(update(Outbox), rows)
            if blocked_contacts:
                await session.execute(
                    update(Contact).where(Contact.id.in_(blocked_contacts)).values(blocked_at=now)
                )
            for old, new in migrations.items():
                log.info("group chat migrated to a supergroup; updating its id")
                await migrate_chat(session, "telegram", old, new)
            await session.commit()
        if migrations:
            self.notify()

    def _backoff(self, attempts: int, err: SendError) -> float:
        if err.retry_after:
            return err.retry_after
        if err.migrated_to is not None:
            return 0.0
        return min(2.0**attempts, 300.0) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter

    def _overall_window(self, env: Envelope) -> SlidingWindow:
        key = (env.channel, env.bot)
        window = self._overall.get(key)
        if window is None:
            limits = self.limits.get(env.channel)
            window = limits.overall() if limits else SlidingWindow(1_000_000, 1.0)
            self._overall[key] = window
        return window

    def _chat_window(self, key: ChatKey) -> SlidingWindow | None:
        if key not in self._chats:
            limits = self.limits.get(key[0])
            self._chats[key] = limits.for_chat(key[2]) if limits else None
        return self._chats[key]

    def _chat_free(self, key: ChatKey, now: float) -> float:
        window = self._chat_window(key)
        return window.next_free(now) if window is not None else now

    def _pause(self, env: Envelope, seconds: float) -> None:
        until = self.monotonic() + seconds
        window = self._chat_window(env.key)
        if window is not None:
            window.pause(until)
        else:
            self._overall_window(env).pause(until)

    async def _update_depth(self) -> None:
        async with self.sessions() as session:
            depth = await session.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
            )
        self.metrics.outbox_depth.set(depth or 0)


def _with_target(env: Envelope, target: str) -> Envelope:
    return Envelope(
        env.id,
        env.channel,
        env.bot,
        env.chat_id,
        env.kind,
        env.payload,
        env.contact_id,
        env.attempts,
        target,
    )


async def _wait_any(stop: asyncio.Event, event: asyncio.Event, at_most: float | None) -> None:
    """Wait until either event is set or the timeout passes."""
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(event.wait())}
    try:
        await asyncio.wait(waiters, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
