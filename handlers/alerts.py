"""The officers' alert for a report, its routing, escalation copies and in-place edits.

Routing: the area's officers' group (``handlers.audience``): its alert group(s), and 1:1 each
officer no group reaches (on a channel without group chats, e.g. WhatsApp through Twilio, or in
an area without a group); without officers or a group, the coordinators of the nearest area (the
report's own, then its parents) that has any. Escalations go up one area at a time
(``handlers.escalation``): each area's officers' group the same way, and its coordinators; with
nobody at all the report is still kept,
with an "unrouted" event, and shows as "menunggu petugas". An anonymous reporter's name, id and
phone never go into an alert, an escalation or an edit. A report filed through the Open311 API
names the person it was filed for (unless anonymous) and the system that filed it.
Recipients on a channel whose buttons may not reach them (WhatsApp: buttons inside the 24-hour
window only) get the text with a line saying how to answer, beside the buttons. What a channel
can do comes from ``CoreConfig.channels``, never its name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import board
from handlers.audience import officers_group, one_per_person
from handlers.context import Context
from handlers.permissions import area_chain_ids
from handlers.render import category_label, description_text, format_clock, format_time
from handlers.routing import DEFAULT_BOT, BotRoutes
from handlers.types import Location, Media, MediaKind, Option, Reply
from storage import contacts, open311, outbox, reports
from storage.group_links import alert_groups
from storage.models import Area, Contact, GroupChat, Open311Request, Outbox, Report
from storage.types import OutboxKind, OutboxStatus, ReportStatus, Role

log = logging.getLogger(__name__)

ALERT_PURPOSE = "alerts"
LIVE_STATUSES = (
    OutboxStatus.PENDING.value,
    OutboxStatus.SENDING.value,
    OutboxStatus.SENT.value,
    OutboxStatus.DELIVERED.value,
    OutboxStatus.READ.value,
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one copy of an alert goes: a group (no contact) or a staff member's private chat."""

    channel: str
    chat_id: int
    lang: str
    route: str
    contact_id: int | None = None
    bot: str = DEFAULT_BOT  # the Telegram bot that reaches this chat (handlers.routing)


async def _group_recipients(
    routes: BotRoutes, groups: list[GroupChat], lang: str
) -> list[Recipient]:
    return [
        Recipient(g.channel, g.chat_id, lang, "group", bot=await routes.group(g)) for g in groups
    ]


async def _private_recipients(
    routes: BotRoutes, people: list[Contact], route: str, default: str
) -> list[Recipient]:
    return [
        Recipient(
            p.channel, p.external_id, p.language or default, route, p.id, await routes.contact(p)
        )
        for p in people
    ]


async def alert_recipients(session: AsyncSession, report: Report, ctx: Context) -> list[Recipient]:
    """The area's officers' group (``handlers.audience``: its group(s), and 1:1 every officer
    no group reaches); without any officer or group, the nearest coordinators 1:1."""
    lang = ctx.config.default_language
    routes = BotRoutes(session, ctx.config)
    groups = await alert_groups(session, report.area_id)
    reach = await officers_group(session, ctx.config, [report.area_id], groups)
    if reach.groups or reach.people:
        return await _group_recipients(routes, reach.groups, lang) + await _private_recipients(
            routes, reach.people, "officer", lang
        )
    for area_id in await area_chain_ids(session, report.area_id):
        found = await contacts.staff_in_area(session, area_id, [Role.COORDINATOR.value])
        if found:
            return await _private_recipients(routes, one_per_person(found), "coordinator", lang)
    return []


