"""The outbox dispatcher: sends every message that must not be lost, exactly as the rows say.

Rows are written by the core in the same transaction as the change that caused them. The
dispatcher claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write
lock does the same), sends them per chat in order, within each channel's flood limits
(``bot.delivery.windows``), and records the result: sent, retried later with backoff (honouring
``retry_after``), or given up with the reason. A row whose lease ran out (a crashed worker) is
claimed again, so delivery is at-least-once; a row marked sent is never sent again. One row
whose data or send raises is given up alone; the rows claimed with it go out. The statements
are ``storage.outbox``'s; the pacing, the order and the outcomes are decided here.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.exc import DBAPIError

from bot.delivery.windows import ChannelLimits, SlidingWindow
from bot.metrics import Metrics
from storage import outbox
from storage.contacts import mark_blocked
from storage.db import Sessions
from storage.groups import migrate_chat
from storage.outbox import Outcome
from storage.types import OutboxKind, OutboxStatus, utcnow

log = logging.getLogger(__name__)
ChatKey = tuple[str, str, int]  # channel, bot, chat id
URGENT_KINDS = frozenset({OutboxKind.ALERT.value, OutboxKind.ESCALATION.value})
WARM_UP_SECONDS = 61.0  # the longest flood window (20 per minute per group), and a margin


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


@runtime_checkable
class CostedSender(Protocol):
    """A sender whose envelope can take several API calls (a pin after the text, split text).

    The dispatcher takes ``cost(envelope)`` slots of every flood window before sending it; a
    sender without ``cost`` takes one slot per row.
    """

    def cost(self, envelope: Envelope) -> int: ...


class BotSenders:
    """One channel's senders by bot key: a row goes out through the bot its ``bot`` column
    names (Telegram with several bot tokens). A row for a bot this process does not run fails
    with the reason; ``ktn-bot outbox retry`` sends it once the bot is configured again."""

    def __init__(self, senders: Mapping[str, Sender] | None = None) -> None:
        self.by_bot: dict[str, Sender] = dict(senders or {})

    def cost(self, envelope: Envelope) -> int:
        """The API calls of the envelope as its bot's sender counts them (1 if it does not)."""
        sender = self.by_bot.get(envelope.bot)
        return sender.cost(envelope) if isinstance(sender, CostedSender) else 1

    async def send(self, envelope: Envelope) -> str | None:
        """Send through the envelope's bot."""
        sender = self.by_bot.get(envelope.bot)
        if sender is None:
            raise SendError(f"no bot {envelope.bot!r} is configured", permanent=True)
        return await sender.send(envelope)


async def save_progress(sessions: Sessions, envelope: Envelope, **progress: Any) -> None:
    """Merge how far a multi-part send got into the row's payload, committed at once.

    Call it after each part but the last: the next claim of the row (a retry, or another
    worker after a crash) sees it in ``envelope.payload`` and sends only the parts not yet sent.
    """
    payload = {**envelope.payload, **progress}
    async with sessions() as session:
        await outbox.save_progress(session, envelope.id, payload)
        await session.commit()


@dataclass(slots=True)
class _Result:
    envelope: Envelope
    external_id: str | None = None
    error: SendError | None = None


