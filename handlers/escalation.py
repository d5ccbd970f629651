"""Escalation: a report nobody claimed in time goes, once, to the parent area's officers' group
(its groups, and 1:1 every officer of it no group reaches, e.g. on WhatsApp) and its
coordinators (``handlers.alerts.escalation_recipients``).

Driven by the database, not by timers: ``reports.escalate_at`` is set when the report is filed
(per category, urgent much sooner) and ``escalate_due`` is called periodically by the process. A
restart loses nothing, and a conditional UPDATE on ``escalated_at`` makes sure two workers never
both escalate one report. The reporter is not told (the alert went out; nothing changed for them).

Each report is escalated in its own savepoint (``handlers.sweep``): one that fails (a broken text
override, bad data) is rolled back alone, logged and counted, and set aside with an
``escalate_failed`` event, so it is not due again: it neither holds back the reports after it
(in this sweep, on later pages, in later sweeps) nor fails every sweep again. It still counts as
overdue in the recap; its alert went out when it was filed.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import escalation_recipients, send_copies
from handlers.context import Context
from handlers.sweep import FailureHook, ItemGuard
from storage import reports
from storage.models import Report
from storage.types import OutboxKind

log = logging.getLogger(__name__)


async def escalate_due(
    session: AsyncSession, ctx: Context, *, limit: int = 100, on_failure: FailureHook | None = None
) -> list[int]:
    """Escalate every unclaimed report whose time has come; returns their ids. Caller commits.

    A report that fails is set aside (see the module's description) and ``on_failure`` hears
    of it; if even setting it aside fails, it is reported again and stays due.
    """
    guard = ItemGuard(session, "escalation", on_failure)
    escalated = []
    for report in await reports.due_for_escalation(session, ctx.now, limit):
        report_id = report.id
        async with guard.item(f"report {report_id}") as attempt:
            if await _escalate(session, ctx, report):
                escalated.append(report_id)
        if attempt.failure is not None:
            async with guard.item(f"report {report_id}"):
                reports.add_event(
                    session,
                    report_id,
                    reports.ESCALATION_FAILED,
                    ctx.now,
                    note=attempt.failure.error,
                )
    await session.flush()
    return escalated


async def _escalate(session: AsyncSession, ctx: Context, report: Report) -> bool:
    """Escalate one report: False if it was claimed meanwhile or another worker was first."""
    if not await reports.mark_escalated(session, report, ctx.now):
        return False
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
    return True
