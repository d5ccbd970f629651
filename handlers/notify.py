"""Status news for the people who care about a report: its reporter and its followers.

Each gets an outbox row (kind "status") in their own private chat, on their own channel and in
their own language, naming the officer and the note. An erased reporter (NULL) gets nothing; an
anonymous reporter still gets their own news. Nobody is told about their own action.

A resolved report's news carries the closure photo (where the reader's channel can send it) and,
for the reporter only, "Sudah beres" / "Belum" (``handlers.lifecycle``); where buttons may not
reach them, words say how to answer. A merged report's news names the report it now follows.
A report staff reopened (on the desk) says who reopened it and why.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import staff_name
from handlers.context import Context
from handlers.routing import BotRoutes
from handlers.types import Media, Option, Reply
from storage import outbox, reports
from storage.models import Contact, Outbox, Report
from storage.types import OutboxKind, ReportStatus

NEWS_KEYS = {
    ReportStatus.CLAIMED.value: "news.claimed",
    ReportStatus.RESOLVED.value: "news.resolved",
    ReportStatus.REJECTED.value: "news.rejected",
    ReportStatus.DUPLICATE.value: "news.duplicate",
    ReportStatus.REOPENED.value: "news.reopened",
}
FIXED = "fixed"  # the reporter's "Sudah beres" under a resolved report's news: fixed:<id>
NOT_FIXED = "notfixed"  # "Belum": notfixed:<id>


async def interested(session: AsyncSession, report: Report) -> list[Contact]:
    """The reporter (unless erased) and the followers, each once."""
    people: list[Contact] = []
    if report.reporter_id is not None:
        reporter = await session.get(Contact, report.reporter_id)
        if reporter is not None:
            people.append(reporter)
    people.extend(await reports.followers_of(session, report.id))
    seen: set[int] = set()
    unique = []
    for person in people:
        if person.id not in seen and person.erased_at is None:
            seen.add(person.id)
            unique.append(person)
    return unique


def news_text(
    ctx: Context,
    lang: str,
    report: Report,
    officer: str,
    target: Report | None = None,
    reason: str | None = None,
) -> str:
    """'Laporan KTN-… sedang ditangani oleh …' with the note, and how to check it;
    ``reason``: why staff reopened it (news.reopened_by_staff)."""
    catalog = ctx.config.catalog
    note = reason or report.resolution_note or "-"
    key = NEWS_KEYS[report.status]
    if reason is not None and report.status == ReportStatus.REOPENED.value:
        key = "news.reopened_by_staff"
    body = catalog.text(
        lang,
        key,
        ticket=report.ticket,
        officer=officer,
        note=note,
        target=target.ticket if target is not None else "-",
    )
    shown = target.ticket if target is not None else report.ticket
    return "\n".join((body, catalog.text(lang, "news.footer", ticket=shown)))


def answer_options(ctx: Context, lang: str, report: Report) -> tuple[Option, ...]:
    """The reporter's "Sudah beres" / "Belum" under a resolved report's news."""
    catalog = ctx.config.catalog
    return (
        Option(catalog.text(lang, "lifecycle.fixed"), f"{FIXED}:{report.id}"),
        Option(catalog.text(lang, "lifecycle.not_fixed"), f"{NOT_FIXED}:{report.id}"),
    )


async def enqueue_news(
    session: AsyncSession,
    report: Report,
    ctx: Context,
    actor: Contact,
    *,
    photo: Media | None = None,
    target: Report | None = None,
    reason: str | None = None,
) -> list[Outbox]:
    """Tell the reporter and followers about the report's new status; returns the rows.
    ``photo``: the closure photo; ``target``: the report a duplicate was merged into;
    ``reason``: why staff reopened it (the reporter's own reopening names no one)."""
    rows = []
    routes = BotRoutes(session, ctx.config)
    again = await reports.status_round(session, report.id, report.status)
    resolved = report.status == ReportStatus.RESOLVED.value
    for person in await interested(session, report):
        if person.id == actor.id:
            continue
        lang = person.language or ctx.config.default_language
        officer = staff_name(ctx, lang, actor)
        text = news_text(ctx, lang, report, officer, target, reason)
        caps = ctx.config.capabilities(person.channel)
        options: tuple[Option, ...] = ()
        if resolved and person.id == report.reporter_id and ctx.config.reopen_days > 0:
            options = answer_options(ctx, lang, report)
            if caps.buttons_need_words:
                howto = ctx.config.catalog.text(lang, "lifecycle.howto", ticket=report.ticket)
                text = f"{text}\n\n{howto}"
            if not caps.has_buttons:
                options = ()
        media = (
            photo
            if photo is not None
            and caps.can_send(photo.kind, photo.size)
            and (photo.stored or person.channel == actor.channel)  # a channel's own file id
            else None
        )
        rows.append(
            outbox.enqueue(
                session,
                channel=person.channel,
                chat_id=person.external_id,
                kind=OutboxKind.STATUS.value,
                reply=Reply(text, options, media=media),
                contact_id=person.id,
                report_id=report.id,
                dedupe_key=f"status:{report.id}:{report.status}:{person.id}{again}",
                extra={"ticket": report.ticket, "status": report.status, "lang": lang},
                bot=await routes.contact(person),
            )
        )
    return rows
