"""Escalation that climbs: a report nobody claims goes up the area tree, one area a step, until
it is claimed or the top is reached.

Unclaimed after its category's time (``CoreConfig.escalation_minutes``; urgent much sooner),
level 1: the report's own area's coordinators and the parent area's officers' group (its
groups, and 1:1 every officer of it no group reaches, e.g. on WhatsApp) and coordinators
(``handlers.alerts.escalation_recipients``). Still unclaimed after the same interval again,
level 2: the area above that one; and so on up to the top area, or to
``CoreConfig.escalation_max_level``. An area with nobody to tell is passed over (the step
goes on to the next one up that has someone); with nobody left above, the escalation stops
(``escalation_end`` in the trail). A claim stops it: only ``new`` reports are due.

Driven by the database, not by timers: ``reports.escalate_at`` is the next step's time and
``reports.escalation_level`` the level reached; ``escalate_due`` is called periodically by the
leader. A restart loses nothing, and a conditional UPDATE on the level read makes sure two
workers never both take one step. Each step is an ``escalated`` event in the report's trail
(the note names the level and the area) and is counted by level (``on_step``; the process's
``ktn_escalations_total{level}``). The reporter is not told (nothing changed for them).

Each report is escalated in its own savepoint (``handlers.sweep``): one that fails (a broken text
override, bad data) is rolled back alone, logged and counted, and set aside with an
``escalate_failed`` event, so it is not due again: it neither holds back the reports after it
(in this sweep, on later pages, in later sweeps) nor fails every sweep again. It still counts as
overdue in the recap; its alert went out when it was filed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import Recipient, escalation_recipients, own_coordinators, send_copies
from handlers.context import Context
from handlers.permissions import area_chain_ids
from handlers.sweep import FailureHook, ItemGuard
from storage import contacts, reports
from storage.models import Area, Contact, Report
from storage.types import OutboxKind, Role

log = logging.getLogger(__name__)

ESCALATED = "escalated"  # a step up: its note says "level N: <area code> <area name>"
ESCALATION_END = "escalation_end"  # nobody left above: the escalation stops


StepHook = Callable[[int, int], None]  # (report id, level reached) of each step taken


async def escalate_due(
    session: AsyncSession,
    ctx: Context,
    *,
    limit: int = 100,
    on_failure: FailureHook | None = None,
    on_step: StepHook | None = None,
) -> list[int]:
    """Take the next escalation step of every unclaimed report whose time has come; returns
    the ids of the reports that went up (a report that reached the top and stops is not
    among them). Caller commits.

    A report that fails is set aside (see the module's description) and ``on_failure`` hears
    of it; if even setting it aside fails, it is reported again and stays due.
    """
    guard = ItemGuard(session, "escalation", on_failure)
    escalated = []
    for report in await reports.due_for_escalation(session, ctx.now, limit):
        report_id = report.id
        level = 0
        async with guard.item(f"report {report_id}") as attempt:
            level = await _escalate(session, ctx, report)
        if attempt.failure is not None:
            async with guard.item(f"report {report_id}"):
                reports.add_event(
                    session,
                    report_id,
                    reports.ESCALATION_FAILED,
                    ctx.now,
                    note=attempt.failure.error,
                )
        elif level:
            escalated.append(report_id)
            if on_step is not None:
                on_step(report_id, level)
    await session.flush()
    return escalated


async def _next_step(
    session: AsyncSession, ctx: Context, report: Report
) -> tuple[int, Area | None, list[Recipient]]:
    """The next level with anyone to tell, its area (None: the report's own area has no area
    above it) and whom; (0, None, []) when nobody is left up to the top level."""
    chain = await area_chain_ids(session, report.area_id)
    top = max(len(chain) - 1, 1)
    if ctx.config.escalation_max_level:
        top = min(top, ctx.config.escalation_max_level)
    own: list[Contact] = []
    if report.escalation_level == 0:  # the first step tells the area's own coordinators too
        own = await contacts.staff_in_area(session, report.area_id, [Role.COORDINATOR.value])
    for level in range(report.escalation_level + 1, top + 1):
        area = await session.get(Area, chain[level]) if level < len(chain) else None
        if area is None:
            found = await own_coordinators(session, ctx, own)
        else:
            found = await escalation_recipients(session, report, ctx, area.id, also=own)
        if found:
            return level, area, found
    return 0, None, []


async def _escalate(session: AsyncSession, ctx: Context, report: Report) -> int:
    """Take one report's next step; the level reached, or 0 if it was claimed meanwhile,
    another worker was first, or nobody is left above (the escalation stops)."""
    level, area, recipients = await _next_step(session, ctx, report)
    if not level:
        if await reports.mark_escalated(
            session, report, ctx.now, level=report.escalation_level, next_at=None
        ):
            reports.add_event(
                session, report.id, ESCALATION_END, ctx.now, note=f"level {report.escalation_level}"
            )
            log.warning(
                "report %s in area %s: nobody above level %s to escalate to",
                report.id,
                report.area_id,
                report.escalation_level,
            )
        return 0
    minutes = ctx.config.escalation_minutes(report.category, report.urgent)
    next_at = ctx.now + timedelta(minutes=minutes)
    if not await reports.mark_escalated(session, report, ctx.now, level=level, next_at=next_at):
        return 0
    where = f"{area.code} {area.name}" if area is not None else "-"
    # The n-th step of the report (it starts again after a claim offered back, ``handlers.claims``)
    # tells its copies apart from earlier ones to the same chats.
    step = await reports.count_events(session, report.id, ESCALATED) + 1
    reports.add_event(session, report.id, ESCALATED, ctx.now, note=f"level {level}: {where}")
    await send_copies(
        session,
        report,
        ctx,
        recipients,
        OutboxKind.ESCALATION,
        header="alert.escalation_title" if level == 1 else "alert.escalation_title_level",
        round_=None if step == 1 else f"s{step}",
        level=level,
    )
    return level
