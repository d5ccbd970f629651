"""Group boards (``handlers.board``): a group's live report board in a surge, the reports on
it, and the questions the core asks of the outbox to see how long a group's queue is.
Every function takes the caller's session; the caller commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.locks import lock_for_transaction, scope_key
from storage.models import BoardReport, GroupBoard, Outbox, Report
from storage.types import OutboxKind, OutboxStatus

QUEUED = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


async def chat_load(
    session: AsyncSession,
    channel: str,
    chat_id: int,
    since: datetime,
    *,
    leave_out: Collection[int] = (),
) -> tuple[int, int]:
    """(rows waiting for the chat: pending or being sent; rows sent to it since ``since``);
    the rows ``leave_out`` (a board's own message and edit) are not counted as waiting."""
    queued = select(func.count()).where(
        Outbox.channel == channel, Outbox.chat_id == chat_id, Outbox.status.in_(QUEUED)
    )
    if leave_out:
        queued = queued.where(Outbox.id.not_in(list(leave_out)))
    sent = select(func.count()).where(
        Outbox.channel == channel, Outbox.chat_id == chat_id, Outbox.sent_at >= since
    )
    return int(await session.scalar(queued) or 0), int(await session.scalar(sent) or 0)


async def urgent_waiting(session: AsyncSession, channel: str, chat_id: int) -> int:
    """How many alerts of urgent reports wait for the chat (pending or being sent)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Outbox)
            .join(Report, Report.id == Outbox.report_id)
            .where(
                Outbox.channel == channel,
                Outbox.chat_id == chat_id,
                Outbox.kind == OutboxKind.ALERT.value,
                Outbox.status.in_(QUEUED),
                Report.urgent.is_(True),
            )
        )
        or 0
    )


async def lock_group(session: AsyncSession, channel: str, chat_id: int) -> None:
    """Take the group's board lock until the transaction ends (PostgreSQL: an advisory lock, so
    two reports filed at once cannot both open a board; SQLite serialises writers anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        key = scope_key(f"board:{channel}:{chat_id}")
        await lock_for_transaction(await session.connection(), key)


async def open_board(
    session: AsyncSession, channel: str, chat_id: int, *, lock: bool = True
) -> GroupBoard | None:
    """The group's open board, if any (locked for this transaction: reports filed at once
    update it one after the other)."""
    query = select(GroupBoard).where(
        GroupBoard.channel == channel,
        GroupBoard.chat_id == chat_id,
        GroupBoard.closed_at.is_(None),
    )
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query.order_by(GroupBoard.id.desc()).limit(1))).first()


def new_board(
    session: AsyncSession,
    *,
    channel: str,
    bot: str,
    chat_id: int,
    area_id: int | None,
    lang: str,
    now: datetime,
) -> GroupBoard:
    """Add an open board to the session (the id is set at the next flush)."""
    board = GroupBoard(
        channel=channel,
        bot=bot,
        chat_id=chat_id,
        area_id=area_id,
        lang=lang,
        opened_at=now,
        next_edit_at=now,
    )
    session.add(board)
    return board


async def add_reports(
    session: AsyncSession, board_id: int, report_ids: Collection[int], now: datetime
) -> None:
    """Put these reports on the board (those already on it stay as they were)."""
    there = set(
        (
            await session.scalars(
                select(BoardReport.report_id).where(
                    BoardReport.board_id == board_id, BoardReport.report_id.in_(list(report_ids))
                )
            )
        ).all()
    )
    for report_id in report_ids:
        if report_id not in there:
            session.add(BoardReport(board_id=board_id, report_id=report_id, added_at=now))
    await session.flush()


async def fold_pending_alerts(
    session: AsyncSession, channel: str, chat_id: int, now: datetime
) -> list[int]:
    """Mark the chat's alerts of non-urgent reports that are not being sent yet as folded (never
    sent: their reports go on the board); returns those reports' ids, oldest first."""
    rows = (
        await session.execute(
            select(Outbox.id, Outbox.report_id)
            .join(Report, Report.id == Outbox.report_id)
            .where(
                Outbox.channel == channel,
                Outbox.chat_id == chat_id,
                Outbox.kind == OutboxKind.ALERT.value,
                Outbox.status == OutboxStatus.PENDING.value,
                Report.urgent.is_(False),
            )
            .order_by(Outbox.id)
        )
    ).all()
    if not rows:
        return []
    await session.execute(
        update(Outbox)
        .where(Outbox.id.in_([r.id for r in rows]), Outbox.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.FOLDED.value, status_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return [int(r.report_id) for r in rows]


async def reports_on(session: AsyncSession, board_id: int) -> Sequence[tuple[Report, datetime]]:
    """The reports on the board with when each was added, the newest first."""
    rows = await session.execute(
        select(Report, BoardReport.added_at)
        .join(BoardReport, BoardReport.report_id == Report.id)
        .where(BoardReport.board_id == board_id)
        .order_by(BoardReport.added_at.desc(), Report.id.desc())
    )
    return [(row[0], row[1]) for row in rows.all()]


async def added_since(session: AsyncSession, board_id: int, since: datetime) -> int:
    """How many reports went on the board since ``since``."""
    return int(
        await session.scalar(
            select(func.count()).where(
                BoardReport.board_id == board_id, BoardReport.added_at >= since
            )
        )
        or 0
    )


async def boards_showing(session: AsyncSession, report_id: int) -> list[GroupBoard]:
    """The boards a report is on (open or closed), oldest first, locked for this transaction."""
    return list(
        (
            await session.scalars(
                select(GroupBoard)
                .join(BoardReport, BoardReport.board_id == GroupBoard.id)
                .where(BoardReport.report_id == report_id)
                .order_by(GroupBoard.id)
                .with_for_update(of=GroupBoard)
            )
        ).all()
    )


async def all_open(session: AsyncSession) -> list[GroupBoard]:
    """Every open board, locked for this transaction (the leader's sweep closes quiet ones)."""
    query = select(GroupBoard).where(GroupBoard.closed_at.is_(None)).order_by(GroupBoard.id)
    return list((await session.scalars(query.with_for_update())).all())


async def replace_if_pending(
    session: AsyncSession, row_id: int | None, payload: dict[str, Any]
) -> bool:
    """Give an outbox row a new payload if it is still pending (not claimed by a sender);
    returns whether it was. A row a sender claimed meanwhile keeps what it is sending."""
    if row_id is None:
        return False
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.status == OutboxStatus.PENDING.value)
        .values(payload=payload)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) > 0  # type: ignore[attr-defined]
