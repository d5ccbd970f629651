"""Commands and the idle menu: what a private message does before (or instead of) its state."""

from __future__ import annotations

from handlers import (
    account,
    broadcast,
    desk,
    export,
    lifecycle,
    onboarding,
    patrol,
    personal,
    problems,
    reminders,
    report,
    staff,
)
from handlers.commands import ACTIONS, ANSWERS, Command, ParsedCommand
from handlers.permissions import is_staff, is_supervisor
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from handlers.types import Option

MENU = {
    "menu:report": Command.REPORT,
    "menu:status": Command.STATUS,
    "menu:emergency": Command.EMERGENCY,
    "menu:help": Command.HELP,
    "menu:announce": Command.ANNOUNCE,  # coordinators' menu
    "menu:reports": Command.REPORTS,
}


async def run_command(turn: Turn, cmd: ParsedCommand) -> None:
    """Run a command; commands that do not change the flow ask the current question again."""
    match cmd.command:
        case Command.CANCEL:
            await account.cancel(turn)
        case Command.START:
            await start(turn, cmd.arg)
        case Command.REPORT:
            await onboarding.begin_report(turn, urgent=False)
        case Command.EMERGENCY:
            await report.say_emergency_numbers(turn)
            await onboarding.begin_report(turn, urgent=True)
        case Command.ERASE:
            await account.ask_erase(turn)
        case Command.MY_DATA:
            await personal.send_my_data(turn)
        case Command.AREA:
            await change_area(turn)
        case Command.HELP:
            turn.say(turn.t("help.body"))
            if is_staff(turn.contact):
                turn.say(turn.t("help.staff"))
            if is_supervisor(turn.contact):
                turn.say(turn.t("help.coordinator"))
            await turn.reprompt_if_busy()
        case Command.REGISTER:
            await staff.register(turn, cmd.arg)
        case Command.LINK:
            turn.say(turn.t("link.in_private"))
            await turn.reprompt_if_busy()
        case Command.REPORTS:
            await staff.show_open_reports(turn)
            await turn.reprompt_if_busy()
        case command if command in ACTIONS:
            await staff.typed_in_private(turn, cmd)
        case command if command in ANSWERS:
            await lifecycle.typed(turn, cmd)
        case Command.STATUS:
            await account.show_status(turn, cmd.arg)
            await turn.reprompt_if_busy()
        case Command.LANGUAGE:
            await account.switch_language(turn, cmd.arg)
            await turn.reprompt_if_busy()
        case Command.STOP:
            await account.opt_out(turn)
            await turn.reprompt_if_busy()
        # --- coordinators: reminders and patrol ---
        case Command.REMINDERS:
            await reminders.command(turn, cmd.arg)
        case Command.PATROL:
            await patrol.command(turn, cmd.arg)
        # --- end rem ---
        # --- coordinators: broadcasts and exports ---
        case Command.ANNOUNCE:
            await broadcast.begin(turn, cmd.arg)
        case Command.EXPORT:
            await export.export_in_chat(turn, cmd.arg)
        # --- end coordinators: broadcasts and exports ---
        case Command.DESK:
            await desk.command(turn, cmd.arg)
        case Command.PROBLEMS:
            await problems.command(turn, cmd.arg)
        case Command.UNKNOWN:
            turn.say(turn.t("help.unknown", command=cmd.word[:32]))
            await turn.reprompt_if_busy()


async def start(turn: Turn, arg: str | None) -> None:
    """/start [AREA_CODE]: welcome and consent, or set the village, or welcome back."""
    if turn.state.in_report:
        turn.say(turn.t("report.in_progress"))
        await turn.reprompt()
        return
    if turn.contact.opted_out_at is not None:  # /start (MULAI) also ends a BERHENTI
        turn.contact.opted_out_at = None
        turn.say(turn.t("start.resumed"))
    if not turn.consented:
        await onboarding.begin(turn, area_code=arg)
        return
    turn.draft.pop("return", None)
    if arg and await onboarding.staff_area_locked(turn):
        await turn.enter(State.IDLE)
        return
    if arg:
        area = await onboarding.village_by_code(turn.session, arg)
        if area is None:
            turn.say(turn.t("area.code_unknown", code=arg[:32]))
            turn.draft.pop("area_matches", None)
            await turn.enter(State.AREA)
            return
        turn.contact.area_id = area.id
        turn.say(turn.t("area.set", area=await onboarding.area_label(turn.session, area)))
        await turn.enter(State.IDLE)
        return
    if turn.contact.area_id is None:
        await turn.enter(State.AREA)
        return
    turn.say(turn.t("start.welcome_back"))
    await turn.enter(State.IDLE)


async def change_area(turn: Turn) -> None:
    """/wilayah: choose the village again (not in the middle of a report)."""
    if turn.state.in_report:
        turn.say(turn.t("area.finish_report_first"))
        await turn.reprompt()
        return
    if await onboarding.staff_area_locked(turn):
        await turn.reprompt_if_busy()
        return
    if not turn.consented:
        await onboarding.begin(turn)
        return
    turn.draft.pop("area_matches", None)
    turn.draft.pop("after", None)
    await turn.enter(State.AREA)


# --- IDLE (the menu) -----------------------------------------------------------------------


@prompt(State.IDLE)
async def show_menu(turn: Turn) -> None:
    """What the bot can do, as options; a coordinator's own (after a broadcast, too)."""
    if is_supervisor(turn.contact):
        turn.say(
            turn.t("menu.ask"),
            [
                Option(turn.t("menu.announce"), "menu:announce"),
                Option(turn.t("menu.reports"), "menu:reports"),
                Option(turn.t("menu.report"), "menu:report"),
                Option(turn.t("menu.help"), "menu:help"),
            ],
        )
        return
    turn.say(
        turn.t("menu.ask"),
        [
            Option(turn.t("menu.report"), "menu:report"),
            Option(turn.t("menu.status"), "menu:status"),
            Option(turn.t("menu.emergency"), "menu:emergency"),
            Option(turn.t("menu.help"), "menu:help"),
        ],
    )


@expects(State.IDLE)
async def menu_chosen(turn: Turn) -> bool:
    """A menu option runs its command."""
    command = MENU.get(turn.option or "")
    if command is None:
        return False
    await run_command(turn, ParsedCommand(command, command.value))
    return True


@fallback(State.IDLE)
async def idle_chatter(turn: Turn) -> None:
    """A greeting, a sticker or a photo with nothing going on: greet and show the menu."""
    turn.say(turn.t("menu.hello"))
    await turn.reprompt()
