"""/ronda (/patrol): the night patrol's teams and rotation, tonight's team, "Hadir" and "Aman".

    /ronda                              teams, rotation, tonight's team and its answers so far
    /ronda tim NAMA: Andi, Budi, Cici   add a team (coordinator)
    /ronda hapus N                      remove team N (coordinator)
    /ronda jadwal harian 21:00          rotation daily or weekly (mingguan), announced at 21:00
    /ronda jeda, /ronda lanjut          pause or resume the announcements (coordinator)
    /ronda ikut N                       a resident joins team N (or claims their name in it)
    /ronda 17.71.08.1004 tim ...        a coordinator above the village manages the village's

At the set time, in the area's time zone, the area's officers' group gets tonight's team (an
officer no group reaches, e.g. on WhatsApp, gets it 1:1: ``handlers.audience``) and every member
who uses the bot a private message with "Hadir"; after it they answer "Aman" or start a report.
Pressed, or typed: the word ("hadir", "aman") or, on a channel that shows options as numbered
lines, the number (``typed_answer``).
The shift row (unique per area and night) makes the announcement happen once.

Each area is announced in its own savepoint (``handlers.sweep``): one that fails (a broken text
override, bad data) is rolled back alone, logged and counted, and the other areas' go out. Its
shift row was rolled back too, so the next sweep tries again while within the grace; after that
the night is skipped like a missed one.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.audience import officers_group
from handlers.context import Context
from handlers.onboarding import begin_report
from handlers.options import normalise
from handlers.permissions import area_chain_ids, is_supervisor
from handlers.render import format_clock, format_date
from handlers.routing import BotRoutes
from handlers.schedule import Schedule, parse_time, zone
from handlers.states import State
from handlers.sweep import FailureHook, ItemGuard
from handlers.turn import Turn
from handlers.types import Option, Reply
from storage import outbox
from storage import patrol as store
from storage.areas import descendant_ids, get_by_code
from storage.models import Area, Contact, PatrolRota, PatrolShift
from storage.types import OutboxKind

log = logging.getLogger(__name__)

BUTTON = re.compile(r"^ronda:(hadir|aman|lapor):(\d{1,12})$")
MAX_MEMBERS = 30
SUBCOMMANDS: dict[str, str] = {
    "tim": "team",
    "team": "team",
    "hapus": "delete",
    "delete": "delete",
    "jadwal": "schedule",
    "schedule": "schedule",
    "jeda": "pause",
    "pause": "pause",
    "lanjut": "resume",
    "resume": "resume",
    "ikut": "join",
    "join": "join",
}
AREA_CODE = re.compile(r"^\d[\d.]*\.\d+$")
MODE_WORDS = {"harian": "daily", "daily": "daily", "mingguan": "weekly", "weekly": "weekly"}


def is_patrol_button(data: str | None) -> bool:
    """Whether the pressed button is one of a patrol message's (Hadir, Aman, Lapor)."""
    return data is not None and BUTTON.match(data) is not None


# --- tonight's announcement ----------------------------------------------------------------


async def announce_due(
    session: AsyncSession,
    ctx: Context,
    *,
    grace: timedelta,
    default_tz: str = "Asia/Jakarta",
    area_ids: list[int] | None = None,
    on_failure: FailureHook | None = None,
) -> list[int]:
    """Announce tonight's team where the time has come (once per area and night); returns the
    outbox row ids. The caller commits. An area that fails is rolled back alone and reported to
    ``on_failure`` (see the module's description)."""
    row_ids: list[int] = []
    guard = ItemGuard(session, "patrol", on_failure)
    for rota in await store.active_rotas(session):
        if area_ids is not None and rota.area_id not in area_ids:
            continue
        async with guard.item(f"area {rota.area_id}") as attempt:
            rows = await _announce_tonight(session, ctx, rota, grace, default_tz)
        if not attempt.failed:
            row_ids.extend(rows)
    await session.flush()
    return row_ids


