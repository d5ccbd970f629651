"""The desk's rules (the web dashboard in bot/web/desk), channel-free.

``/dasbor`` (``/dashboard``) in a private chat answers a staff member with a single-use sign-in
link, valid ``CoreConfig.desk_login_minutes``; ``/dasbor keluar`` (``logout``) signs them out of
every browser. What the desk shows is scoped to the person's area and the areas below it
(``scope``). Its actions go through the chat's own functions (``handlers.actions.perform``,
``handlers.lifecycle.reopen_report``): the same permission checks, the same trail events
(marked ``via = "dasbor"``), the same alert edits and news to the reporter and followers, as
outbox rows the caller commits. Two actions exist only here: reopening a closed report
(resolved, rejected or a duplicate; staff of its area, with a reason) and handing a report to
another officer of its area (who is told; the reporter and followers hear who handles it now,
as after a claim).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.actions import NOTE_LIMIT, Action, Verdict, perform
from handlers.alerts import enqueue_alert_edits, staff_name
from handlers.commands import DESK_LOGOUT_WORDS
from handlers.context import Context
from handlers.lifecycle import reopen_report
from handlers.notify import enqueue_news
from handlers.permissions import is_staff, may_act, may_close_claimed
from handlers.render import status_label
from handlers.routing import BotRoutes
from handlers.turn import Turn
from handlers.types import Media, Reply
from storage import desk, outbox
from storage.areas import descendant_ids
from storage.models import Contact, Report
from storage.types import OutboxKind, ReportStatus

VIA = "dasbor"
LOGIN_PATH = "/dasbor/masuk/"
# What staff may reopen: a report closed as resolved, rejected or a duplicate.
REOPENABLE = frozenset({ReportStatus.RESOLVED, ReportStatus.REJECTED, ReportStatus.DUPLICATE})


async def command(turn: Turn, arg: str | None) -> None:
    """/dasbor: a sign-in link for staff; /dasbor keluar: sign out of every browser."""
    if not is_staff(turn.contact):
        turn.say(turn.t("desk.only_staff"))
    elif arg is not None and arg.lower() in DESK_LOGOUT_WORDS:
        ended = await desk.end_all(turn.session, turn.contact.id, turn.now)
        turn.say(turn.t("desk.logged_out", count=ended))
    elif turn.config.desk_url is None:
        turn.say(turn.t("desk.off"))
    else:
        await turn.session.flush()  # the contact's id
        minutes = turn.config.desk_login_minutes
        token = desk.create_login(
            turn.session, turn.contact.id, turn.now, timedelta(minutes=minutes)
        )
        link = f"{turn.config.desk_url}{LOGIN_PATH}{token}"
        turn.say(turn.t("desk.link", link=link, minutes=minutes))
    await turn.reprompt_if_busy()


async def scope(session: AsyncSession, contact: Contact | None) -> list[int]:
    """The areas the person sees on the desk: their own and every area below; none for
    anyone but staff."""
    if contact is None or not is_staff(contact) or contact.area_id is None:
        return []
    return await descendant_ids(session, contact.area_id)


def language(ctx: Context, contact: Contact) -> str:
    """The person's language for texts of the chat catalog."""
    lang = contact.language or ctx.config.default_language
    return lang if lang in ctx.config.catalog.languages else ctx.config.default_language


async def act(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    report: Report,
    action: Action,
    note: str | None = None,
    photo: Media | None = None,
) -> Verdict:
    """Claim, resolve (with the closure photo, stored already), reject or merge from the desk,
    exactly as in chat (``handlers.actions``)."""
    lang = language(ctx, actor)
    return await perform(session, ctx, actor, report, action, lang, note, photo, via=VIA)


def may_reopen(report: Report) -> bool:
    """Whether the report is closed in a way staff may undo on the desk."""
    try:
        return ReportStatus(report.status) in REOPENABLE
    except ValueError:  # a status this version does not know: leave it alone
        return False


async def reopen(
    session: AsyncSession, ctx: Context, actor: Contact, report: Report, reason: str | None
) -> Verdict:
    """Reopen a resolved, rejected or duplicate report ("Buka lagi"): staff of its area (or an
    area above), with a reason. Its officers get the alert again, naming who reopened it and
    why; the alerts that can be edited show it; the reporter and followers are told.
    ``needs_note``: the reason is missing."""
    lang = language(ctx, actor)
    catalog = ctx.config.catalog
    if not await may_act(session, actor, report):
        return Verdict(False, catalog.text(lang, "staff.not_allowed"))
    if not may_reopen(report):
        status = status_label(catalog, lang, report.status)
        return Verdict(
            False, catalog.text(lang, "desk.reopen_not_closed", ticket=report.ticket, status=status)
        )
    reason = (reason or "").strip() or None
    if reason is None:
        return Verdict(False, needs_note=True)
    if len(reason) > NOTE_LIMIT:
        return Verdict(
            False, catalog.text(lang, "staff.note_too_long", limit=NOTE_LIMIT, length=len(reason))
        )
    rows = await reopen_report(session, ctx, report, actor, reason, via=VIA)
    if rows is None:
        return Verdict(False, catalog.text(lang, "desk.changed_meanwhile"))
    return Verdict(True, catalog.text(lang, "desk.reopened", ticket=report.ticket), rows=rows)


async def hand_over(
    session: AsyncSession, ctx: Context, actor: Contact, report: Report, to_id: int
) -> Verdict:
    """Give an open report to another officer of its area: the actor must be allowed to act
    on it (a claimed one: its assignee or a coordinator/admin), the new officer too. The
    report's alerts are edited to show the new officer, who is told in their chat; the
    reporter and followers hear who handles it now (the news of a claim)."""
    lang = language(ctx, actor)
    catalog = ctx.config.catalog
    status = ReportStatus(report.status)
    if (
        not await may_act(session, actor, report)
        or not status.is_open
        or (status is ReportStatus.CLAIMED and not may_close_claimed(actor, report))
    ):
        return Verdict(False, catalog.text(lang, "desk.hand_not_allowed"))
    target = await session.get(Contact, to_id)
    if (
        target is None
        or target.id == report.assignee_id
        or not await may_act(session, target, report)
    ):
        return Verdict(False, catalog.text(lang, "desk.hand_bad_officer"))
    moved = await desk.hand_over(
        session, report, target.id, actor_id=actor.id, now=ctx.now, via=VIA
    )
    if not moved:
        return Verdict(False, catalog.text(lang, "desk.changed_meanwhile"))
    rows = await enqueue_alert_edits(session, report, ctx, actor)
    rows += await enqueue_news(session, report, ctx, target)
    if target.id != actor.id:
        their = language(ctx, target)
        text = catalog.text(
            their, "desk.handed_to_you", ticket=report.ticket, name=staff_name(ctx, their, actor)
        )
        rows.append(
            outbox.enqueue(
                session,
                channel=target.channel,
                chat_id=target.external_id,
                kind=OutboxKind.NOTICE.value,
                reply=Reply(text),
                contact_id=target.id,
                report_id=report.id,
                extra={"ticket": report.ticket, "lang": their},
                bot=await BotRoutes(session, ctx.config).contact(target),
            )
        )
    name = staff_name(ctx, lang, target)
    return Verdict(
        True, catalog.text(lang, "desk.handed", ticket=report.ticket, name=name), rows=rows
    )
