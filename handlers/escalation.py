"""Escalation: a report nobody claimed in time goes, once, to the parent area's group and its
coordinators.

Driven by the database, not by timers: ``reports.escalate_at`` is set when the report is filed
(per category, urgent much sooner) and ``escalate_due`` is called periodically by the process. A
restart loses nothing, and a conditional UPDATE on ``escalated_at`` makes sure two workers never
both escalate one report. The reporter is not told (the alert went out; nothing changed for them).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import escalation_recipients, send_copies
from handlers.context import Context
from storage import reports
from storage.types import OutboxKind

log = logging.getLogger(__name__)


async def escalate_due(session: AsyncSession, ctx: Context, *, limit: int = 100) -> list[int]:
    """Escalate every unclaimed report whose time has come; returns their ids. Caller commits."""
    escalated = []
    for report in await reports.due_for_escalation(session, ctx.now, limit):
        if not await reports.mark_escalated(session, report, ctx.now):
            continue  # claimed meanwhile, or another worker was first
        reports.add_event(session, report.id, "escalated", ctx.now)
        recipients = await escalation_recipients(session, report, ctx)
        if recipients:
            await send_copies(
                session,
                report,
                ctx,
                recipients,
                OutboxKind.ESCALATION,
                header="alert.escalation_title",
            )
        else:
            log.warning(
                "report %s in area %s: nobody above it to escalate to", report.id, report.area_id
            )
        escalated.append(report.id)
    await session.flush()
    return escalated
