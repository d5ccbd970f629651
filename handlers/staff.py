"""The officers' and coordinators' side: buttons and typed actions, notes, /laporan, /daftar,
/hubungkan.

Telegram groups run in privacy mode: the bot sees only commands and button presses there. So
"Selesai"/"Tolak" pressed in a group asks for the note in the officer's private chat (an outbox
notice, and the private conversation moves to ``staff_note``); the officer's next private message
is the note. In a private chat the question is asked directly. The typed forms
(``selesai KTN-ABC234 sudah aman``) work everywhere, also from WhatsApp.
"""

from __future__ import annotations

import copy
import re

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.actions import (
    CLOSURE_KINDS,
    NOTE_LIMIT,
    Action,
    Verdict,
    parse_button,
    perform,
    report_of_button,
)
from handlers.commands import Command, ParsedCommand
from handlers.context import Context
from handlers.onboarding import area_label
from handlers.permissions import area_chain_ids, is_staff
from handlers.render import age_text, category_label, status_label
from handlers.routing import BotRoutes
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from handlers.types import Inbound, Media, Outcome, Recorded, Reply, StaffActed
from storage import contacts, conversations, outbox, reports
from storage.areas import descendant_ids
from storage.drafts import Draft, StaffNoteDraft
from storage.group_links import find_group, link_alert_group
from storage.invites import RedeemResult, normalise_code, redeem_invite
from storage.models import Area, Contact, Outbox, Report
from storage.types import OutboxKind, ReportStatus

OPEN_LIST_LIMIT = 20
COMMAND_ACTIONS = {
    Command.CLAIM: Action.CLAIM,
    Command.RESOLVE: Action.RESOLVE,
    Command.REJECT: Action.REJECT,
    Command.MERGE: Action.MERGE,
}
_TICKET_ARG = re.compile(
    r"^((?:KTN[\s\-_.#]*)?[A-Z0-9]{6})(?=[\s.,!?:]|$)[.,!?:]*\s*(.*)$", re.IGNORECASE | re.DOTALL
)


def split_ticket(arg: str | None) -> tuple[str | None, str | None]:
    """'KTN-ABC234 sudah aman' -> ('KTN-ABC234', 'sudah aman'); no ticket -> (None, None)."""
    match = _TICKET_ARG.match((arg or "").strip())
    if match is None:
        return None, None
    return reports.normalise_ticket(match.group(1)), match.group(2).strip() or None


def _text(ctx: Context, lang: str, key: str, /, **params: object) -> str:
    return ctx.config.catalog.text(lang, key, **params)


def _lang(ctx: Context, contact: Contact | None) -> str:
    return (contact.language if contact is not None else None) or ctx.config.default_language


def _acted(action: Action, report: Report, verdict: Verdict) -> StaffActed:
    return {"action": action.value, "report_id": report.id, "done": verdict.done}


# --- asking for the note -------------------------------------------------------------------


def _pending(
    action: Action, report: Report, state: State, draft: Draft, note: str | None = None
) -> StaffNoteDraft:
    """The note request kept in the draft, with the state to return to afterwards (and the
    note already given, when only the closure photo is missing)."""
    back = state
    if state is State.STAFF_NOTE:  # a second request keeps the first one's way back
        earlier = draft.get("staff_note")
        back = State.parse(earlier.get("return") if earlier else None)
    pending: StaffNoteDraft = {
        "action": action.value,
        "report_id": report.id,
        "ticket": report.ticket,
        "return": back.value,
    }
    if note:
        pending["note"] = note
    return pending


def question_key(
    ctx: Context, action: Action, report_category: str, pending: dict[str, object]
) -> str:
    """What to ask for: the note (with or without a photo of the result) or the photo alone."""
    if action is not Action.RESOLVE:
        return f"staff.ask_note_{action.value}"
    closure = ctx.config.closure_photo(report_category)
    if closure == "off":
        return "staff.ask_note_resolve"
    if pending.get("note") and not pending.get("photo"):
        return "staff.ask_closure_photo"
    if pending.get("photo") and not pending.get("note"):
        return "staff.ask_note_after_photo"
    return f"staff.ask_note_resolve_photo_{closure}"