async def escalation_recipients(
    session: AsyncSession,
    report: Report,
    ctx: Context,
    area_id: int,
    also: Sequence[Contact] = (),
) -> list[Recipient]:
    """One area's officers' group (its group(s), and 1:1 every officer of it no group
    reaches, e.g. on WhatsApp) and its coordinators, and 1:1 ``also`` (the report's own area's
    coordinators on the first step, ``handlers.escalation``); each person once."""
    lang = ctx.config.default_language
    routes = BotRoutes(session, ctx.config)
    reach = await officers_group(
        session, ctx.config, [area_id], await alert_groups(session, area_id)
    )
    coordinators = await contacts.staff_in_area(session, area_id, [Role.COORDINATOR.value])
    people = one_per_person([*reach.people, *also, *coordinators], reached=reach.via_groups)
    officers = [p for p in people if p.role == Role.OFFICER.value]
    found = await _group_recipients(routes, reach.groups, lang)
    found += await _private_recipients(routes, officers, "officer", lang)
    found += await _private_recipients(
        routes, [p for p in people if p.role != Role.OFFICER.value], "coordinator", lang
    )
    return found


async def own_coordinators(
    session: AsyncSession, ctx: Context, people: Sequence[Contact]
) -> list[Recipient]:
    """These coordinators 1:1, each person once (an escalation of a top area's report)."""
    routes = BotRoutes(session, ctx.config)
    lang = ctx.config.default_language
    return await _private_recipients(routes, one_per_person(people), "coordinator", lang)


async def compose_alert(
    session: AsyncSession, report: Report, ctx: Context, lang: str | None = None
) -> tuple[Reply, list[dict[str, Any]]]:
    """The alert message (text, pin, first photo, Tangani/Selesai/Tolak) and all media refs."""
    lang = lang or ctx.config.default_language
    catalog = ctx.config.catalog

    def t(key: str, **params: object) -> str:
        return catalog.text(lang, key, **params)

    area = await session.get(Area, report.area_id)
    files = await reports.media_of(session, report.id)
    filed = (
        (await open311.requests_of(session, [report.id])).get(report.id)
        if report.reporter_id is None  # chat reports have a reporter (erased: anonymous)
        else None
    )
    if report.anonymous or (report.reporter_id is None and filed is None):
        reporter = t("alert.reporter_anonymous")
    elif filed is not None:  # filed through the Open311 API: the person it was filed for
        reporter = _submitter(filed[0]) or t("alert.reporter_unnamed")
    else:
        contact = await session.get(Contact, report.reporter_id)
        reporter = (contact.display_name if contact else None) or t("alert.reporter_unnamed")
    if report.latitude is not None and report.longitude is not None:
        where = t("alert.where_pin", url=map_link(report.latitude, report.longitude))
        if report.address_text:
            where = f"{where} — {report.address_text}"
    else:
        where = report.address_text or "-"
    lines = [
        t("alert.title_urgent" if report.urgent else "alert.title"),
        t("alert.ticket", ticket=report.ticket),
        t("alert.category", category=category_label(catalog, lang, report.category)),
        t("alert.area", area=area.name if area else "-"),
        t("alert.time", time=format_time(report.created_at, area.timezone if area else None)),
        t(
            "alert.description",
            description=description_text(catalog, lang, report.description)
            or t("alert.voice_only"),
        ),
        t("alert.where", where=where),
        t("alert.reporter", reporter=reporter),
    ]
    if filed is not None:
        key = filed[1]
        lines.append(t("alert.via_api", source=(key.label if key else None) or "Open311"))
    if files:
        lines.append(t("alert.media", count=len(files)))
    location = (
        Location(report.latitude, report.longitude)
        if report.latitude is not None and report.longitude is not None
        else None
    )
    refs = [
        {
            "kind": m.kind,
            "ref": m.store_ref or m.file_ref,
            "content_type": m.content_type,
            "channel": m.channel,
            "size": m.size,
        }
        for m in files
    ]
    first = next((m for m in files if m.kind in (MediaKind.PHOTO, MediaKind.VIDEO)), None)
    media = (
        Media(
            MediaKind(first.kind), first.store_ref or first.file_ref, first.content_type, first.size
        )
        if first
        else None
    )
    reply = Reply(
        text="\n".join(lines),
        options=action_options(ctx, lang, report),
        location=location,
        media=media,
    )
    return reply, refs


def map_link(latitude: float, longitude: float) -> str:
    """A map link for a GPS pin: the alert carries its place in its one message."""
    return f"https://www.google.com/maps?q={latitude:.5f},{longitude:.5f}"


