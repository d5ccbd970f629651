"""The desk's rules (the web dashboard in bot/web/desk), channel-free.

``/dasbor`` (``/dashboard``) in a private chat answers a staff member with a single-use sign-in
link, valid ``CoreConfig.desk_login_minutes``; ``/dasbor keluar`` (``logout``) signs them out of
every browser. What the desk shows is scoped to the person's area and the areas below it
(``scope``). Its actions go through the chat's own functions (``handlers.actions.perform``):
the same permission checks, the same trail events (marked ``via = "dasbor"``), the same alert
edits and news to the reporter and followers, as outbox rows the caller commits.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.actions import Action, Verdict, perform
from handlers.alerts import enqueue_alert_edits, staff_name
from handlers.commands import DESK_LOGOUT_WORDS
from handlers.context import Context
from handlers.permissions import is_staff, may_act, may_close_claimed
from handlers.routing import BotRoutes
from handlers.turn import Turn
from handlers.types import Reply
from storage import desk, outbox
from storage.areas import descendant_ids
from storage.models import Contact, Report
from storage.types import OutboxKind, ReportStatus

VIA = "dasbor"
LOGIN_PATH = "/dasbor/masuk/"


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
) -> Verdict:
    """Claim, resolve or reject from the desk, exactly as in chat (``handlers.actions``)."""
    return await perform(session, ctx, actor, report, action, language(ctx, actor), note, via=VIA)


async def hand_over(
    session: AsyncSession, ctx: Context, actor: Contact, report: Report, to_id: int
) -> Verdict:
    """Give an open report to another officer of its area: the actor must be allowed to act
    on it (a claimed one: its assignee or a coordinator/admin), the new officer too. The
    report's alerts are edited to show the new officer, who is told in their chat."""
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