async def ask_note_privately(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    report: Report,
    action: Action,
    note: str | None = None,
) -> Outbox:
    """From a group: ask in the officer's private chat and make the next message there the note."""
    chat_id = actor.external_id  # a private chat's id is the user's id
    conversation = await conversations.get(session, actor.channel, chat_id, actor.external_id)
    if conversation is None:
        conversation = await conversations.create(
            session, actor.channel, chat_id, actor.external_id, ctx.now
        )
    draft = copy.deepcopy(conversation.draft or {})
    pending = _pending(action, report, State.parse(conversation.state), draft, note)
    draft["staff_note"] = pending
    draft["opts"] = []
    conversations.save(conversation, State.STAFF_NOTE.value, draft, ctx.now)
    lang = _lang(ctx, actor)
    key = question_key(ctx, action, report.category, dict(pending))
    question = _text(ctx, lang, key, ticket=report.ticket)
    return outbox.enqueue(
        session,
        channel=actor.channel,
        chat_id=chat_id,
        kind=OutboxKind.NOTICE.value,
        reply=Reply(question),
        contact_id=actor.id,
        report_id=report.id,
        extra={"ticket": report.ticket, "lang": lang, "asks": action.value},
        bot=await BotRoutes(session, ctx.config).contact(actor),
    )


async def ask_note_here(
    turn: Turn, action: Action, report: Report, note: str | None = None
) -> None:
    """In a private chat: ask for the note (or closure photo) now; the next message is it."""
    turn.draft["staff_note"] = _pending(action, report, turn.state, turn.draft, note)
    await turn.enter(State.STAFF_NOTE)


# --- buttons -------------------------------------------------------------------------------