def _submitter(row: Open311Request) -> str | None:
    """'Budi Santoso, +6281234567890' from what the submitting system said."""
    name = " ".join(p for p in (row.first_name, row.last_name) if p)
    return ", ".join(p for p in (name, row.phone) if p) or None


def action_options(
    ctx: Context, lang: str, report: Report, *, merge: bool = False
) -> tuple[Option, ...]:
    """The buttons a report's alert still needs: all three when new or reopened, two when
    claimed; ``merge`` adds "Duplikat" and "Masalah…" (the group alert, where officers work
    together; 1:1 they type GABUNG and MASALAH, a fourth button would turn WhatsApp's quick
    replies into a list)."""
    catalog = ctx.config.catalog
    keys: tuple[str, ...]
    if report.status in (ReportStatus.NEW.value, ReportStatus.REOPENED.value):
        keys = ("claim", "resolve", "reject")
    elif report.status == ReportStatus.CLAIMED.value:
        keys = ("resolve", "reject")
    else:
        keys = ()
    if keys and merge:
        keys = (*keys, "merge")
    options = [Option(catalog.text(lang, f"alert.{key}"), f"{key}:{report.id}") for key in keys]
    if keys and merge:  # handlers.problems: add the report to a problem of its area
        options.append(Option(catalog.text(lang, "alert.problem"), f"pmenu:{report.id}"))
    return tuple(options)


async def enqueue_alert(session: AsyncSession, report: Report, ctx: Context) -> list[Outbox]:
    """Queue the new report's alert for whoever should see it; returns the new rows."""
    recipients = await alert_recipients(session, report, ctx)
    if not recipients:
        reports.add_event(session, report.id, "unrouted", ctx.now)
        log.warning(
            "report %s in area %s: no alert group, officer or coordinator to alert",
            report.id,
            report.area_id,
        )
        return []
    recipients = await board.divert(session, report, ctx, recipients)
    return await send_copies(session, report, ctx, recipients, OutboxKind.ALERT)


async def send_copies(
    session: AsyncSession,
    report: Report,
    ctx: Context,
    recipients: list[Recipient],
    kind: OutboxKind,
    header: str | None = None,
    *,
    round_: str | None = None,
    **header_params: object,
) -> list[Outbox]:
    """One outbox row per recipient, in the recipient's language; header keyed by language.

    ``round_`` tells apart copies one chat gets more than once (an escalation's level, an
    alert offered again): it goes into the dedupe key."""
    composed: dict[str, tuple[Reply, list[dict[str, Any]]]] = {}
    rows = []
    for to in recipients:
        if to.lang not in composed:
            composed[to.lang] = await compose_alert(session, report, ctx, to.lang)
        reply, refs = composed[to.lang]
        if to.route == "group":  # officers of a group may mark it a duplicate from there
            reply = Reply(
                reply.text,
                action_options(ctx, to.lang, report, merge=True),
                reply.location,
                reply.media,
                reply.ask_location,
            )
        if header is not None:
            title = ctx.config.catalog.text(
                to.lang, header, minutes=_minutes_waiting(report, ctx), **header_params
            )
            reply = _with_text(reply, f"{title}\n{reply.text}")
        reply = _for_channel(reply, refs, to, ctx, report)
        if reply.location is not None and not await board.pin_fits(session, ctx, to):
            reply = Reply(reply.text, reply.options, None, reply.media, reply.ask_location)
        rows.append(
            outbox.enqueue(
                session,
                channel=to.channel,
                chat_id=to.chat_id,
                kind=kind.value,
                reply=reply,
                contact_id=to.contact_id,
                report_id=report.id,
                dedupe_key=":".join(
                    str(p)
                    for p in (kind.value, report.id, round_, to.channel, to.chat_id)
                    if p is not None
                ),
                extra={
                    "ticket": report.ticket,
                    "urgent": report.urgent,
                    "lang": to.lang,
                    "route": to.route,
                    "media": refs,
                },
                bot=to.bot,
            )
        )
    return rows