@dataclass
class Dispatcher:
    """Claims due outbox rows and sends them through the channel senders."""

    sessions: Sessions
    senders: Mapping[str, Sender]
    limits: Mapping[str, ChannelLimits]
    metrics: Metrics = field(default_factory=Metrics)
    max_attempts: int = 8
    sweep_seconds: float = 5.0
    batch_size: int = 500
    concurrency: int = 32
    lease_seconds: float = 120.0
    # Sent rows are recorded at least this often during a long batch (a large broadcast), so a
    # killed worker repeats at most the last moments' messages, not a whole batch.
    record_seconds: float = 1.0
    # On stop, sends in flight get this long to finish; unanswered ones go back to pending.
    stop_grace: float = 20.0
    # A chat whose flood window is full for longer than this gets its claimed rows back in the
    # queue, due when the window has room (a group's 20 a minute can mean a minute): they stay
    # visible to the core (which folds a group's waiting alerts into its board) and rows
    # written meanwhile, an urgent alert first, join them in order. None: wait in memory.
    hold_seconds: float | None = None
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._next_due: datetime | None = None
        self._overall: dict[tuple[str, str], SlidingWindow] = {}
        self._chats: dict[ChatKey, SlidingWindow | None] = {}
        self._recorded_early: set[int] = set()
        self._held: list[tuple[Envelope, datetime]] = []
        self._warmed_up = False

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
                await _wait_any(stop, self._wake, self._idle_wait())
        log.info("outbox dispatcher %s stopped", self.worker_id)

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Send everything due now (tests, one-shot CLI use); returns how many rows were handled."""
        total = 0
        while (handled := await self.drain_once(stop)) > 0:
            total += handled
        return total

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim one batch and send it; returns how many rows were handled."""
        if not self._warmed_up:
            await self._warm_up()
        batch = await self._claim()
        if not batch:
            await self._update_depth()
            return 0
        batch, broken = _split_malformed(batch)
        if broken:
            await self._record([self._unexpected(env, reason) for env, reason in broken], [], [])
        ready, deferred = await self._resolve_edit_targets(batch)
        self._recorded_early = set()
        self._held = []
        results: list[_Result] = []
        try:
            await self._send_batch(ready, stop or asyncio.Event(), results)
        except Exception as exc:
            # A fault of the dispatcher itself, not of one row: whatever was not sent goes back
            # to the queue with an attempt counted (never left claimed, never retried at once).
            log.exception("outbox batch failed; its unsent rows are retried later")
            handled = {r.envelope.id for r in results}
            results.extend(
                _Result(env, error=SendError(f"dispatcher error: {exc.__class__.__name__}"))
                for env in ready
                if env.id not in handled
            )
        handled = {r.envelope.id for r in results} | {env.id for env, _ in self._held}
        remaining = [r for r in results if r.envelope.id not in self._recorded_early]
        unsent = [e for e in ready if e.id not in handled]
        await self._record(remaining, [*deferred, *self._held], unsent)
        return len(batch) + len(broken)

    async def _warm_up(self) -> None:
        """Count what was sent in the last minute (by a process this one replaces) against the
        flood limits, so a restart in the middle of a broadcast does not overrun them."""
        self._warmed_up = True
        wall, mono = self.wall(), self.monotonic()
        async with self.sessions() as session:
            recent = await outbox.recent_sends(session, wall - timedelta(seconds=WARM_UP_SECONDS))
        overall: dict[tuple[str, str], list[float]] = {}
        chats: dict[ChatKey, list[float]] = {}
        for channel, bot_key, chat_id, sent_at in recent:
            if sent_at is None:
                continue
            done = mono - (wall - sent_at).total_seconds()
            overall.setdefault((channel, bot_key), []).append(done)
            chats.setdefault((channel, bot_key, chat_id), []).append(done)
        for (channel, bot_key), times in overall.items():
            env = Envelope(0, channel, bot_key, 0, "", {}, None, 0)
            self._overall_window(env).seed(times)
        for key, times in chats.items():
            window = self._chat_window(key)
            if window is not None:
                window.seed(times)

    async def _claim(self) -> list[Envelope]:
        """Lease up to batch_size due rows (pending and due, or sending with an expired lease)
        of each channel and bot, the oldest first: every bot's limit is used at once, so rows
        of several bots go out in parallel even when one bot's rows were written first."""
        now = self.wall()
        async with self.sessions() as session:
            rows = await outbox.claim_due(
                session,
                now=now,
                per_lane=self.batch_size,
                lease_until=now + timedelta(seconds=self.lease_seconds),
                claimed_by=self.worker_id,
            )
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
        edit_of = {e.id: e.payload["edit_of"] for e in batch if e.kind == OutboxKind.ALERT_EDIT}
        if not edit_of:
            return batch, []
        async with self.sessions() as session:
            originals = await outbox.edit_targets(session, set(edit_of.values()))
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

    async def _send_batch(
        self, batch: list[Envelope], stop: asyncio.Event, results: list[_Result]
    ) -> None:
        """Send per chat in order, several chats at once, within every flood limit; each row's
        outcome is appended to ``results`` as it comes."""
        queues: dict[ChatKey, deque[Envelope]] = {}
        for env in sorted(batch, key=_send_order):
            queues.setdefault(env.key, deque()).append(env)
        heap: list[tuple[float, int, ChatKey]] = []
        seq = 0
        now = self.monotonic()
        for key in list(queues):
            try:
                free = self._chat_free(key, now)
            except Exception as exc:  # this chat's rows cannot be paced: they fail alone
                results.extend(self._unexpected(e, _described(exc)) for e in queues.pop(key))
                continue
            if free > now and self._hold(key, queues, free - now):
                continue
            heapq.heappush(heap, (free, seq, key))
            seq += 1
        in_flight: set[asyncio.Task[None]] = set()
        done_event = asyncio.Event()

        async def send_one(env: Envelope, windows: list[SlidingWindow], calls: int) -> None:
            try:
                try:
                    result = await self._send(env)
                finally:
                    finished = self.monotonic()
                    for window in windows:
                        window.finish(finished, calls)
                results.append(result)
                queue = queues.get(env.key, deque())
                if result.error is not None and not result.error.permanent and queue:
                    # Keep this chat's order: what follows a failed row waits for the next round.
                    queue.clear()
                if result.error is not None and result.error.retry_after:
                    self._pause(env, result.error.retry_after)
                if queue:
                    nonlocal seq
                    now = self.monotonic()
                    free = min(self._chat_free(env.key, now), now + 0.02)
                    heapq.heappush(heap, (free, seq, env.key))
                    seq += 1
            finally:
                # Leave in_flight in the same step as the wake-up, never in a done callback: the
                # loop below may look at in_flight between this task's end and its callbacks.
                in_flight.discard(asyncio.current_task())
                done_event.set()

        last_record = self.monotonic()
        while (heap or in_flight) and not stop.is_set():
            done_event.clear()  # before looking: a send ending after this look wakes the wait
            now = self.monotonic()
            if now - last_record >= self.record_seconds and (done := self._unrecorded(results)):
                last_record = now
                await self._record(done, [], [])
                self._recorded_early.update(r.envelope.id for r in done)
                continue  # sends finished meanwhile: look again (the last one may have ended)
            if heap and len(in_flight) < self.concurrency and heap[0][0] <= now:
                _, _, key = heapq.heappop(heap)
                env = queues[key][0]
                try:
                    calls = self._cost(env)
                    overall = self._overall_window(env)
                    free = max(overall.next_free(now, calls), self._chat_free(key, now, calls))
                except Exception as exc:  # this chat's rows cannot be paced: they fail alone
                    results.extend(self._unexpected(e, _described(exc)) for e in queues.pop(key))
                    continue
                if free > now and self._hold(key, queues, free - now):
                    continue
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
                    window.start(calls)
                in_flight.add(asyncio.create_task(send_one(env, windows, calls)))
                continue
            timeout = (
                max(0.0, heap[0][0] - now) if heap and len(in_flight) < self.concurrency else None
            )
            if self._unrecorded(results):  # a send that went out is written soon, not at the end
                until_record = max(0.0, last_record + self.record_seconds - now)
                timeout = until_record if timeout is None else min(timeout, until_record)
            await _wait_any(stop, done_event, timeout)
        if in_flight:  # only when stopping: finish the sends in hand, but never hang a shutdown
            _done, stuck = await asyncio.wait(in_flight, timeout=self.stop_grace)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.gather(*stuck, return_exceptions=True)
                log.warning(
                    "%d send(s) still unanswered %.0f s after stop: they go again later",
                    len(stuck),
                    self.stop_grace,
                )

    def _hold(self, key: ChatKey, queues: dict[ChatKey, deque[Envelope]], wait: float) -> bool:
        """Give the chat's claimed rows back, due when its window has room, if that is more
        than ``hold_seconds`` away (nothing of the chat is in flight: it sends one at a time)."""
        if self.hold_seconds is None or not wait > self.hold_seconds or wait == float("inf"):
            return False
        due = self.wall() + timedelta(seconds=wait)
        self._held.extend((env, due) for env in queues.pop(key))
        return True

    def _unrecorded(self, results: list[_Result]) -> list[_Result]:
        """The batch's successful sends not yet written (failures wait for the batch's end)."""
        return [r for r in results if r.error is None and r.envelope.id not in self._recorded_early]

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
        except (DBAPIError, ConnectionError, TimeoutError) as exc:  # database or network
            log.warning("send of outbox row %d failed (%s); retried", env.id, type(exc).__name__)
            self.metrics.sends.labels(env.channel, "retry").inc()
            return _Result(env, error=SendError(_described(exc)))
        except Exception as exc:  # the row's data or a bug: the same again would fail again
            log.warning("send of outbox row %d raised unexpectedly", env.id, exc_info=True)
            return self._unexpected(env, _described(exc))
        self.metrics.sends.labels(env.channel, "sent").inc()
        return _Result(env, external_id)

    def _unexpected(self, env: Envelope, reason: str) -> _Result:
        """A row whose data or send raised what no sender expects: given up at once, alone,
        with the reason (``ktn-bot outbox failed``; ``outbox retry`` after a fix)."""
        self.metrics.sends.labels(env.channel, "failed").inc()
        self.metrics.outbox_unexpected.labels(env.channel).inc()
        return _Result(env, error=SendError(f"unexpected: {reason}", permanent=True))

    async def _record(
        self,
        results: list[_Result],
        deferred: list[tuple[Envelope, datetime]],
        unsent: list[Envelope],
    ) -> None:
        """Write every outcome of a batch in one transaction."""
        now = self.wall()
        sent: list[Outcome] = []
        changes: list[Outcome] = []
        blocked_contacts: set[int] = set()
        migrations: dict[int, int] = {}
        retry_at: dict[ChatKey, datetime] = {}
        forget: list[int] = []  # sent rows whose payload must not be kept (storage.outbox.FORGET)
        for r in results:
            env, err = r.envelope, r.error
            if err is None and env.payload.get(outbox.FORGET):
                forget.append(env.id)
                continue
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
            row: Outcome = {
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
        try:
            async with self.sessions() as session:
                await outbox.record(session, sent, changes)
                await outbox.forget(session, forget)
                if blocked_contacts:
                    await mark_blocked(session, blocked_contacts, now)
                for old, new in migrations.items():
                    log.info("group chat migrated to a supergroup; updating its id")
                    await migrate_chat(session, "telegram", old, new)
                await session.commit()
        except Exception:
            # One row's outcome that cannot be written must not keep the others claimed: write
            # each alone; the others' side effects (blocked, migrated) wait for the next time.
            log.exception("recording %d outbox outcome(s) at once failed; one by one", len(sent))
            for row in [*sent, *changes]:
                await self._record_alone(row, now)
        if migrations:
            self.notify()

    async def _record_alone(self, row: Outcome, now: datetime) -> None:
        """Write one row's outcome; if even that fails, give the row up with the reason."""
        try:
            async with self.sessions() as session:
                await outbox.record(session, [row])
                await session.commit()
            return
        except Exception as exc:
            reason = f"unexpected: outcome not recordable: {_described(exc)}"
        log.warning("outbox row %s: %s", row["id"], reason)
        with contextlib.suppress(Exception):  # the database itself is gone: the lease runs out
            async with self.sessions() as session:
                await outbox.give_up(session, row["id"], reason, now)
                await session.commit()

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

    def _chat_free(self, key: ChatKey, now: float, calls: int = 1) -> float:
        window = self._chat_window(key)
        return window.next_free(now, calls) if window is not None else now

    def _cost(self, env: Envelope) -> int:
        """How many API calls sending this envelope takes (the slots it needs in each window)."""
        sender: object = self.senders.get(env.channel)
        if isinstance(sender, CostedSender):
            try:
                return max(1, sender.cost(env))
            except Exception:  # a payload the sender cannot read: its send() will say why
                log.warning("cost of outbox row %d unknown; counting 1", env.id, exc_info=True)
        return 1

    def _pause(self, env: Envelope, seconds: float) -> None:
        until = self.monotonic() + seconds
        window = self._chat_window(env.key)
        if window is not None:
            window.pause(until)
        else:
            self._overall_window(env).pause(until)

    async def _update_depth(self) -> None:
        """Publish the queue depth and remember when the next deferred row falls due."""
        async with self.sessions() as session:
            depth, next_due = await outbox.depth_and_next_due(session)
        self.metrics.outbox_depth.set(depth)
        self._next_due = next_due

    def _idle_wait(self) -> float:
        """Sleep until the next deferred row is due (a rate window, a retry), at most a sweep."""
        if self._next_due is None:
            return self.sweep_seconds
        until_due = (self._next_due - self.wall()).total_seconds()
        return min(self.sweep_seconds, max(0.0, until_due))


def _send_order(env: Envelope) -> tuple[int, int]:
    """A chat's rows go oldest first, urgent alerts before all others (a group in a surge
    gets them first; an edit never overtakes its message: it waits until that is sent)."""
    urgent = env.kind in URGENT_KINDS and env.payload.get("urgent") is True
    return (0 if urgent else 1, env.id)


def _row_problem(env: Envelope) -> str | None:
    """Why a claimed row cannot be sent whatever happens (SQLite keeps any value in a column)."""
    if type(env.chat_id) is not int:
        return "malformed row: the chat id is not an integer"
    if not isinstance(env.payload, dict) or not isinstance(env.payload.get("reply"), dict):
        return "malformed row: the payload has no reply"
    if env.kind == OutboxKind.ALERT_EDIT and type(env.payload.get("edit_of")) is not int:
        return "malformed row: an edit without the id of the row it edits"
    return None


def _split_malformed(batch: list[Envelope]) -> tuple[list[Envelope], list[tuple[Envelope, str]]]:
    """The rows that can be tried, and the malformed ones with what is wrong."""
    good: list[Envelope] = []
    broken: list[tuple[Envelope, str]] = []
    for env in batch:
        problem = _row_problem(env)
        if problem is None:
            good.append(env)
        else:
            broken.append((env, problem))
    return good, broken


def _described(exc: BaseException) -> str:
    """An exception as a one-line reason for ``outbox failed`` (its kind and first 200 chars)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


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
