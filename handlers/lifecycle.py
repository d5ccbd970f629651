"""The reporter's side of a report's lifecycle: "Sudah beres" / "Belum" after it was resolved.

A resolved report's news (``handlers.notify``) carries two buttons for its reporter, and the same
answers can be typed on every channel (``beres KTN-…``, ``belum KTN-… alasan``). "Sudah beres"
is recorded in the trail; "Belum" asks why (unless the reason was typed with it) and, within
``reopen_days`` after it was resolved, reopens the report: its officers get the alert again with
the reason, the alerts that can be edited show it, followers are told. One answer per
resolution: a second press is answered politely and changes nothing. Only the reporter answers.
Staff reopen a closed report on the desk (``handlers.desk.reopen``) through ``reopen_report``:
the same alerts and news, naming who reopened it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import alert_recipients, enqueue_alert_edits, send_copies, staff_name
from handlers.commands import Command, ParsedCommand
from handlers.context import Context
from handlers.notify import FIXED, NOT_FIXED, enqueue_news
from handlers.render import status_label
from handlers.staff import split_ticket
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from storage import reports
from storage.drafts import ReopenDraft
from storage.models import Contact, Outbox, Report
from storage.types import OutboxKind, ReportStatus

CONFIRMED = "confirmed"  # report_events.kind: the reporter said "Sudah beres"
REASON_LIMIT = 500


def parse_answer(data: str | None) -> tuple[str, int] | None:
    """('fixed', 42) for 'fixed:42', ('notfixed', 42) for 'notfixed:42'; else None."""
    word, _, number = (data or "").partition(":")
    if word not in (FIXED, NOT_FIXED) or not number.isdigit() or len(number) > 18:
        return None
    return word, int(number)


@dataclass(slots=True)
class Answer:
    """What came of the reporter's answer: what to say, whether to ask why, the rows."""

    text: str = ""
    ask_reason: bool = False
    rows: list[Outbox] = field(default_factory=list)


async def _refusal(turn: Turn, report: Report | None) -> str | None:
    """Why this answer cannot be taken (politely), or None."""
    if report is None or report.reporter_id != turn.contact.id:
        return turn.t("lifecycle.not_yours")
    if report.status == ReportStatus.REOPENED.value:
        return turn.t("lifecycle.already_reopened", ticket=report.ticket)
    if report.status != ReportStatus.RESOLVED.value:
        status = status_label(turn.catalog, turn.lang, report.status)
        return turn.t("lifecycle.not_resolved", ticket=report.ticket, status=status)
    answered = await reports.last_event(
        turn.session, report.id, [CONFIRMED, ReportStatus.RESOLVED.value]
    )
    if answered is not None and answered.kind == CONFIRMED:
        return turn.t("lifecycle.already_fixed", ticket=report.ticket)
    return None


async def answer(turn: Turn, word: str, report: Report | None, reason: str | None) -> Answer:
    """The reporter's "Sudah beres" (``fixed``) or "Belum" (``notfixed``) for the report."""
    refused = await _refusal(turn, report)
    if refused is not None or report is None:
        return Answer(refused or "")
    if word == FIXED:
        reports.add_event(turn.session, report.id, CONFIRMED, turn.now, actor_id=turn.contact.id)
        turn.outcome.recorded.lifecycle = {"report_id": report.id, "answer": CONFIRMED}
        return Answer(turn.t("lifecycle.thanks_fixed", ticket=report.ticket))
    closed = report.closed_at or report.updated_at
    days = turn.config.reopen_days
    if days <= 0 or turn.now - closed > timedelta(days=days):
        return Answer(turn.t("lifecycle.window_over", ticket=report.ticket, days=days))
    if reason is None:
        return Answer(ask_reason=True)
    if len(reason) > REASON_LIMIT:
        return Answer(turn.t("staff.note_too_long", limit=REASON_LIMIT, length=len(reason)))
    return await reopen(turn, report, reason)


async def reopen(turn: Turn, report: Report, reason: str) -> Answer:
    """Back to the officers as reopened, with the reporter's reason."""
    rows = await reopen_report(turn.session, turn.ctx, report, turn.contact, reason)
    if rows is None:
        return Answer(turn.t("lifecycle.already_reopened", ticket=report.ticket))
    turn.outcome.recorded.lifecycle = {"report_id": report.id, "answer": "reopened"}
    return Answer(turn.t("lifecycle.reopened", ticket=report.ticket), rows=rows)


