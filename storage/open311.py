"""Open311 GeoReport v2: API keys, what the API was told about the reports it filed, and the
reads of reports the API answers.

A key is shown once when it is made; only its SHA-256 is stored (the key is 256 random bits, so
a fast hash is enough: nothing to brute-force). Callers commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.locks import lock_for_transaction, scope_key
from storage.models import Area, Open311Key, Open311Request, Report, ReportEvent
from storage.types import ReportStatus

KEY_PREFIX = "ktn311_"
CLOSED_STATUSES = tuple(s.value for s in ReportStatus if not s.is_open)
OPEN_STATUSES = tuple(s.value for s in ReportStatus if s.is_open)
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is written at most this often per key


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


async def create_key(
    session: AsyncSession, *, area_id: int, label: str | None, now: datetime
) -> tuple[Open311Key, str]:
    """A new key of the area: the row (flushed) and the key itself, to show once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = Open311Key(key_hash=hash_key(key), area_id=area_id, label=label, created_at=now)
    session.add(row)
    await session.flush()
    return row, key


async def key_by_secret(session: AsyncSession, key: str) -> Open311Key | None:
    """The key row for this key (revoked or not), or None."""
    if not key.strip():
        return None
    return await session.scalar(select(Open311Key).where(Open311Key.key_hash == hash_key(key)))


def touch_key(key: Open311Key, now: datetime) -> bool:
    """Note that the key was used (at most every few minutes); True if the row changed."""
    if key.last_used_at is not None and now - key.last_used_at < TOUCH_EVERY:
        return False
    key.last_used_at = now
    return True


async def list_keys(session: AsyncSession) -> list[tuple[Open311Key, Area]]:
    """Every key with its area, oldest first."""
    rows = await session.execute(
        select(Open311Key, Area).join(Area, Area.id == Open311Key.area_id).order_by(Open311Key.id)
    )
    return [(key, area) for key, area in rows]


async def revoke_key(session: AsyncSession, key_id: int, now: datetime) -> Open311Key | None:
    """Revoke the key (again: no change); None when there is no such key."""
    row = await session.get(Open311Key, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
    return row


async def serialise_fingerprint(session: AsyncSession, fingerprint: str) -> None:
    """Two identical POSTs at once: the second waits for the first's commit (PostgreSQL; SQLite
    serialises every writing transaction anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        conn = await session.connection()
        await lock_for_transaction(conn, scope_key(f"open311:{fingerprint}"))


async def report_by_fingerprint(
    session: AsyncSession, fingerprint: str, since: datetime
) -> tuple[Report, Open311Request] | None:
    """The newest report filed with this fingerprint since then, with its request row."""
    row = await session.execute(
        select(Report, Open311Request)
        .join(Open311Request, Open311Request.report_id == Report.id)
        .where(Open311Request.fingerprint == fingerprint, Open311Request.created_at >= since)
        .order_by(Open311Request.created_at.desc())
        .limit(1)
    )
    found = row.first()
    return (found[0], found[1]) if found else None


@dataclass(frozen=True, slots=True)
class Submitter:
    """What the submitting system said about the person (any field may be missing)."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None


def record_request(
    session: AsyncSession,
    *,
    report_id: int,
    key_id: int,
    fingerprint: str,
    submitter: Submitter,
    now: datetime,
) -> Open311Request:
    """Keep what the API was told about the report it filed."""
    row = Open311Request(
        report_id=report_id,
        key_id=key_id,
        fingerprint=fingerprint,
        first_name=submitter.first_name,
        last_name=submitter.last_name,
        email=submitter.email,
        phone=submitter.phone,
        device_id=submitter.device_id,
        account_id=submitter.account_id,
        created_at=now,
    )
    session.add(row)
    return row


async def requests_of(
    session: AsyncSession, report_ids: Collection[int]
) -> dict[int, tuple[Open311Request, Open311Key | None]]:
    """The API's record of each of these reports it filed, with the key that filed it."""
    if not report_ids:
        return {}
    rows = await session.execute(
        select(Open311Request, Open311Key)
        .outerjoin(Open311Key, Open311Key.id == Open311Request.key_id)
        .where(Open311Request.report_id.in_(sorted(set(report_ids))))
    )
    return {req.report_id: (req, key) for req, key in rows}


async def pending_for_phone(
    session: AsyncSession, phone: str
) -> list[tuple[Open311Request, Report]]:
    """Open reports filed through the API with this phone number that nobody follows on a chat
    channel yet, oldest first."""
    rows = await session.execute(
        select(Open311Request, Report)
        .join(Report, Report.id == Open311Request.report_id)
        .where(
            Open311Request.phone == phone,
            Open311Request.linked_contact_id.is_(None),
            Report.status.in_(OPEN_STATUSES),
        )
        .order_by(Open311Request.created_at, Open311Request.report_id)
        .limit(20)
    )
    return [(req, report) for req, report in rows]


def mark_linked(request: Open311Request, contact_id: int, now: datetime) -> None:
    """The person with the request's phone number follows it now."""
    request.linked_contact_id = contact_id
    request.linked_at = now


async def find_reports(
    session: AsyncSession,
    *,
    area_ids: Sequence[int] | None,
    tickets: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[Report]:
    """Reports for an Open311 read, newest first: by ticket (then the other filters but the
    areas are ignored), or by category, status and creation time; within ``area_ids`` unless
    None (every area)."""
    stmt = select(Report).order_by(Report.created_at.desc(), Report.id.desc()).limit(limit)
    if area_ids is not None:
        stmt = stmt.where(Report.area_id.in_(list(area_ids)))
    if tickets is not None:
        return list((await session.scalars(stmt.where(Report.ticket.in_(list(tickets))))).all())
    if categories is not None:
        stmt = stmt.where(Report.category.in_(list(categories)))
    if statuses is not None:
        stmt = stmt.where(Report.status.in_(list(statuses)))
    if start is not None:
        stmt = stmt.where(Report.created_at >= start)
    if end is not None:
        stmt = stmt.where(Report.created_at <= end)
    return list((await session.scalars(stmt)).all())


@dataclass(frozen=True, slots=True)
class Trail:
    """What a report's audit trail says for Open311: when it last changed, and the note of the
    last time it was closed (resolved or rejected), if any."""

    updated_at: datetime
    closing_note: str | None


async def trails(session: AsyncSession, reports: Sequence[Report]) -> dict[int, Trail]:
    """The trail of each report (its ``updated_at`` when it has no event)."""
    ids = sorted({r.id for r in reports})
    if not ids:
        return {}
    latest = {
        report_id: moment
        for report_id, moment in await session.execute(
            select(ReportEvent.report_id, func.max(ReportEvent.created_at))
            .where(ReportEvent.report_id.in_(ids))
            .group_by(ReportEvent.report_id)
        )
    }
    notes: dict[int, str | None] = {}
    closing = await session.execute(
        select(ReportEvent.report_id, ReportEvent.note)
        .where(ReportEvent.report_id.in_(ids), ReportEvent.to_status.in_(CLOSED_STATUSES))
        .order_by(ReportEvent.report_id, ReportEvent.id)
    )
    for report_id, note in closing:
        notes[report_id] = note  # the last one wins
    return {
        r.id: Trail(latest.get(r.id) or r.updated_at, notes.get(r.id) or r.resolution_note)
        for r in reports
    }
