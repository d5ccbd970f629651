"""The officers' alert for a new report, queued in the outbox for the area's alert group(s).

Routing when no group is linked, escalation and the officer-side buttons' handling are a later
issue; ``enqueue_alert`` is the one place to extend. An anonymous reporter's name, id and phone
never go into a group's payload.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.render import category_label, format_time
from handlers.types import Location, Media, MediaKind, Option, Reply
from storage import outbox, reports
from storage.models import Area, Contact, GroupChat, Outbox, Report
from storage.types import OutboxKind

ALERT_PURPOSE = "alerts"


async def alert_groups(session: AsyncSession, area_id: int) -> list[GroupChat]:
    """The group chats linked to the area for alerts."""
    stmt = (
        select(GroupChat)
        .where(GroupChat.area_id == area_id, GroupChat.purpose == ALERT_PURPOSE)
        .order_by(GroupChat.id)
    )
    return list((await session.scalars(stmt)).all())


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
    if report.anonymous or report.reporter_id is None:
        reporter = t("alert.reporter_anonymous")
    else:
        contact = await session.get(Contact, report.reporter_id)
        reporter = (contact.display_name if contact else None) or t("alert.reporter_unnamed")
    if report.latitude is not None and report.longitude is not None:
        where = t("alert.where_pin")
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
        t("alert.description", description=report.description or t("alert.voice_only")),
        t("alert.where", where=where),
        t("alert.reporter", reporter=reporter),
    ]
    if files:
        lines.append(t("alert.media", count=len(files)))
    location = (
        Location(report.latitude, report.longitude)
        if report.latitude is not None and report.longitude is not None
        else None
    )
    refs = [
        {"kind": m.kind, "ref": m.file_ref, "content_type": m.content_type, "channel": m.channel}
        for m in files
    ]
    first = next((m for m in files if m.kind in (MediaKind.PHOTO, MediaKind.VIDEO)), None)
    media = Media(MediaKind(first.kind), first.file_ref, first.content_type) if first else None
    reply = Reply(
        text="\n".join(lines),
        options=(
            Option(t("alert.claim"), f"claim:{report.id}"),
            Option(t("alert.resolve"), f"resolve:{report.id}"),
            Option(t("alert.reject"), f"reject:{report.id}"),
        ),
        location=location,
        media=media,
    )
    return reply, refs


async def enqueue_alert(session: AsyncSession, report: Report, ctx: Context) -> list[Outbox]:
    """Queue the alert for each alert group of the report's area; returns the new rows."""
    groups = await alert_groups(session, report.area_id)
    if not groups:
        return []
    reply, refs = await compose_alert(session, report, ctx)
    rows = []
    for group in groups:
        same_channel = [r for r in refs if r["channel"] == group.channel]
        group_reply = reply if reply.media is None or same_channel else _without_media(reply)
        rows.append(
            outbox.enqueue(
                session,
                channel=group.channel,
                chat_id=group.chat_id,
                kind=OutboxKind.ALERT.value,
                reply=group_reply,
                report_id=report.id,
                dedupe_key=f"alert:{report.id}:{group.channel}:{group.chat_id}",
                extra={
                    "ticket": report.ticket,
                    "urgent": report.urgent,
                    "lang": ctx.config.default_language,
                    "media": refs,
                },
                bot=ctx.bot,
            )
        )
    return rows


def _without_media(reply: Reply) -> Reply:
    return Reply(reply.text, reply.options, reply.location, None, reply.ask_location)