async def _announce_tonight(
    session: AsyncSession, ctx: Context, rota: PatrolRota, grace: timedelta, default_tz: str
) -> list[int]:
    """One area's announcement if its time has come and it was not made yet; the row ids."""
    area = await session.get(Area, rota.area_id)
    tz = zone(area.timezone if area else None, default_tz)
    at = parse_time(rota.announce_time)
    if at is None:
        return []
    schedule = Schedule("daily", at[0], at[1])
    due = schedule.latest_until(ctx.now, ctx.now - timedelta(days=1), tz)
    if due is None:
        return []
    night = due.astimezone(tz).date()
    if night.isoformat() < rota.start_date:
        return []
    team = store.team_on(await store.teams_of(session, rota.area_id), rota, night)
    if team is None:
        return []
    shift = await store.create_shift(session, rota.area_id, team.team.id, night, ctx.now)
    if shift is None:
        return []  # announced already
    if ctx.now - due > grace:
        shift.outcome = store.SKIPPED
        log.warning(
            "patrol of area %s for %s: announcement due %d min ago (grace %d min): skipped",
            rota.area_id,
            night.isoformat(),
            (ctx.now - due) // timedelta(minutes=1),
            grace // timedelta(minutes=1),
        )
        return []
    return await _announce(session, ctx, shift, team)


async def _announce(
    session: AsyncSession, ctx: Context, shift: PatrolShift, team: store.Team
) -> list[int]:
    """Tonight's team to the area's officers' group (its groups, and 1:1 every officer no group
    reaches: ``handlers.audience``), and to each member on the bot a message with "Hadir"."""
    catalog = ctx.config.catalog
    lang = ctx.config.default_language
    names = "\n".join(f"• {m.name}" for m in team.members) or "-"
    when = shift.shift_date
    routes = BotRoutes(session, ctx.config)
    reach = await officers_group(session, ctx.config, [shift.area_id])
    tonight = [
        (group.channel, group.chat_id, lang, None, await routes.group(group))
        for group in reach.groups
    ] + [
        (o.channel, o.external_id, o.language or lang, o.id, await routes.contact(o))
        for o in reach.people
    ]
    rows = [
        outbox.enqueue(
            session,
            channel=channel,
            chat_id=chat_id,
            kind=OutboxKind.PATROL.value,
            reply=Reply(
                catalog.text(
                    tlang,
                    "patrol.tonight",
                    date=format_date(catalog, tlang, when),
                    team=team.team.name,
                    members=names,
                )
            ),
            contact_id=contact_id,
            dedupe_key=f"ronda:{shift.id}:{channel}:{chat_id}",
            extra={"shift_id": shift.id, "lang": tlang},
            bot=bot,
        )
        for channel, chat_id, tlang, contact_id, bot in tonight
    ]
    for member in team.members:
        person = await session.get(Contact, member.contact_id) if member.contact_id else None
        if person is None or person.erased_at is not None or person.blocked_at is not None:
            continue
        mlang = person.language or lang
        rows.append(
            outbox.enqueue(
                session,
                channel=person.channel,
                chat_id=person.external_id,
                kind=OutboxKind.PATROL.value,
                reply=Reply(
                    catalog.text(
                        mlang,
                        "patrol.dm",
                        date=format_date(catalog, mlang, when),
                        team=team.team.name,
                    ),
                    (Option(catalog.text(mlang, "patrol.btn_present"), f"ronda:hadir:{shift.id}"),),
                ),
                contact_id=person.id,
                dedupe_key=f"ronda:{shift.id}:dm:{person.channel}:{person.external_id}",
                extra={"shift_id": shift.id, "lang": mlang},
                bot=await routes.contact(person),
            )
        )
    await session.flush()
    return [row.id for row in rows]


# --- the member's answers ------------------------------------------------------------------

# Typed answers (a channel without buttons shows them as numbered lines; any channel may type).
WORDS: dict[str, str] = {
    "hadir": "hadir",
    "present": "hadir",
    "aman": "aman",
    "safe": "aman",
    "allsafe": "aman",
    "laporkejadian": "lapor",
    "reportanincident": "lapor",
    "reportincident": "lapor",
}
# How long after the announcement a member's typed "hadir"/"aman" still answers it.
ANSWER_WINDOW = timedelta(hours=24)


