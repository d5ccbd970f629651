"""Retention: forgetting what is needed only for a while (UU PDP No. 27/2022, issue 21).

Each kind of data has its own period (``[retention]``, README: Retention) and its own function
here that forgets one batch of what is older: at most ``limit`` rows, in the caller's
transaction, returning how many. The leader (``bot.roles.retention``) commits after each batch
and yields before the next, so no purge holds the database for long (SQLite has one write lock;
a million-row DELETE would hold it for seconds).

- ``processed_inbound``: one row per message handled, so that a redelivered update (Telegram
  retries within 24 hours; Twilio within minutes) is answered once; deleted.
- closed reports' personal fields: stripped (``storage.privacy``); the report stays for the
  statistics (category, area, times, status, who handled it).
- report media: the rows are deleted and their refs returned: the caller deletes the files
  from the media store afterwards, once nothing else refers to them.
- outbox texts: a sent (or given-up) message keeps its row for the delivery bookkeeping but
  loses its text, buttons and files. An alert of a report still open keeps its text (its edits
  reuse the title).
- conversations (where a person stands, their unfinished draft): deleted when idle that long.
- report events' notes (free text: resolution notes, reasons): emptied; the trail stays.
- desk sessions and sign-in links: deleted.
- the access log: deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AccessLog,
    Conversation,
    DeskLogin,
    DeskSession,
    Outbox,
    ProcessedInbound,
    Report,
    ReportEvent,
    ReportMedia,
)
from storage.privacy import anonymise_report_personal_fields
from storage.types import OutboxKind, OutboxStatus, ReportStatus

BATCH = 500

CLOSED = [s.value for s in ReportStatus if not s.is_open]
OPEN = [s.value for s in ReportStatus if s.is_open]
# Rows still to be sent (or waiting for a template to be sent): their text is needed.
UNSENT = [OutboxStatus.PENDING.value, OutboxStatus.SENDING.value, OutboxStatus.NEEDS_TEMPLATE.value]
EDITED_LATER = [OutboxKind.ALERT.value, OutboxKind.ESCALATION.value]
# What a purged outbox row keeps of its payload: enough for edits and delivery bookkeeping.
KEPT_PAYLOAD = ("lang", "route", "ticket", "edit_of", "status")


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


async def _delete_some(
    session: AsyncSession, model: Any, where: ColumnElement[bool], limit: int
) -> int:
    """Delete up to ``limit`` rows of ``model`` (with an ``id``) matching ``where``."""
    some = select(model.id).where(where).limit(limit)
    result = await session.execute(
        delete(model).where(model.id.in_(some)).execution_options(synchronize_session=False)
    )
    return _count(result)


async def forget_processed_inbound(
    session: AsyncSession, before: datetime, limit: int = BATCH
) -> int:
    """Delete up to ``limit`` dedupe records older than ``before``; returns how many."""
    oldest = (
        select(ProcessedInbound.channel, ProcessedInbound.external_id)
        .where(ProcessedInbound.processed_at < before)
        .limit(limit)
    )
    result = await session.execute(
        delete(ProcessedInbound)
        .where(tuple_(ProcessedInbound.channel, ProcessedInbound.external_id).in_(oldest))
        .execution_options(synchronize_session=False)
    )
    return _count(result)


async def strip_closed_reports(
    session: AsyncSession, before: datetime, *, placeholder: str, now: datetime, limit: int = BATCH
) -> int:
    """Strip up to ``limit`` reports closed before ``before`` of their personal fields."""
    ids = (
        await session.scalars(
            select(Report.id)
            .where(
                Report.personal_purged_at.is_(None),
                Report.closed_at < before,
                Report.status.in_(CLOSED),
            )
            .order_by(Report.personal_purged_at, Report.closed_at)  # the index's order
            .limit(limit)
        )
    ).all()
    return await anonymise_report_personal_fields(session, ids, placeholder=placeholder, now=now)


async def forget_report_media(
    session: AsyncSession, before: datetime, limit: int = BATCH
) -> tuple[int, set[str]]:
    """Delete up to ``limit`` media rows attached before ``before``: how many, and the store
    refs they named (the caller deletes those files once nothing else refers to them)."""
    rows = (
        await session.execute(
            select(ReportMedia.id, ReportMedia.store_ref)
            .where(ReportMedia.created_at < before)
            .order_by(ReportMedia.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0, set()
    await session.execute(
        delete(ReportMedia)
        .where(ReportMedia.id.in_([r.id for r in rows]))
        .execution_options(synchronize_session=False)
    )
    return len(rows), {r.store_ref for r in rows if r.store_ref}


async def purge_outbox_texts(
    session: AsyncSession, before: datetime, *, now: datetime, limit: int = BATCH
) -> int:
    """Empty the texts of up to ``limit`` messages queued before ``before`` and no longer to be
    sent (an alert of a report still open excepted). One UPDATE in the database for most rows;
    only alerts (whose edits read their payload's language and route) are rewritten one by one."""
    open_report = exists().where(Report.id == Outbox.report_id, Report.status.in_(OPEN))
    ids = (
        await session.scalars(
            select(Outbox.id)
            .where(
                Outbox.purged_at.is_(None),
                Outbox.created_at < before,
                Outbox.status.not_in(UNSENT),
                ~(Outbox.kind.in_(EDITED_LATER) & open_report),
            )
            .order_by(Outbox.purged_at, Outbox.created_at)  # the index's order: no sort
            .limit(limit)
        )
    ).all()
    if not ids:
        return 0
    await session.execute(
        update(Outbox)
        .where(Outbox.id.in_(ids), Outbox.kind.not_in(EDITED_LATER))
        .values(payload=_purged({}), purged_at=now)
        .execution_options(synchronize_session=False)
    )
    alerts = (
        await session.execute(
            select(Outbox.id, Outbox.payload).where(
                Outbox.id.in_(ids), Outbox.kind.in_(EDITED_LATER)
            )
        )
    ).all()
    if alerts:
        await session.execute(
            update(Outbox),
            [{"id": r.id, "payload": _purged(r.payload), "purged_at": now} for r in alerts],
        )
    return len(ids)


def _purged(payload: Any) -> dict[str, Any]:
    """What an outbox row keeps of its payload once its text is purged."""
    kept = {k: v for k, v in payload.items() if k in KEPT_PAYLOAD} if type(payload) is dict else {}
    return {**kept, "reply": {"text": ""}, "purged": True}


async def forget_conversations(session: AsyncSession, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` conversations (with their drafts) idle since before ``before``."""
    return await _delete_some(session, Conversation, Conversation.updated_at < before, limit)


async def clear_event_notes(session: AsyncSession, before: datetime, limit: int = BATCH) -> int:
    """Empty the notes of up to ``limit`` report events made before ``before``."""
    some = (
        select(ReportEvent.id)
        .where(ReportEvent.created_at < before, ReportEvent.note.is_not(None))
        .limit(limit)
    )
    result = await session.execute(
        update(ReportEvent)
        .where(ReportEvent.id.in_(some))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    return _count(result)


async def forget_desk_sessions(session: AsyncSession, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` desk sessions last used, and sign-in links expired, before
    ``before`` (both together at most ``limit``)."""
    gone = await _delete_some(session, DeskSession, DeskSession.last_seen_at < before, limit)
    if gone < limit:
        gone += await _delete_some(session, DeskLogin, DeskLogin.expires_at < before, limit - gone)
    return gone


async def forget_access_log(session: AsyncSession, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` access-log rows older than ``before``."""
    return await _delete_some(session, AccessLog, AccessLog.at < before, limit)
