"""The resident's own things: /status, /bahasa, /berhenti, /hapusdata, /batal."""

from __future__ import annotations

from handlers import lifecycle, personal, staff
from handlers.commands import LANGUAGE_WORDS
from handlers.permissions import is_staff, may_act
from handlers.render import category_label, description_text, format_time, status_label
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from handlers.types import Option
from storage import access_log, reports
from storage.access_log import AccessKind, AccessVia
from storage.models import Area, Contact, Report

STATUS_LIST_LIMIT = 10


# --- /batal --------------------------------------------------------------------------------


async def cancel(turn: Turn) -> None:
    """Drop whatever is going on and say so (an erase question just goes back)."""
    previous = turn.state
    if previous is State.STAFF_NOTE:  # the note is not written; the report stays as it was
        await staff.cancel_note(turn)
        return
    if previous is State.REOPEN_REASON:  # "Belum" without a reason: it stays resolved
        await lifecycle.cancel(turn)
        return
    if previous.value.startswith("broadcast_"):  # coordinators' /umumkan
        turn.draft.pop("broadcast", None)
        turn.state = State.IDLE
        turn.say(turn.t("broadcast.cancelled"))
        await turn.reprompt()
        return
    if previous is State.ERASE_CONFIRM:  # cancelling the question keeps data and draft
        turn.say(turn.t("erase.kept"))
        turn.state = State.parse(turn.draft.pop("return", None))
        await turn.reprompt_if_busy()
        return
    turn.draft = {}
    turn.state = State.IDLE
    if previous.in_report:
        turn.say(turn.t("cancel.report"))
    elif previous in (State.CONSENT, State.AREA):
        turn.say(turn.t("cancel.onboarding"))
        return
    else:
        turn.say(turn.t("cancel.nothing"))
    if turn.consented:
        await turn.reprompt()


# --- /status -------------------------------------------------------------------------------


async def can_see(turn: Turn, report: Report) -> bool:
    """The reporter, a follower, or staff who may act on it (its area or an area above)."""
    contact = turn.contact
    if report.reporter_id == contact.id:
        return True
    if await reports.is_follower(turn.session, report.id, contact.id):
        return True
    return await may_act(turn.session, contact, report)


async def show_status(turn: Turn, arg: str | None) -> None:
    """One report by ticket (only if the user may see it), or the user's latest reports."""
    if arg:
        ticket = reports.normalise_ticket(arg)
        if ticket is None:
            turn.say(turn.t("status.bad_ticket", text=arg[:40]))
            return
        report = await reports.get_by_ticket(turn.session, ticket)
        if report is None or not await can_see(turn, report):
            turn.say(turn.t("status.not_found", ticket=ticket))
            return
        await _log_staff_read(turn, report)
        areas = await reports.areas_by_id(turn.session, [report.area_id])
        area = areas.get(report.area_id)
        lines = [_detail(turn, report, area)]
        if report.description and (
            report.reporter_id == turn.contact.id
            or await may_act(turn.session, turn.contact, report)
        ):  # the story: for its reporter and the officers (an erased one's shows the marker)
            story = description_text(turn.catalog, turn.lang, report.description)
            lines.append(turn.t("status.detail_description", description=story))
        if report.duplicate_of_id is not None:
            target = await turn.session.get(Report, report.duplicate_of_id)
            if target is not None:
                lines.append(turn.t("status.detail_duplicate", target=target.ticket))
        lines += await _trail(turn, report, area)
        turn.say("\n".join(lines))
        return
    mine = await reports.reports_of(turn.session, turn.contact.id, limit=STATUS_LIST_LIMIT)
    if not mine:
        turn.say(turn.t("status.none"))
        return
    areas = await reports.areas_by_id(turn.session, [r.area_id for r in mine])
    lines = [turn.t("status.list_title")]
    for report in mine:
        area = areas.get(report.area_id)
        lines.append(
            turn.t(
                "status.list_line",
                ticket=report.ticket,
                category=category_label(turn.catalog, turn.lang, report.category),
                status=status_label(turn.catalog, turn.lang, report.status),
                time=format_time(report.created_at, area.timezone if area else None),
            )
            + ("" if report.reporter_id == turn.contact.id else " " + turn.t("status.followed"))
        )
    lines.append(turn.t("status.list_hint"))
    turn.say("\n".join(lines))


async def _log_staff_read(turn: Turn, report: Report) -> None:
    """Staff reading someone else's report is a privileged read: it goes to the access log."""
    if report.reporter_id == turn.contact.id:
        return
    if await reports.is_follower(turn.session, report.id, turn.contact.id):
        return
    access_log.record(
        turn.session,
        kind=AccessKind.REPORT,
        via=AccessVia.CHAT,
        now=turn.now,
        actor_id=turn.contact.id,
        report_id=report.id,
    )