async def _pending(turn: Turn) -> tuple[PatrolShift, tuple[str, ...]] | None:
    """The member's newest shift (within the window) and what its message asks them now:
    ("hadir",) before they are present, ("aman", "lapor") after, () when answered."""
    found = await store.latest_shift_of_member(
        turn.session, turn.contact.id, turn.now - ANSWER_WINDOW
    )
    if found is None:
        return None
    shift, member = found
    answer = await store.answer_of(turn.session, shift.id, member.id)
    if answer is None or answer.confirmed_at is None:
        return shift, ("hadir",)
    if answer.outcome is None:
        return shift, ("aman", "lapor")
    return shift, ()


async def typed_answer(turn: Turn, text: str, option: str | None) -> str | None:
    """The patrol answer a typed text stands for ("ronda:<action>:<shift>"), or None.

    "hadir", "aman" (or the options' words) answer the member's newest shift whatever they
    are doing, unless the question in front of them offers that word. A number answers the
    patrol message only when nothing else is going on and that message is the newest thing
    they were shown (it came after their last message); otherwise numbers keep answering
    the question in front of them. Only such texts cost a look-up.
    """
    word = normalise(text)
    number = word.isdigit()
    if number and turn.state is not State.IDLE:
        return None
    if not number and (word not in WORDS or option is not None):
        return None
    pending = await _pending(turn)
    if pending is None:
        return None
    shift, asked = pending
    if not number:
        return f"ronda:{WORDS[word]}:{shift.id}"
    if shift.created_at <= turn.conversation.updated_at or not 1 <= int(word) <= len(asked):
        return None
    return f"ronda:{asked[int(word) - 1]}:{shift.id}"


async def private_button(turn: Turn) -> None:
    """Hadir / Aman / Lapor kejadian pressed on a patrol message."""
    await answer(turn, turn.msg.button or "")


async def answer(turn: Turn, data: str) -> None:
    """Hadir / Aman / Lapor kejadian, pressed or typed (``typed_answer``)."""
    match = BUTTON.match(data)
    assert match is not None
    action, shift_id = match.group(1), int(match.group(2))
    shift = await turn.session.get(PatrolShift, shift_id)
    member = await store.member_of_shift(turn.session, shift, turn.contact.id) if shift else None
    if shift is None or member is None:
        turn.outcome.notice = turn.t("patrol.not_your_shift")
        if turn.msg.button is None:  # typed: nothing shows a notice, say it
            turn.say(turn.outcome.notice)
            await turn.reprompt_if_busy()
        return
    after = (
        Option(turn.t("patrol.btn_safe"), f"ronda:aman:{shift.id}"),
        Option(turn.t("patrol.btn_incident"), f"ronda:lapor:{shift.id}"),
    )
    if action == "hadir":
        row, changed = await store.record_answer(turn.session, shift.id, member.id, turn.now)
        if row.outcome is not None:  # an old Hadir pressed after Aman: nothing more to ask
            turn.outcome.notice = turn.t(
                "patrol.already", date=format_date(turn.catalog, turn.lang, shift.shift_date)
            )
            turn.outcome.recorded.patrol = {"shift_id": shift.id, "present": False}
            turn.say(turn.outcome.notice)
            await turn.reprompt_if_busy()
            return
        turn.outcome.notice = turn.t("patrol.present_noted")
        turn.outcome.recorded.patrol = {"shift_id": shift.id, "present": changed}
        turn.say(
            turn.t("patrol.present", date=format_date(turn.catalog, turn.lang, shift.shift_date)),
            after,
        )
        await turn.reprompt_if_busy()
        return
    outcome = "aman" if action == "aman" else "incident"
    row, changed = await store.record_answer(
        turn.session, shift.id, member.id, turn.now, outcome=outcome
    )
    turn.outcome.recorded.patrol = {"shift_id": shift.id, "outcome": row.outcome}
    if action == "aman":
        turn.outcome.notice = turn.t("patrol.safe_noted")
        turn.say(
            turn.t(
                "patrol.safe" if changed else "patrol.already",
                date=format_date(turn.catalog, turn.lang, shift.shift_date),
            )
        )
        await turn.reprompt_if_busy()
        return
    await begin_report(turn, urgent=False)


# --- /ronda --------------------------------------------------------------------------------