async def reopen_report(
    session: AsyncSession,
    ctx: Context,
    report: Report,
    actor: Contact,
    reason: str,
    *,
    via: str | None = None,
) -> list[Outbox] | None:
    """Reopen the report, whoever asked (its reporter in chat, staff on the desk, who checked
    it first): the trail event with the reason (``via`` where, when not in a chat), its alerts
    edited, a new alert to its officers, the news to the reporter and followers. None when it
    changed meanwhile (nothing written)."""
    moved = await reports.change_status(
        session,
        report,
        ReportStatus.REOPENED,
        actor_id=actor.id,
        now=ctx.now,
        note=reason,
        via=via,
    )
    if not moved:
        return None
    by_staff = actor.id != report.reporter_id
    times = await reports.times_moved_to(session, report.id, ReportStatus.REOPENED.value)
    rows = await enqueue_alert_edits(session, report, ctx, actor, followups=False)
    recipients = await alert_recipients(session, report, ctx)
    rows += await send_copies(
        session,
        report,
        ctx,
        recipients,
        OutboxKind.ALERT,
        "alert.reopened_by_title" if by_staff else "alert.reopened_title",
        round_=f"reopened{times}",
        reason=reason,
        name=staff_name(ctx, ctx.config.default_language, actor),
    )
    rows += await enqueue_news(session, report, ctx, actor, reason=reason if by_staff else None)
    return rows


async def _say(turn: Turn, result: Answer, report: Report | None) -> None:
    if result.ask_reason and report is not None:
        back = turn.state if turn.state is not State.REOPEN_REASON else State.IDLE
        draft: ReopenDraft = {"report_id": report.id, "ticket": report.ticket, "back": back}
        turn.draft["reopen"] = draft
        await turn.enter(State.REOPEN_REASON)
        return
    turn.say(result.text)
    turn.outbox.extend(result.rows)
    await turn.reprompt_if_busy()


async def button(turn: Turn) -> None:
    """The reporter pressed "Sudah beres" / "Belum" under a resolved report's news."""
    parsed = parse_answer(turn.msg.button)
    assert parsed is not None
    word, report_id = parsed
    report = await turn.session.get(Report, report_id) if report_id < 2**31 else None
    await _say(turn, await answer(turn, word, report, None), report)


async def typed(turn: Turn, cmd: ParsedCommand) -> None:
    """``beres KTN-…`` / ``belum KTN-… alasan`` typed (any channel)."""
    ticket, reason = split_ticket(cmd.arg)
    if ticket is None:
        turn.say(turn.t("lifecycle.usage"))
        await turn.reprompt_if_busy()
        return
    report = await reports.get_by_ticket(turn.session, ticket)
    word = FIXED if cmd.command is Command.FIXED else NOT_FIXED
    await _say(turn, await answer(turn, word, report, reason), report)


# --- REOPEN_REASON: the reporter's next message says why -----------------------------------


def _pending(turn: Turn) -> ReopenDraft | None:
    pending = turn.draft.get("reopen")
    if not isinstance(pending, dict) or not isinstance(pending.get("report_id"), int):
        return None
    return pending


@prompt(State.REOPEN_REASON)
async def ask_reason(turn: Turn) -> None:
    """Why is it not done yet?"""
    pending = _pending(turn)
    if pending is None:
        turn.draft.pop("reopen", None)
        turn.state = State.IDLE
        return
    turn.say(turn.t("lifecycle.ask_reason", ticket=pending["ticket"]))


@expects(State.REOPEN_REASON)
async def reason_given(turn: Turn) -> bool:
    """Text is the reason: the report is reopened (if it still can be)."""
    pending = _pending(turn)
    reason = turn.text
    if pending is None or reason is None or turn.msg.media or turn.location is not None:
        return False
    if turn.option is not None:
        return False
    if len(reason) > REASON_LIMIT:  # ask again rather than drop what was started
        turn.say(turn.t("staff.note_too_long", limit=REASON_LIMIT, length=len(reason)))
        await turn.reprompt()
        return True
    report = await turn.session.get(Report, pending["report_id"])
    result = await answer(turn, NOT_FIXED, report, reason)
    if result.ask_reason:  # cannot happen with a reason; keep asking rather than loop
        await turn.reprompt()
        return True
    leave(turn)
    turn.say(result.text)
    turn.outbox.extend(result.rows)
    await turn.reprompt_if_busy()
    return True


@fallback(State.REOPEN_REASON)
async def reason_unclear(turn: Turn) -> None:
    """A photo, sticker, pin or button where the reason was wanted."""
    turn.say(turn.t("lifecycle.need_reason"))
    await turn.reprompt()


def leave(turn: Turn) -> None:
    """Back to where the question interrupted them (without asking it again)."""
    pending = turn.draft.pop("reopen", None)
    turn.state = State.parse(pending.get("back") if pending else None)
    if turn.state is State.REOPEN_REASON:
        turn.state = State.IDLE


async def cancel(turn: Turn) -> None:
    """/batal while the reason is wanted: the report stays resolved."""
    pending = _pending(turn)
    turn.say(turn.t("lifecycle.cancelled", ticket=pending["ticket"] if pending else ""))
    leave(turn)
    await turn.reprompt_if_busy()