def _minutes_waiting(report: Report, ctx: Context) -> int:
    return max(0, int((ctx.now - report.created_at).total_seconds() // 60))


def _for_channel(
    reply: Reply, refs: list[dict[str, Any]], to: Recipient, ctx: Context, report: Report
) -> Reply:
    """Drop media the channel cannot send (a kind it does not send, a file over its limit, or
    a file kept before the media store as another channel's id); where buttons may not reach
    the reader, words say how to answer (beside the buttons, or instead of them on a channel
    without any). A file in the media store goes to every channel."""
    caps = ctx.config.capabilities(to.channel)
    media = reply.media
    if media is not None and not (
        caps.can_send(media.kind, media.size)
        and (media.stored or any(r["channel"] == to.channel for r in refs))
    ):
        reply = Reply(reply.text, reply.options, reply.location, None, reply.ask_location)
    if caps.buttons_need_words:
        howto = ctx.config.catalog.text(to.lang, "alert.whatsapp_howto", ticket=report.ticket)
        options = reply.options if caps.has_buttons else ()
        reply = Reply(f"{reply.text}\n\n{howto}", options, reply.location, reply.media)
    return reply


def _with_text(reply: Reply, text: str) -> Reply:
    return Reply(text, reply.options, reply.location, reply.media, reply.ask_location)


async def enqueue_alert_edits(
    session: AsyncSession,
    report: Report,
    ctx: Context,
    actor: Contact,
    *,
    followups: bool = True,
) -> list[Outbox]:
    """Edit every live alert/escalation message of the report to show who acted and when;
    the other recipients of copies that cannot be edited (WhatsApp) get it as a short message
    (unless ``followups`` is False: they get a new alert instead, e.g. when it was reopened)."""
    rows = await _edits(session, report, ctx, actor)
    await board.on_report_changed(session, report, ctx)
    if not followups:
        return rows
    return rows + await _followups(session, report, ctx, actor)


async def _live_alerts(
    session: AsyncSession, report: Report, ctx: Context, *, editable: bool
) -> list[Outbox]:
    """The report's alert/escalation messages not given up on, on editable channels or not."""
    return await outbox.of_report(
        session,
        report.id,
        kinds=(OutboxKind.ALERT.value, OutboxKind.ESCALATION.value),
        statuses=LIVE_STATUSES,
        channels=sorted(ctx.config.channels_where(lambda caps: caps.edits_messages)),
        on_channels=editable,
    )


async def _followups(
    session: AsyncSession, report: Report, ctx: Context, actor: Contact
) -> list[Outbox]:
    """'Tiket: KTN-…' and the status lines, once per chat that got an uneditable copy."""
    copies = await _live_alerts(session, report, ctx, editable=False)
    rows = []
    seen: set[tuple[str, int]] = set()
    again = await reports.status_round(session, report.id, report.status)
    for copy in copies:
        if copy.contact_id == actor.id or (copy.channel, copy.chat_id) in seen:
            continue
        seen.add((copy.channel, copy.chat_id))
        lang = str(copy.payload.get("lang") or ctx.config.default_language)
        lines = await status_lines(session, report, ctx, lang, actor)
        ticket = ctx.config.catalog.text(lang, "alert.ticket", ticket=report.ticket)
        rows.append(
            outbox.enqueue(
                session,
                channel=copy.channel,
                chat_id=copy.chat_id,
                kind=OutboxKind.STATUS.value,
                reply=Reply("\n".join([ticket, *lines])),
                contact_id=copy.contact_id,
                report_id=report.id,
                dedupe_key=f"followup:{report.id}:{report.status}:{copy.channel}:{copy.chat_id}{again}",
                extra={"ticket": report.ticket, "status": report.status, "lang": lang},
                bot=copy.bot,
            )
        )
    return rows


async def _edits(
    session: AsyncSession, report: Report, ctx: Context, actor: Contact
) -> list[Outbox]:
    """One alert_edit row per live alert/escalation message on an editable channel."""
    originals = await _live_alerts(session, report, ctx, editable=True)
    rows = []
    for original in originals:
        lang = str(original.payload.get("lang") or ctx.config.default_language)
        before = original.payload["reply"]
        lines = await status_lines(session, report, ctx, lang, actor)
        # Today's facts, not the stored text: a reporter who erased their data is anonymous now.
        body = (await compose_alert(session, report, ctx, lang))[0].text
        if original.kind == OutboxKind.ESCALATION.value:  # keep its "not claimed for …" title
            body = f"{str(before['text']).split(chr(10), 1)[0]}\n{body}"
        merge = original.payload.get("route") == "group"
        reply = Reply(
            text="\n".join([body, "", *lines]),
            options=action_options(ctx, lang, report, merge=merge),
        )
        rows.append(
            outbox.enqueue(
                session,
                channel=original.channel,
                chat_id=original.chat_id,
                kind=OutboxKind.ALERT_EDIT.value,
                reply=reply,
                contact_id=original.contact_id,
                report_id=report.id,
                extra={
                    "edit_of": original.id,
                    "ticket": report.ticket,
                    "lang": lang,
                },
                bot=original.bot,
            )
        )
    return rows


async def status_lines(
    session: AsyncSession, report: Report, ctx: Context, lang: str, actor: Contact
) -> list[str]:
    """'👮 Ditangani oleh Andi — 19:05 WIB', then who closed it and the note, if closed."""
    catalog = ctx.config.catalog
    area = await session.get(Area, report.area_id)
    zone = area.timezone if area else None
    lines = []
    if report.claimed_at is not None and report.assignee_id is not None:
        assignee = await session.get(Contact, report.assignee_id)
        name = staff_name(ctx, lang, assignee)
        when = format_clock(report.claimed_at, zone, report.created_at)
        lines.append(catalog.text(lang, "alert.status_claimed", name=name, time=when))
    if report.status in (ReportStatus.RESOLVED.value, ReportStatus.REJECTED.value):
        when = format_clock(report.closed_at or ctx.now, zone, report.created_at)
        resolved = report.status == ReportStatus.RESOLVED.value
        key = "alert.status_resolved" if resolved else "alert.status_rejected"
        lines.append(catalog.text(lang, key, name=staff_name(ctx, lang, actor), time=when))
        if report.resolution_note:
            lines.append(catalog.text(lang, "alert.status_note", note=report.resolution_note))
        if resolved and await reports.media_of(session, report.id, reports.CLOSURE_MEDIA):
            lines.append(catalog.text(lang, "alert.status_closure_photo"))
    elif report.status == ReportStatus.DUPLICATE.value:
        when = format_clock(report.closed_at or ctx.now, zone, report.created_at)
        target = (
            await session.get(Report, report.duplicate_of_id) if report.duplicate_of_id else None
        )
        lines.append(
            catalog.text(
                lang,
                "alert.status_duplicate",
                target=target.ticket if target else "-",
                name=staff_name(ctx, lang, actor),
                time=when,
            )
        )
    elif report.status == ReportStatus.REOPENED.value:
        when = format_clock(report.updated_at or ctx.now, zone, report.created_at)
        event = await reports.last_event(session, report.id, [ReportStatus.REOPENED.value])
        by_staff = event is not None and event.actor_id not in (None, report.reporter_id)
        if event is not None and by_staff:  # reopened on the desk: who, and why
            who = await session.get(Contact, event.actor_id)
            name = staff_name(ctx, lang, who)
            lines.append(catalog.text(lang, "alert.status_reopened_by", name=name, time=when))
            if event.note:
                lines.append(catalog.text(lang, "alert.status_note", note=event.note))
        else:
            lines.append(catalog.text(lang, "alert.status_reopened", time=when))
            if event is not None and event.note:
                lines.append(catalog.text(lang, "alert.status_reopen_reason", reason=event.note))
    return lines


def staff_name(ctx: Context, lang: str, contact: Contact | None) -> str:
    """How a staff member is named to others ('petugas' when the name is unknown)."""
    name = contact.display_name if contact is not None else None
    return name or ctx.config.catalog.text(lang, "staff.unnamed")