async def command(turn: Turn, arg: str | None) -> None:
    """/ronda [KODE-WILAYAH] [tim|hapus|jadwal|jeda|lanjut|ikut ...]."""
    word, _, rest = (arg or "").strip().partition(" ")
    code = word if AREA_CODE.match(word) else None
    if code is not None:
        word, _, rest = rest.strip().partition(" ")
    action = SUBCOMMANDS.get(word.lower(), "show" if not word else "help")
    if action == "join":
        await _join(turn, rest)
        await turn.reprompt_if_busy()
        return
    if action == "show" and code is None and not is_supervisor(turn.contact):
        await _show_to_member(turn)  # a resident or officer: the teams to join, by number
        await turn.reprompt_if_busy()
        return
    area_id = await _managed_area(turn, code)
    if area_id is None:
        pass
    elif action == "show":
        await _show(turn, area_id)
    elif action == "team":
        await _add_team(turn, area_id, rest)
    elif action == "delete":
        await _delete_team(turn, area_id, rest)
    elif action == "schedule":
        await _schedule(turn, area_id, rest)
    elif action in ("pause", "resume"):
        await _pause(turn, area_id, paused=action == "pause")
    else:
        turn.say(turn.t("patrol.usage"))
    await turn.reprompt_if_busy()


async def _managed_area(turn: Turn, code: str | None) -> int | None:
    """The coordinator's area, or the named area below it; None (and why) otherwise."""
    own = turn.contact.area_id
    if not is_supervisor(turn.contact) or own is None:
        turn.say(turn.t("patrol.only_coordinator"))
        return None
    if code is None:
        return own
    area = await get_by_code(turn.session, code)
    if area is None or area.id not in await descendant_ids(turn.session, own):
        turn.say(turn.t("patrol.area_not_yours", code=code[:32]))
        return None
    return area.id


async def _team_number(turn: Turn, area_id: int, text: str) -> store.Team | None:
    return await _pick_team(turn, await store.teams_of(turn.session, area_id), text)


async def _pick_team(turn: Turn, teams: list[store.Team], text: str) -> store.Team | None:
    number = text.strip().lstrip("#")
    if not number.isdigit() or not 1 <= int(number) <= len(teams):
        turn.say(turn.t("patrol.unknown_team", number=number[:12] or "-", count=len(teams)))
        return None
    return teams[int(number) - 1]


async def _show(turn: Turn, area_id: int) -> None:
    teams = await store.teams_of(turn.session, area_id)
    rota = await store.rota_of(turn.session, area_id)
    if not teams:
        turn.say(turn.t("patrol.no_teams"))
        return
    lines = [turn.t("patrol.teams_title")]
    for number, team in enumerate(teams, 1):
        names = ", ".join(m.name + (" ✓" if m.contact_id else "") for m in team.members) or "-"
        lines.append(turn.t("patrol.team_line", number=number, name=team.team.name, members=names))
    if rota is None:
        lines.append(turn.t("patrol.no_rota"))
    else:
        area = await turn.session.get(Area, area_id)
        tonight = turn.now.astimezone(zone(area.timezone if area else None)).date()
        current = store.team_on(teams, rota, tonight)
        lines.append(
            turn.t(
                "patrol.rota_line",
                mode=turn.t(f"patrol.mode_{rota.mode}"),
                time=rota.announce_time,
                team=current.team.name if current else "-",
            )
            + (" " + turn.t("patrol.paused_mark") if rota.paused else "")
        )
    lines.extend(await _answers(turn, area_id, teams))
    turn.say("\n".join(lines))


async def _answers(turn: Turn, area_id: int, teams: list[store.Team]) -> list[str]:
    """The newest shift of the last day and each member's answer so far (whatever channel or
    way they answered: pressed, typed or by number)."""
    shift = await store.latest_shift(turn.session, area_id, turn.now - ANSWER_WINDOW)
    team = next((t for t in teams if shift is not None and t.team.id == shift.team_id), None)
    if shift is None or team is None:
        return []
    area = await turn.session.get(Area, area_id)
    zone_name = area.timezone if area else None
    lines = [
        turn.t(
            "patrol.shift_title",
            date=format_date(turn.catalog, turn.lang, shift.shift_date),
            team=team.team.name,
        )
    ]
    for member in team.members:
        row = await store.answer_of(turn.session, shift.id, member.id)
        if member.contact_id is None:
            status = turn.t("patrol.status_not_on_bot")
        elif row is None or row.confirmed_at is None:
            status = turn.t("patrol.status_waiting")
        else:
            status = turn.t("patrol.status_present", time=format_clock(row.confirmed_at, zone_name))
            if row.outcome is not None and row.outcome_at is not None:
                key = "patrol.status_safe" if row.outcome == "aman" else "patrol.status_incident"
                status += ", " + turn.t(key, time=format_clock(row.outcome_at, zone_name))
        lines.append(turn.t("patrol.member_status", name=member.name, status=status))
    return lines


