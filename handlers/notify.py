"""Status news for the people who care about a report: its reporter and its followers.

Each gets an outbox row (kind "status") in their own private chat, on their own channel and in
their own language, naming the officer and the note. An erased reporter (NULL) gets nothing; an
anonymous reporter still gets their own news. Nobody is told about their own action.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import staff_name
from handlers.context import Context
from handlers.routing import BotRoutes
from handlers.types import Reply
from storage import outbox, reports
from storage.models import Contact, Outbox, Report
from storage.types import OutboxKind, ReportStatus

NEWS_KEYS = {
    ReportStatus.CLAIMED.value: "news.claimed",
    ReportStatus.RESOLVED.value: "news.resolved",
    ReportStatus.REJECTED.value: "news.rejected",
}


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


def news_text(ctx: Context, lang: str, report: Report, officer: str) -> str:
    """'Laporan KTN-… sedang ditangani oleh …' with the note, and how to check it."""
    catalog = ctx.config.catalog
    note = report.resolution_note or "-"
    body = catalog.text(
        lang, NEWS_KEYS[report.status], ticket=report.ticket, officer=officer, note=note
    )
    return "\n".join((body, catalog.text(lang, "news.footer", ticket=report.ticket)))


async def enqueue_news(
    session: AsyncSession, report: Report, ctx: Context, actor: Contact
) -> list[Outbox]:
    """Tell the reporter and followers about the report's new status; returns the rows."""
    rows = []
    routes = BotRoutes(session, ctx.config)
    again = await reports.status_round(session, report.id, report.status)
    for person in await interested(session, report):
        if person.id == actor.id:
            continue
        lang = person.language or ctx.config.default_language
        officer = staff_name(ctx, lang, actor)
        rows.append(
            outbox.enqueue(
                session,
                channel=person.channel,
                chat_id=person.external_id,
                kind=OutboxKind.STATUS.value,
                reply=Reply(news_text(ctx, lang, report, officer)),
                contact_id=person.id,
                report_id=report.id,
                dedupe_key=f"status:{report.id}:{report.status}:{person.id}{again}",
                extra={"ticket": report.ticket, "status": report.status, "lang": lang},
                bot=await routes.contact(person),
            )
        )
    return rows