async def group_button(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    """Tangani/Selesai/Tolak pressed in a group: a short notice to the presser, rows for others."""
    parsed = parse_button(msg.button)
    actor = await contacts.find(session, str(msg.channel), msg.user_id)
    lang = _lang(ctx, actor)
    if parsed is None:
        return Outcome(notice=_text(ctx, lang, "group.button_unavailable"))
    action, report_id = parsed
    report = await report_of_button(session, report_id)
    if report is None:
        return Outcome(notice=_text(ctx, lang, "staff.report_gone"))
    verdict = await perform(session, ctx, actor, report, action, lang)
    outcome = Outcome(recorded=Recorded(staff=_acted(action, report, verdict)))
    if verdict.needs_note and actor is not None:
        verdict.rows.append(
            await ask_note_privately(session, ctx, actor, report, action, verdict.keep_note)
        )
        outcome.notice = _text(ctx, lang, "staff.check_private")
    else:
        outcome.notice = verdict.text
    await session.flush()
    outcome.outbox_ids = [row.id for row in verdict.rows]
    return outcome


async def private_button(turn: Turn) -> None:
    """Tangani/Selesai/Tolak pressed on an alert in a private chat."""
    parsed = parse_button(turn.msg.button)
    assert parsed is not None
    action, report_id = parsed
    report = await report_of_button(turn.session, report_id)
    if report is None:
        turn.outcome.notice = turn.t("staff.report_gone")
        return
    verdict = await perform(turn.session, turn.ctx, turn.contact, report, action, turn.lang)
    turn.outcome.recorded.staff = _acted(action, report, verdict)
    if verdict.needs_note:
        await ask_note_here(turn, action, report)
        return
    turn.outcome.notice = verdict.text
    turn.outbox.extend(verdict.rows)


# --- typed actions: tangani / selesai / tolak KTN-XXXXXX [catatan] -------------------------


async def _typed_target(
    session: AsyncSession, ctx: Context, actor: Contact | None, cmd: ParsedCommand, lang: str
) -> tuple[Report | None, str | None, str | None]:
    """(report, note, None) or (None, None, what to say instead)."""
    action = COMMAND_ACTIONS[cmd.command]
    if not is_staff(actor):
        return None, None, _text(ctx, lang, "staff.only_staff")
    ticket, note = split_ticket(cmd.arg)
    if ticket is None:
        return None, None, _text(ctx, lang, f"staff.usage_{action.value}")
    report = await reports.get_by_ticket(session, ticket)
    if report is None:
        return None, None, _text(ctx, lang, "staff.ticket_unknown", ticket=ticket)
    return report, note, None


async def typed_in_private(turn: Turn, cmd: ParsedCommand) -> None:
    """A typed action in a private chat (Telegram or WhatsApp)."""
    action = COMMAND_ACTIONS[cmd.command]
    report, note, problem = await _typed_target(
        turn.session, turn.ctx, turn.contact, cmd, turn.lang
    )
    if report is None:
        turn.say(problem or "")
        await turn.reprompt_if_busy()
        return
    verdict = await perform(turn.session, turn.ctx, turn.contact, report, action, turn.lang, note)
    turn.outcome.recorded.staff = _acted(action, report, verdict)
    if verdict.needs_note:
        await ask_note_here(turn, action, report, verdict.keep_note)
        return
    turn.say(verdict.text)
    turn.outbox.extend(verdict.rows)
    await turn.reprompt_if_busy()


async def typed_in_group(
    session: AsyncSession, msg: Inbound, ctx: Context, cmd: ParsedCommand
) -> Outcome:
    """A typed action in a group (the fallback when a note cannot be asked privately)."""
    action = COMMAND_ACTIONS[cmd.command]
    actor = await contacts.find(session, str(msg.channel), msg.user_id)
    lang = ctx.config.default_language
    report, note, problem = await _typed_target(session, ctx, actor, cmd, lang)
    if report is None:
        return Outcome(replies=[Reply(problem or "")])
    verdict = await perform(session, ctx, actor, report, action, lang, note)
    outcome = Outcome(recorded=Recorded(staff=_acted(action, report, verdict)))
    if verdict.needs_note and actor is not None:
        verdict.rows.append(
            await ask_note_privately(session, ctx, actor, report, action, verdict.keep_note)
        )
        outcome.replies.append(Reply(_text(ctx, lang, "staff.check_private")))
    else:
        outcome.replies.append(Reply(verdict.text))
    await session.flush()
    outcome.outbox_ids = [row.id for row in verdict.rows]
    return outcome


# --- STAFF_NOTE: the officer's next private message is the note -----------------------------


def _pending_note(turn: Turn) -> StaffNoteDraft | None:
    pending = turn.draft.get("staff_note")
    if not isinstance(pending, dict) or pending.get("action") not in set(Action):
        return None
    return pending


@prompt(State.STAFF_NOTE)
async def ask_note(turn: Turn) -> None:
    """Ask for the resolution note or the rejection reason."""
    pending = _pending_note(turn)
    if pending is None:  # a damaged draft: nothing to ask for
        turn.draft.pop("staff_note", None)
        turn.state = State.IDLE
        await turn.reprompt_if_busy()
        return
    report = await turn.session.get(Report, int(pending["report_id"]))
    category = report.category if report is not None else ""
    key = question_key(turn.ctx, Action(pending["action"]), category, dict(pending))
    turn.say(turn.t(key, ticket=str(pending.get("ticket", ""))))


def _closure_photo(turn: Turn) -> Media | None:
    """The one photo of the result in this message, or None."""
    return next((m for m in turn.attachments if m.kind in CLOSURE_KINDS), None)


@expects(State.STAFF_NOTE)
async def note_given(turn: Turn) -> bool:
    """Text is the note (a photo of the result, with or without a caption, goes with it when
    resolving): the action is done (if still allowed), then back to where they were."""
    pending = _pending_note(turn)
    if pending is None or turn.location is not None or turn.option is not None:
        return False
    action = Action(pending["action"])
    report = await turn.session.get(Report, int(pending["report_id"]))
    closure = (
        turn.config.closure_photo(report.category)
        if report is not None and action is Action.RESOLVE
        else "off"
    )
    photo = _closure_photo(turn) if closure != "off" else None
    if turn.msg.media and (photo is None or len(turn.attachments) != len(turn.msg.media)):
        return False
    note = turn.text
    if note is None and photo is None:
        return False
    if note is not None and len(note) > NOTE_LIMIT:
        turn.say(turn.t("staff.note_too_long", limit=NOTE_LIMIT, length=len(note)))
        await turn.reprompt()
        return True
    if report is None:
        turn.say(turn.t("staff.report_gone"))
        await _leave_note(turn)
        return True
    if photo is not None:
        pending["photo"] = photo.to_json()
    if note is not None:
        pending["note"] = note
    turn.draft["staff_note"] = pending
    kept = pending.get("photo")
    given = Media.from_json(kept) if kept else None
    if pending.get("note") is None or (closure == "required" and given is None):
        await turn.reprompt()  # the photo or the note is still missing: ask for it
        return True
    verdict = await perform(
        turn.session,
        turn.ctx,
        turn.contact,
        report,
        action,
        turn.lang,
        pending.get("note"),
        given,
    )
    turn.outcome.recorded.staff = _acted(action, report, verdict)
    turn.say(verdict.text)
    turn.outbox.extend(verdict.rows)
    await _leave_note(turn)
    return True


@fallback(State.STAFF_NOTE)
async def note_unclear(turn: Turn) -> None:
    """A photo, sticker, pin or button where the note was wanted."""
    turn.say(turn.t("staff.need_note_text"))
    await turn.reprompt()


async def _leave_note(turn: Turn) -> None:
    """Back to the state the note interrupted, asking its question again."""
    pending = turn.draft.pop("staff_note", None)
    turn.state = State.parse(pending.get("return") if pending else None)
    if turn.state is State.STAFF_NOTE:
        turn.state = State.IDLE
    await turn.reprompt_if_busy()


async def cancel_note(turn: Turn) -> None:
    """/batal while a note is wanted: nothing changes, back to where they were."""
    turn.say(turn.t("staff.note_cancelled", ticket=_note_ticket(turn)))
    await _leave_note(turn)


def expire_note(turn: Turn) -> None:
    """The note was never written: say so (the caller resets the conversation)."""
    turn.say(turn.t("staff.note_expired", ticket=_note_ticket(turn)))


def _note_ticket(turn: Turn) -> str:
    """The ticket of the report whose note is wanted ("" in a damaged draft)."""
    pending = turn.draft.get("staff_note")
    return str(pending.get("ticket", "")) if pending else ""


# --- /laporan ------------------------------------------------------------------------------


async def open_reports_text(
    session: AsyncSession, ctx: Context, contact: Contact | None, lang: str
) -> str:
    """The open reports of the staff member's area and below, oldest first (capped)."""
    if contact is None or not is_staff(contact) or contact.area_id is None:
        return _text(ctx, lang, "staff.only_staff")
    catalog = ctx.config.catalog
    area_ids = await descendant_ids(session, contact.area_id)
    found, total = await reports.open_in_areas(session, area_ids, OPEN_LIST_LIMIT)
    if not found:
        return _text(ctx, lang, "open.none")
    areas = await reports.areas_by_id(session, [r.area_id for r in found])
    assignees: dict[int, Contact] = {}
    for assignee_id in {r.assignee_id for r in found if r.assignee_id is not None}:
        assignee = await session.get(Contact, assignee_id)
        if assignee is not None:
            assignees[assignee_id] = assignee
    lines = [_text(ctx, lang, "open.title", count=total)]
    for report in found:
        if report.status == ReportStatus.CLAIMED.value:
            who = assignees.get(report.assignee_id or 0)
            name = (who.display_name if who else None) or _text(ctx, lang, "staff.unnamed")
            state = _text(ctx, lang, "open.claimed_by", name=name)
        else:
            state = status_label(catalog, lang, report.status)
        area = areas.get(report.area_id)
        lines.append(
            _text(
                ctx,
                lang,
                "open.line",
                ticket=report.ticket,
                category=category_label(catalog, lang, report.category),
                area=area.name if area else "-",
                age=age_text(catalog, lang, report.created_at, ctx.now),
                status=state,
            )
            + (" " + _text(ctx, lang, "open.urgent") if report.urgent else "")
        )
    if total > len(found):
        lines.append(_text(ctx, lang, "open.more", count=total - len(found)))
    return "\n".join(lines)


async def show_open_reports(turn: Turn) -> None:
    """/laporan in a private chat."""
    turn.say(await open_reports_text(turn.session, turn.ctx, turn.contact, turn.lang))


async def open_reports_in_group(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    """/laporan in a group: the sender's area, for staff only."""
    actor = await contacts.find(session, str(msg.channel), msg.user_id)
    text = await open_reports_text(session, ctx, actor, ctx.config.default_language)
    return Outcome(replies=[Reply(text)], recorded=Recorded(command=Command.REPORTS))


# --- /daftar KODE --------------------------------------------------------------------------


async def register(turn: Turn, arg: str | None) -> None:
    """/daftar KODE: redeem an invite, then the privacy notice if not accepted yet."""
    text, registered = await _redeem(turn, arg)
    turn.say(text)
    if registered and not turn.consented and turn.state is State.IDLE:
        await turn.enter(State.CONSENT)  # registered first; the privacy notice follows
        return
    await turn.reprompt_if_busy()


async def _redeem(turn: Turn, arg: str | None) -> tuple[str, bool]:
    """Use the invite code: the contact becomes officer/coordinator/admin of its area. The
    answer, and whether the code registered them."""
    if not arg:
        return turn.t("register.usage"), False
    code = normalise_code(arg)
    result, invite = await redeem_invite(turn.session, code, turn.contact, turn.now)
    if result is RedeemResult.OK and invite is not None:
        name = (turn.msg.display_name or "").strip()[:128]
        if name and not turn.contact.display_name:
            turn.contact.display_name = name  # officers are named to the people they help
        area = await turn.session.get(Area, invite.area_id)
        label = await area_label(turn.session, area) if area else "-"
        turn.outcome.recorded.registered = invite.role
        return turn.t("register.ok", role=turn.t(f"role.{invite.role}"), area=label), True
    if result is RedeemResult.USED and invite is not None and invite.used_by_id == turn.contact.id:
        return turn.t("register.already"), False
    if result is RedeemResult.USED:
        return turn.t("register.used"), False
    if result is RedeemResult.EXPIRED:
        return turn.t("register.expired"), False
    return turn.t("register.unknown", code=code[:32]), False


# --- /hubungkan ----------------------------------------------------------------------------


async def link_group(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    """/hubungkan in a group by staff: the group receives their area's alerts from now on."""
    lang = ctx.config.default_language
    actor = await contacts.find(session, str(msg.channel), msg.user_id)
    recorded = Recorded(command=Command.LINK)
    if actor is None or not is_staff(actor) or actor.area_id is None:
        return Outcome(replies=[Reply(_text(ctx, lang, "link.only_staff"))], recorded=recorded)
    current = await find_group(session, str(msg.channel), msg.chat_id)
    if (
        current is not None
        and current.area_id != actor.area_id
        and actor.area_id not in await area_chain_ids(session, current.area_id)
    ):  # another area's alert group: only its own staff (or those above) may take it away
        theirs = await session.get(Area, current.area_id)
        text = _text(ctx, lang, "link.not_yours", area=theirs.name if theirs else "-")
        return Outcome(replies=[Reply(text)], recorded=recorded)
    result = await link_alert_group(
        session,
        channel=str(msg.channel),
        chat_id=msg.chat_id,
        area_id=actor.area_id,
        title=msg.chat_title,
        linked_by_id=actor.id,
        now=ctx.now,
        bot=ctx.bot,
    )
    area = await session.get(Area, actor.area_id)
    label = await area_label(session, area) if area else "-"
    lines = [_text(ctx, lang, "link.done", area=label)]
    if result.previous_area_id is not None:
        old = await session.get(Area, result.previous_area_id)
        lines.append(_text(ctx, lang, "link.moved", old=old.name if old else "-"))
    if result.replaced_chat_ids:
        lines.append(_text(ctx, lang, "link.replaced", area=area.name if area else "-"))
    lines.append(_text(ctx, lang, "link.privacy"))
    recorded.linked_area_id = actor.area_id
    return Outcome(replies=[Reply("\n".join(lines))], recorded=recorded)