async def _add_team(turn: Turn, area_id: int, rest: str) -> None:
    name, colon, members_text = rest.partition(":")
    members = [m.strip() for m in members_text.split(",") if m.strip()]
    if not colon or not name.strip() or not members or len(members) > MAX_MEMBERS:
        turn.say(turn.t("patrol.usage"))
        return
    team = await store.add_team(turn.session, area_id, name.strip(), members)
    count = len(await store.teams_of(turn.session, area_id))
    turn.say(turn.t("patrol.team_added", name=team.team.name, number=count, size=len(members)))


async def _delete_team(turn: Turn, area_id: int, rest: str) -> None:
    team = await _team_number(turn, area_id, rest)
    if team is None:
        return
    await store.delete_team(turn.session, team.team)
    turn.say(turn.t("patrol.team_deleted", name=team.team.name))


async def _schedule(turn: Turn, area_id: int, rest: str) -> None:
    mode_word, _, time_text = rest.strip().partition(" ")
    mode = MODE_WORDS.get(mode_word.lower())
    at = parse_time(time_text.strip() if ":" in time_text or "." in time_text else "")
    if mode is None or at is None or not (0 <= at[0] <= 23 and 0 <= at[1] <= 59):
        turn.say(turn.t("patrol.usage"))
        return
    area = await turn.session.get(Area, area_id)
    tz = zone(area.timezone if area else None)
    # The rotation starts with the first announcement still ahead (today's, or tomorrow's).
    first = Schedule("daily", at[0], at[1]).next_after(turn.now, tz).astimezone(tz).date()
    announce = f"{at[0]:02d}:{at[1]:02d}"
    await store.set_rota(turn.session, area_id, mode, announce, first)
    turn.say(turn.t("patrol.scheduled", mode=turn.t(f"patrol.mode_{mode}"), time=announce))
    turn.outcome.schedules_changed = True


async def _pause(turn: Turn, area_id: int, *, paused: bool) -> None:
    rota = await store.rota_of(turn.session, area_id)
    if rota is None:
        turn.say(turn.t("patrol.no_rota"))
        return
    rota.paused = paused
    turn.say(turn.t("patrol.paused" if paused else "patrol.resumed"))
    turn.outcome.schedules_changed = True


async def _nearest_teams(turn: Turn, area_id: int) -> list[store.Team]:
    """The teams of the nearest area that has any: the village's, else its parent's..."""
    for candidate in await area_chain_ids(turn.session, area_id):
        teams = await store.teams_of(turn.session, candidate)
        if teams:
            return teams
    return []


async def _show_to_member(turn: Turn) -> None:
    """/ronda by a resident: the teams with their numbers, and how to join one."""
    if turn.contact.area_id is None:
        turn.say(turn.t("patrol.no_area"))
        return
    teams = await _nearest_teams(turn, turn.contact.area_id)
    if not teams:
        turn.say(turn.t("patrol.no_teams_yet"))
        return
    lines = [turn.t("patrol.teams_title")]
    for number, team in enumerate(teams, 1):
        names = ", ".join(m.name for m in team.members) or "-"
        lines.append(turn.t("patrol.team_line", number=number, name=team.team.name, members=names))
    lines.append(turn.t("patrol.join_hint", example=1))
    turn.say("\n".join(lines))


async def _join(turn: Turn, rest: str) -> None:
    if turn.contact.area_id is None:
        turn.say(turn.t("patrol.no_area"))
        return
    teams = await _nearest_teams(turn, turn.contact.area_id)
    team = await _pick_team(turn, teams, rest)
    if team is None:
        return
    name = turn.contact.display_name or turn.msg.display_name or turn.t("staff.unnamed")
    await store.join_team(turn.session, team.team, turn.contact.id, name)
    turn.say(turn.t("patrol.joined", team=team.team.name))
