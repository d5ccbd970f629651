"""Claim, resolve and reject a report: the one place a report's status moves (channel-free).

Buttons ``claim:<id>``, ``resolve:<id>``, ``reject:<id>`` and the typed forms end up here. Each
action checks permissions (handlers/permissions.py), moves the status forward with a conditional
UPDATE (two officers pressing Tangani at once: exactly one claim), writes the audit event, edits
the report's alert messages and tells the reporter and followers. A refusal changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import enqueue_alert_edits, staff_name
from handlers.context import Context
from handlers.notify import enqueue_news
from handlers.permissions import may_act, may_close_claimed
from handlers.render import status_label
from storage import reports
from storage.models import Contact, Outbox, Report
from storage.types import ReportStatus

NOTE_LIMIT = 500
_BUTTON = re.compile(r"^(claim|resolve|reject):(\d{1,18})$")


class Action(StrEnum):
    CLAIM = "claim"
    RESOLVE = "resolve"
    REJECT = "reject"

    @property
    def target(self) -> ReportStatus:
        """The status the action moves a report to."""
        return {
            Action.CLAIM: ReportStatus.CLAIMED,
            Action.RESOLVE: ReportStatus.RESOLVED,
            Action.REJECT: ReportStatus.REJECTED,
        }[self]

    @property
    def needs_note(self) -> bool:
        """Resolving asks for a short note, rejecting for a reason."""
        return self is not Action.CLAIM


@dataclass(slots=True)
class Verdict:
    """What came of an attempt: done or not, what to tell the actor, the rows written."""

    done: bool
    text: str = ""
    needs_note: bool = False
    rows: list[Outbox] = field(default_factory=list)


MAX_REPORT_ID = 2**31 - 1  # reports.id is an INTEGER: a larger number is no report, not an error


async def report_of_button(session: AsyncSession, report_id: int) -> Report | None:
    """The report a button names, or None (gone, or a forged number beyond any id)."""
    if not 0 < report_id <= MAX_REPORT_ID:
        return None
    return await session.get(Report, report_id)


def parse_button(data: str | None) -> tuple[Action, int] | None:
    """('claim', 42) for the button data 'claim:42'; None for any other button."""
    match = _BUTTON.match(data or "")
    if match is None:
        return None
    return Action(match.group(1)), int(match.group(2))


async def handled_by(
    session: AsyncSession, ctx: Context, report: Report, actor: Contact | None, lang: str
) -> str:
    """'Sudah ditangani oleh Andi (selesai).' or 'Anda sudah menangani ini (…).'."""
    catalog = ctx.config.catalog
    status = status_label(catalog, lang, report.status)
    actor_id = (
        report.assignee_id
        if report.status == ReportStatus.CLAIMED.value
        else await reports.last_actor_id(session, report.id, report.status)
    )
    if actor is not None and actor_id == actor.id:
        return catalog.text(lang, "staff.already_yours", status=status)
    other = await session.get(Contact, actor_id) if actor_id is not None else None
    name = staff_name(ctx, lang, other)
    return catalog.text(lang, "staff.already_handled", name=name, status=status)


async def refusal(
    session: AsyncSession,
    ctx: Context,
    actor: Contact | None,
    report: Report,
    action: Action,
    lang: str,
) -> str | None:
    """Why the actor may not do this now (a polite sentence), or None when they may."""
    if actor is None or not await may_act(session, actor, report):
        return ctx.config.catalog.text(lang, "staff.not_allowed")
    status = ReportStatus(report.status)
    if not status.is_open:
        return await handled_by(session, ctx, report, actor, lang)
    if status is ReportStatus.CLAIMED and (
        action is Action.CLAIM or not may_close_claimed(actor, report)
    ):
        return await handled_by(session, ctx, report, actor, lang)
    return None


async def perform(
    session: AsyncSession,
    ctx: Context,
    actor: Contact | None,
    report: Report,
    action: Action,
    lang: str,
    note: str | None = None,
    *,
    via: str | None = None,
) -> Verdict:
    """Do the action if allowed; a resolve/reject without a note asks for one first.
    ``via`` marks the trail event when the action was not taken in a chat ("dasbor")."""
    catalog = ctx.config.catalog
    reason = await refusal(session, ctx, actor, report, action, lang)
    if reason is not None or actor is None:
        return Verdict(False, reason or "")
    note = (note or "").strip() or None
    if action.needs_note and note is None:
        return Verdict(False, needs_note=True)
    if note is not None and len(note) > NOTE_LIMIT:
        return Verdict(
            False, catalog.text(lang, "staff.note_too_long", limit=NOTE_LIMIT, length=len(note))
        )
    moved = await reports.change_status(
        session,
        report,
        action.target,
        actor_id=actor.id,
        now=ctx.now,
        note=note if action.needs_note else None,
        via=via,
    )
    if not moved:  # someone else got there first: say who, change nothing
        return Verdict(False, await handled_by(session, ctx, report, actor, lang))
    rows = await enqueue_alert_edits(session, report, ctx, actor)
    rows += await enqueue_news(session, report, ctx, actor)
    done = catalog.text(lang, f"staff.done_{action.value}", ticket=report.ticket)
    return Verdict(True, done, rows=rows)
