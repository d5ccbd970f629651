"""The access log: every privileged read of personal data, who and when, never the data.

Staff read people's reports on the desk (a report's page, its photos, a download of the list),
in chat (``/ekspor``, ``/status`` of a ticket that is not theirs) and operators on the command
line (``ktn-bot export``). Each read is one row written in the reading transaction: the kind of
read, the reader (a contact; none for the command line), the report or the export's filter.
The log is kept for ``[retention] access_log_days`` (``storage.retention``) and read with
``ktn-bot pdp access-log``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AccessLog, Contact, Report

SUBJECT_LENGTH = 255


class AccessKind(StrEnum):
    REPORT = "report"  # one report's page (the desk) or detail (/status)
    PHOTO = "photo"  # one of a report's photos (the desk)
    EXPORT = "export"  # a list of reports as a file (desk download, /ekspor, ktn-bot export)
    PROBLEM = "problem"  # a problem's page on the desk (its notes may describe victims)


class AccessVia(StrEnum):
    DESK = "desk"
    CHAT = "chat"
    CLI = "cli"


# Filter fields whose value may be personal (a search for a name): only their presence is logged.
FREE_TEXT = frozenset({"q", "text"})


def describe_filter(values: Mapping[str, Any]) -> str:
    """An export's filter as the log keeps it: ``format=csv status=new,claimed q=…``; empty
    fields left out, free text never written."""
    parts = []
    for key, value in values.items():
        if value in (None, "", [], ()):
            continue
        if key in FREE_TEXT:
            shown = "…"
        elif isinstance(value, (list, tuple)):
            shown = ",".join(str(v) for v in value)
        else:
            shown = str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def record(
    session: AsyncSession,
    *,
    kind: AccessKind,
    via: AccessVia,
    now: datetime,
    actor_id: int | None = None,
    report_id: int | None = None,
    subject: str | None = None,
) -> AccessLog:
    """Add one read to the log (the caller commits with the read's transaction)."""
    row = AccessLog(
        at=now,
        actor_id=actor_id,
        kind=kind.value,
        via=via.value,
        report_id=report_id,
        subject=subject[:SUBJECT_LENGTH] if subject else None,
    )
    session.add(row)
    return row


async def since(session: AsyncSession, start: datetime, limit: int = 10_000) -> Sequence[Any]:
    """Reads from ``start`` on, oldest first: the row, the reader's name and the ticket."""
    stmt = (
        select(AccessLog, Contact.display_name, Contact.role, Report.ticket)
        .outerjoin(Contact, Contact.id == AccessLog.actor_id)
        .outerjoin(Report, Report.id == AccessLog.report_id)
        .where(AccessLog.at >= start)
        .order_by(AccessLog.at, AccessLog.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()
