"""Claims that do not rot: an idle claim is offered back, and nobody holds too many.

A claimed report with no update for ``CoreConfig.claim_idle_minutes`` (no status change since
the claim) is given back: the claimer is told first (1:1, with a Tangani button to take it
again), then the area's officers' group — the same people the alert reached
(``handlers.alerts.alert_recipients``) — gets the alert again with its claim button. The report
is ``new`` again and its escalation starts afresh (``handlers.escalation``). The trail says
``claim_expired``. Driven by the database like escalation: ``offer_back_idle`` is called
periodically by the leader, a conditional UPDATE makes one worker do it, and each report is
handled in its own savepoint.

``claim_refusal``: a person who already holds ``CoreConfig.max_open_claims`` claimed reports
is politely refused another, and told which tickets they hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import alert_recipients, send_copies
from handlers.context import Context
from handlers.render import age_text
from handlers.routing import BotRoutes
from handlers.sweep import FailureHook, ItemGuard
from handlers.types import Option, Reply
from storage import outbox, reports
from storage.models import Contact, Report
from storage.types import OutboxKind, ReportStatus

CLAIM_EXPIRED = "claim_expired"  # report_events.kind: an idle claim given back


async def claim_refusal(
    session: AsyncSession, ctx: Context, actor: Contact, lang: str
) -> str | None:
    """Why the actor may not claim one more report now (their open tickets), or None."""
    cap = ctx.config.max_open_claims
    if not cap:
        return None
    held = await reports.open_claims_of(session, actor.id)
    if len(held) < cap:
        return None
    tickets = ", ".join(r.ticket for r in held)
    return ctx.config.catalog.text(
        lang, "staff.claim_cap", count=len(held), cap=cap, tickets=tickets
    )


async def offer_back_idle(
    session: AsyncSession, ctx: Context, *, limit: int = 100, on_failure: FailureHook | None = None
) -> list[int]:
    """Give back every claim idle for ``claim_idle_minutes``; the reports' ids. Caller commits."""
    minutes = ctx.config.claim_idle_minutes
    if not minutes:
        return []
    before = ctx.now - timedelta(minutes=minutes)
    guard = ItemGuard(session, "claims", on_failure)
    offered = []
    for report in await reports.idle_claims(session, before, limit):
        report_id = report.id
        async with guard.item(f"report {report_id}"):
            if await _offer_back(session, ctx, report, before):
                offered.append(report_id)
    await session.flush()
    return offered


async def _offer_back(
    session: AsyncSession, ctx: Context, report: Report, before: datetime
) -> bool:
    claimer_id, claimed_at = report.assignee_id, report.claimed_at
    round_ = f"again{int((claimed_at or ctx.now).timestamp())}"
    escalate_at = ctx.now + timedelta(
        minutes=ctx.config.escalation_minutes(report.category, report.urgent)
    )
    if not await reports.release_claim(
        session, report, ctx.now, before=before, escalate_at=escalate_at
    ):
        return False
    reports.add_event(
        session,
        report.id,
        CLAIM_EXPIRED,
        ctx.now,
        from_status=ReportStatus.CLAIMED.value,
        to_status=ReportStatus.NEW.value,
        note=f"idle {ctx.config.claim_idle_minutes} min",
    )
    claimer = await session.get(Contact, claimer_id) if claimer_id is not None else None
    if claimer is not None and claimer.erased_at is None and claimer.blocked_at is None:
        lang = claimer.language or ctx.config.default_language
        text = ctx.config.catalog.text(
            lang,
            "staff.claim_offered_back",
            ticket=report.ticket,
            idle=_idle(ctx, lang),
        )
        claim = Option(ctx.config.catalog.text(lang, "alert.claim"), f"claim:{report.id}")
        outbox.enqueue(  # queued first: the claimer hears it before the group
            session,
            channel=claimer.channel,
            chat_id=claimer.external_id,
            kind=OutboxKind.NOTICE.value,
            reply=Reply(text, (claim,)),
            contact_id=claimer.id,
            report_id=report.id,
            dedupe_key=f"offered_back:{report.id}:{round_}:{claimer.id}",
            extra={"ticket": report.ticket, "lang": lang},
            bot=await BotRoutes(session, ctx.config).contact(claimer),
        )
        await session.flush()
    recipients = [
        r for r in await alert_recipients(session, report, ctx) if r.contact_id != claimer_id
    ]
    for lang in sorted({r.lang for r in recipients}):  # "4 jam" / "4 hours" in each language
        await send_copies(
            session,
            report,
            ctx,
            [r for r in recipients if r.lang == lang],
            OutboxKind.ALERT,
            header="alert.offered_back_title",
            round_=round_,
            idle=_idle(ctx, lang),
        )
    return True


def _idle(ctx: Context, lang: str) -> str:
    """'4 jam': how long a claim may stay without news."""
    since = ctx.now - timedelta(minutes=ctx.config.claim_idle_minutes)
    return age_text(ctx.config.catalog, lang, since, ctx.now)
