"""Claim, resolve, reject and merge a report: where officers move a report's status
(channel-free; the reporter's own answers are ``handlers.lifecycle``).

Buttons ``claim:<id>``, ``resolve:<id>``, ``reject:<id>``, ``merge:<id>`` and the typed forms
end up here. Each action checks permissions (handlers/permissions.py), moves the status forward
with a conditional UPDATE (two officers pressing Tangani at once: exactly one claim), writes the
audit event, edits the report's alert messages and tells the reporter and followers. A refusal
changes nothing.

Resolving asks for a note and, as the category's ``closure_photo`` says, a photo of the result:
the reporter gets both, with "Sudah beres" / "Belum". Merging (``duplikat``) needs the ticket of
the report it duplicates: both must be reports the officer may act on; the duplicate's reporter
and followers follow the other report from then on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import enqueue_alert_edits, staff_name
from handlers.claims import claim_refusal
from handlers.context import Context
from handlers.notify import enqueue_news
from handlers.permissions import may_act, may_close_claimed
from handlers.render import status_label
from handlers.types import Media, MediaKind
from storage import reports
from storage.models import Contact, Outbox, Report
from storage.types import ReportStatus

NOTE_LIMIT = 500
_BUTTON = re.compile(r"^(claim|resolve|reject|merge):(\d{1,18})$")
CLOSURE_KINDS = frozenset({MediaKind.PHOTO})


class Action(StrEnum):
    CLAIM = "claim"
    RESOLVE = "resolve"
    REJECT = "reject"
    MERGE = "merge"

    @property
    def target(self) -> ReportStatus:
        """The status the action moves a report to."""
        return {
            Action.CLAIM: ReportStatus.CLAIMED,
            Action.RESOLVE: ReportStatus.RESOLVED,
            Action.REJECT: ReportStatus.REJECTED,
            Action.MERGE: ReportStatus.DUPLICATE,
        }[self]

    @property
    def needs_note(self) -> bool:
        """Resolving asks for a short note, rejecting for a reason, merging for the ticket of
        the report it duplicates."""
        return self is not Action.CLAIM


@dataclass(slots=True)
class Verdict:
    """What came of an attempt: done or not, what to tell the actor, the rows written.
    ``needs_note``: ask for what is missing (the note, or a required closure photo);
    ``keep_note``: the note already given, kept while the photo is asked for."""

    done: bool
    text: str = ""
    needs_note: bool = False
    rows: list[Outbox] = field(default_factory=list)
    keep_note: str | None = None


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
    actor_id = (  # reopened: its officer, never the reporter who reopened it
        report.assignee_id
        if report.status in (ReportStatus.CLAIMED.value, ReportStatus.REOPENED.value)
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
    try:
        status = ReportStatus(report.status)
    except ValueError:  # a status this version does not know: leave it alone
        return await handled_by(session, ctx, report, actor, lang)
    if not status.is_open:
        return await handled_by(session, ctx, report, actor, lang)
    if status is ReportStatus.CLAIMED and action is Action.CLAIM:
        return await handled_by(session, ctx, report, actor, lang)
    if action is not Action.CLAIM and not may_close_claimed(actor, report):
        return await handled_by(session, ctx, report, actor, lang)
    if action is Action.CLAIM:  # nobody holds more open claims than the cap
        return await claim_refusal(session, ctx, actor, lang)
    return None


async def perform(
    session: AsyncSession,
    ctx: Context,
    actor: Contact | None,
    report: Report,
    action: Action,
    lang: str,
    note: str | None = None,
    photo: Media | None = None,
    *,
    via: str | None = None,
) -> Verdict:
    """Do the action if allowed; a resolve/reject/merge without its note asks for it first,
    a resolve whose category requires a closure photo asks for the photo. ``via`` marks the
    trail event when the action was not taken in a chat ("dasbor")."""
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
    if action is Action.MERGE:
        return await merge(session, ctx, actor, report, note or "", lang, via=via)
    closure = ctx.config.closure_photo(report.category)
    if action is Action.RESOLVE and closure == "required" and photo is None:
        return Verdict(False, needs_note=True, keep_note=note)
    if closure == "off" or action is not Action.RESOLVE:
        photo = None
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
    if photo is not None:
        reports.add_closure_media(
            session,
            report.id,
            reports.MediaRef(
                kind=photo.kind.value,
                channel=actor.channel,
                file_ref=photo.ref,
                content_type=photo.content_type,
                store_ref=photo.ref if photo.stored else None,
                size=photo.size,
            ),
            ctx.now,
        )
    rows = await enqueue_alert_edits(session, report, ctx, actor)
    rows += await enqueue_news(session, report, ctx, actor, photo=photo)
    done = catalog.text(lang, f"staff.done_{action.value}", ticket=report.ticket)
    return Verdict(True, done, rows=rows)


async def merge(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    report: Report,
    arg: str,
    lang: str,
    *,
    via: str | None = None,
) -> Verdict:
    """Mark the report a duplicate of the one named in ``arg`` ("KTN-BBB ..."): both must be
    reports the actor may act on; its people follow the other report from now on. ``via``
    marks both trail events (the duplicate's and the main report's "merged_in")."""
    catalog = ctx.config.catalog
    first = arg.split(None, 1)[0] if arg.split() else ""
    ticket = reports.normalise_ticket(first)
    if ticket is None:
        return Verdict(False, catalog.text(lang, "staff.usage_merge"))
    target = await reports.get_by_ticket(session, ticket)
    if target is None:
        return Verdict(False, catalog.text(lang, "staff.ticket_unknown", ticket=ticket))
    if target.id == report.id:
        return Verdict(False, catalog.text(lang, "merge.same", ticket=ticket))
    if not await may_act(session, actor, target):
        return Verdict(False, catalog.text(lang, "merge.target_not_allowed", ticket=ticket))
    if target.status == ReportStatus.DUPLICATE.value:
        into = await session.get(Report, target.duplicate_of_id) if target.duplicate_of_id else None
        return Verdict(
            False,
            catalog.text(
                lang, "merge.target_merged", ticket=ticket, into=into.ticket if into else "-"
            ),
        )
    if target.status == ReportStatus.REJECTED.value:
        return Verdict(False, catalog.text(lang, "merge.target_rejected", ticket=ticket))
    moved = await reports.change_status(
        session,
        report,
        ReportStatus.DUPLICATE,
        actor_id=actor.id,
        now=ctx.now,
        note=target.ticket,
        duplicate_of_id=target.id,
        via=via,
    )
    if not moved:
        return Verdict(False, await handled_by(session, ctx, report, actor, lang))
    reports.add_event(
        session, target.id, "merged_in", ctx.now, actor_id=actor.id, note=report.ticket, via=via
    )
    rows = await enqueue_alert_edits(session, report, ctx, actor)
    rows += await enqueue_news(session, report, ctx, actor, target=target)
    await reports.take_over_followers(session, report, target, ctx.now)
    done = catalog.text(lang, "staff.done_merge", ticket=report.ticket, target=target.ticket)
    return Verdict(True, done, rows=rows)