def _detail(turn: Turn, report: Report, area: Area | None) -> str:
    zone = area.timezone if area else None
    lines = [
        turn.t("status.detail_title", ticket=report.ticket),
        turn.t(
            "status.detail_category",
            category=category_label(turn.catalog, turn.lang, report.category),
        ),
        turn.t("status.detail_status", status=status_label(turn.catalog, turn.lang, report.status)),
        turn.t("status.detail_time", time=format_time(report.created_at, zone)),
    ]
    if report.urgent:
        lines.append(turn.t("status.detail_urgent"))
    if report.resolution_note:
        lines.append(turn.t("status.detail_note", note=report.resolution_note))
    return "\n".join(lines)


TRAIL_LIMIT = 15


async def _trail(turn: Turn, report: Report, area: Area | None) -> list[str]:
    """The report's history, oldest first: what changed and when. Staff who may act on it see
    who did it; a resident sees "petugas" for staff. The reporter is never named here ("Anda"
    to themselves, "pelapor" to others, "pelapor (anonim)" when anonymous)."""
    staff_view = await may_act(turn.session, turn.contact, report)
    events = await reports.events_of(turn.session, report.id)
    if not staff_view:  # residents: status changes and their own answers, not the machinery
        events = [e for e in events if e.to_status is not None or e.kind == "confirmed"]
    events = events[-TRAIL_LIMIT:]
    if not events:
        return []
    zone = area.timezone if area else None
    lines = [turn.t("status.trail_title")]
    for event in events:
        what = turn.catalog.get(turn.lang, f"trail.{event.kind}") or event.kind
        if event.actor_id is None:
            who = None
        elif event.actor_id == report.reporter_id:
            if event.actor_id == turn.contact.id:
                who = turn.t("trail.by_you")
            else:
                key = "trail.by_reporter_anonymous" if report.anonymous else "trail.by_reporter"
                who = turn.t(key)
        elif staff_view:
            actor = await turn.session.get(Contact, event.actor_id)
            who = (actor.display_name if actor else None) or turn.t("staff.unnamed")
        else:
            who = turn.t("staff.unnamed")
        line = turn.t("status.trail_line", time=format_time(event.created_at, zone), what=what)
        if who:
            line = f"{line} — {who}"
        if event.note and (staff_view or event.kind in ("duplicate", "merged_in")):
            line = f"{line}: {event.note}"
        lines.append(line)
    return lines


# --- /bahasa, /berhenti --------------------------------------------------------------------


async def switch_language(turn: Turn, arg: str | None) -> None:
    """Switch between Bahasa Indonesia and English (or to the one named)."""
    languages = turn.catalog.languages
    if arg and arg.lower() not in LANGUAGE_WORDS:
        turn.say(turn.t("language.unknown"))
        return
    if arg:
        new = LANGUAGE_WORDS[arg.lower()]
    else:
        current = languages.index(turn.lang) if turn.lang in languages else 0
        new = languages[(current + 1) % len(languages)]
    turn.contact.language = new
    turn.say(turn.t("language.set"))


async def opt_out(turn: Turn) -> None:
    """Stop announcements to residents; reports keep working. A staff member's duty messages
    (alerts, escalations, the officers' group's announcements and reminders, patrol, recaps)
    are not announcements: they come with the role, as the group's messages do on Telegram."""
    if turn.contact.opted_out_at is not None:
        turn.say(turn.t("stop.already"))
    else:
        turn.contact.opted_out_at = turn.now
        turn.say(turn.t("stop.done"))
    if is_staff(turn.contact):  # duties come with the role, not with announcements
        turn.say(turn.t("stop.staff"))


# --- /hapusdata ----------------------------------------------------------------------------


async def ask_erase(turn: Turn) -> None:
    """Remember where the user was and ask for confirmation."""
    if turn.state is not State.ERASE_CONFIRM:
        turn.draft["return"] = turn.state.value
    await turn.enter(State.ERASE_CONFIRM)


@prompt(State.ERASE_CONFIRM)
async def confirm_erase(turn: Turn) -> None:
    """Say what will be erased and ask Ya / Tidak."""
    turn.say(
        turn.t("erase.confirm"),
        [Option(turn.t("common.yes"), "erase:yes"), Option(turn.t("common.no"), "erase:no")],
    )


@expects(State.ERASE_CONFIRM)
async def erase_answered(turn: Turn) -> bool:
    """Ya erases now; Tidak goes back to where the user was."""
    if turn.option == "erase:yes":  # everywhere: handlers.personal, storage.personal
        count = await personal.erase(turn)
        turn.draft = {}
        turn.state = State.IDLE
        turn.say(turn.t("erase.done", reports=count))
        return True
    if turn.option == "erase:no":
        back = State.parse(turn.draft.pop("return", None))
        turn.say(turn.t("erase.kept"))
        turn.state = back
        await turn.reprompt_if_busy()
        return True
    return False


@fallback(State.ERASE_CONFIRM)
async def erase_unclear(turn: Turn) -> None:
    """Anything but Ya / Tidak: nothing is erased without a clear yes."""
    turn.say(turn.t("erase.need_answer"))
    await turn.reprompt()
