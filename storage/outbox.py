"""The outbox: messages to other people, written in the transaction that caused them.

The core adds rows (``enqueue``); the dispatcher (``bot.delivery.dispatcher``) claims due rows
with a lease, sends them and records the outcomes, all through the statements here. The
payload is ``{"reply": Reply.to_json(), **extra}`` so any adapter can rebuild the message.
Every function takes the caller's session (or connection); the caller commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, Required, TypedDict

from sqlalchemy import ColumnElement, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import Outbox
from storage.types import DEFAULT_BOT, OutboxStatus, utcnow

OUTBOX_CHANNEL = "ktn_outbox"  # NOTIFY channel: new outbox rows were committed
FORGET = "forget"  # payload key: delete the row once sent (``forget``)
# payload key: when the message this reply answers came (ISO), for a reply whose contact is gone
# (erased): the chat's 24-hour window is still open (bot.channels.whatsapp.sender)
ANSWERED_AT = "answered_at"


class JsonReply(Protocol):
    """Anything that serialises itself like ``handlers.types.Reply``."""

    def to_json(self) -> dict[str, Any]: ...


def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: int,
    kind: str,
    reply: JsonReply,
    contact_id: int | None = None,
    report_id: int | None = None,
    dedupe_key: str | None = None,
    extra: dict[str, Any] | None = None,
    bot: str = DEFAULT_BOT,
) -> Outbox:
    """Add a pending outbox row to the session (the id is set at the next flush).

    A chat id that is not an int is refused here, in the caller's transaction: SQLite would
    store it as text and the row could never be sent."""
    if type(chat_id) is not int:
        raise TypeError(f"outbox chat_id must be an int, not {type(chat_id).__name__}")
    payload: dict[str, Any] = dict(extra or {})
    if "reply" in payload:
        raise ValueError("extra must not contain 'reply'")
    payload["reply"] = reply.to_json()
    row = Outbox(
        channel=str(channel),
        bot=bot,
        chat_id=chat_id,
        contact_id=contact_id,
        kind=str(kind),
        payload=payload,
        report_id=report_id,
        dedupe_key=dedupe_key,
        status=OutboxStatus.PENDING.value,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


async def forget(session: AsyncSession, ids: Collection[int]) -> None:
    """Delete rows that were sent and must not be kept (their payload says ``FORGET``: a
    person's copy of their data, the answer to their erasure). The caller commits."""
    if ids:
        await session.execute(delete(Outbox).where(Outbox.id.in_(list(ids))))


async def release_claims(session: AsyncSession, keep: str) -> int:
    """Put rows other senders claimed back to pending; returns how many. Caller commits.

    Only for a new sole sender (worker id ``keep``): the rows were claimed by one that is gone.
    """
    result = await session.execute(
        update(Outbox)
        .where(Outbox.status == OutboxStatus.SENDING, Outbox.claimed_by != keep)
        .values(status=OutboxStatus.PENDING, lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- the dispatcher's statements ---------------------------------------------------------


class Claimed(Protocol):
    """A row as ``claim_due`` returns it (a result row: attributes by column name)."""

    id: int
    channel: str
    bot: str
    chat_id: int
    kind: str
    payload: dict[str, Any]
    contact_id: int | None
    attempts: int


class EditTarget(Protocol):
    """The message an edit edits, as ``edit_targets`` returns it."""

    id: int
    status: str
    external_id: str | None
    next_attempt_at: datetime


class Outcome(TypedDict, total=False):
    """What ``record`` writes on one row: its id and the columns that change."""

    id: Required[int]
    status: str
    external_id: str | None
    sent_at: datetime
    status_at: datetime
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or being sent under a lease that ran out (a crashed worker)."""
    return or_(
        (Outbox.status == OutboxStatus.PENDING) & (Outbox.next_attempt_at <= now),
        (Outbox.status == OutboxStatus.SENDING) & (Outbox.lease_until < now),
    )


async def claim_due(
    session: AsyncSession, *, now: datetime, per_lane: int, lease_until: datetime, claimed_by: str
) -> list[Claimed]:
    """Lease up to ``per_lane`` due rows of each channel and bot, the oldest first (``FOR
    UPDATE SKIP LOCKED``: workers claiming at once never take the same row); one statement per
    lane. Returns the claimed rows in no particular order. The caller commits."""
    due = _due(now)
    lanes = (await session.execute(select(Outbox.channel, Outbox.bot).where(due).distinct())).all()
    rows: list[Any] = []
    for channel, bot_key in lanes:
        ids = (
            select(Outbox.id)
            .where(due, Outbox.channel == channel, Outbox.bot == bot_key)
            .order_by(Outbox.id)
            .limit(per_lane)
            .with_for_update(skip_locked=True)
        )
        claimed = await session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids.scalar_subquery()))
            .values(status=OutboxStatus.SENDING, lease_until=lease_until, claimed_by=claimed_by)
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
        rows.extend(claimed.all())
    return rows


async def recent_sends(
    session: AsyncSession, since: datetime
) -> Sequence[tuple[str, str, int, datetime | None]]:
    """(channel, bot, chat id, sent at) of every row sent since ``since``."""
    return (
        await session.execute(
            select(Outbox.channel, Outbox.bot, Outbox.chat_id, Outbox.sent_at).where(
                Outbox.sent_at >= since
            )
        )
    ).all()


async def edit_targets(session: AsyncSession, ids: Collection[int]) -> dict[int, EditTarget]:
    """The rows with these ids (the messages edits refer to) by id; missing ids are absent."""
    rows: Sequence[Any] = (
        await session.execute(
            select(Outbox.id, Outbox.status, Outbox.external_id, Outbox.next_attempt_at).where(
                Outbox.id.in_(ids)
            )
        )
    ).all()
    return {r.id: r for r in rows}


async def record(session: AsyncSession, *outcomes: Sequence[Outcome]) -> None:
    """Write outcomes by primary key: one executemany per sequence (so rows of one shape go
    together). The caller commits."""
    for rows in outcomes:
        if rows:
            await session.execute(update(Outbox), rows)


async def give_up(session: AsyncSession, outbox_id: int, reason: str, now: datetime) -> None:
    """Mark one row failed with the reason, counting an attempt. The caller commits."""
    await session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id)
        .values(
            status=OutboxStatus.FAILED,
            attempts=Outbox.attempts + 1,
            lease_until=None,
            last_error=reason[:500],
            status_at=now,
        )
    )


async def save_progress(session: AsyncSession, outbox_id: int, payload: dict[str, Any]) -> None:
    """Replace the row's payload (how far a multi-part send got). The caller commits."""
    await session.execute(update(Outbox).where(Outbox.id == outbox_id).values(payload=payload))


async def depth_and_next_due(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows wait (pending or being sent), and when the first of them falls due (a
    pending row's next attempt, a claimed row's lease end)."""
    depth, next_due = (
        await session.execute(
            select(
                func.count(),
                func.min(
                    case(
                        (Outbox.status == OutboxStatus.PENDING, Outbox.next_attempt_at),
                        else_=Outbox.lease_until,
                    )
                ),
            ).where(Outbox.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
        )
    ).one()
    return depth or 0, next_due


async def wake_sender(conn: AsyncConnection) -> None:
    """``NOTIFY`` the worker holding the sender role (PostgreSQL; delivered at the commit)."""
    await conn.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))


# --- the core's questions ----------------------------------------------------------------


async def existing_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these dedupe keys a row already has."""
    if not keys:
        return set()
    found = await session.scalars(select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(keys)))
    return {key for key in found.all() if key is not None}


async def of_report(
    session: AsyncSession,
    report_id: int,
    *,
    kinds: Collection[str],
    statuses: Collection[str],
    channels: Collection[str],
    on_channels: bool = True,
) -> list[Outbox]:
    """The report's rows of these kinds and statuses on these channels (``on_channels`` false:
    on any other channel), oldest first."""
    on = Outbox.channel.in_(channels)
    return list(
        (
            await session.scalars(
                select(Outbox)
                .where(
                    Outbox.report_id == report_id,
                    Outbox.kind.in_(kinds),
                    on if on_channels else ~on,
                    Outbox.status.in_(statuses),
                )
                .order_by(Outbox.id)
            )
        ).all()
    )


async def payload_of(session: AsyncSession, row_id: int) -> dict[str, Any] | None:
    """A row's payload as it is now (with what its sender recorded), or None if it is gone."""
    payload = await session.scalar(select(Outbox.payload).where(Outbox.id == row_id))
    return dict(payload) if isinstance(payload, dict) else None
