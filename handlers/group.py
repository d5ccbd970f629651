"""Group chats: only slash-commands addressed to the bot and button presses matter.

Officers and coordinators link a group to their area (/hubungkan), press the alert buttons, list
open reports (/laporan) and may type ``/selesai KTN-ABC234 catatan`` or
``/gabung KTN-ABC234 KTN-XYZ789`` (a duplicate). Everyone gets help and the
emergency numbers; private things (/lapor, /daftar, ...) get a pointer to the private chat.
Chatter is none of the bot's business (in privacy mode Telegram does not even send it).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import problems, staff
from handlers.commands import ACTIONS, Command, ParsedCommand, parse_command, parse_typed_action
from handlers.context import Context
from handlers.render import emergency_text
from handlers.types import Inbound, Outcome, Recorded, Reply
from storage.group_links import area_of_group

PRIVATE_ONLY = frozenset(
    {
        Command.REPORT,
        Command.STATUS,
        Command.CANCEL,
        Command.LANGUAGE,
        Command.STOP,
        Command.ERASE,
        Command.AREA,
        Command.REMINDERS,
        Command.PATROL,
        Command.ANNOUNCE,  # coordinators
        Command.EXPORT,  # coordinators
        Command.PROBLEMS,  # staff: /masalah in the private chat
        Command.FIXED,  # the reporter's answers
        Command.NOT_FIXED,
    }
)


def group_command(msg: Inbound, ctx: Context) -> ParsedCommand | None:
    """The command for this bot in a group message, or None (chatter, other bots).

    Slash-commands, and the typed staff actions (``selesai KTN-ABC234 ...``) should the bot see
    plain text (privacy mode off).
    """
    cmd = parse_command(msg.text, slash_only=True, bot_username=ctx.bot_username)
    if cmd is None:
        return parse_typed_action(msg.text)
    if cmd.command is Command.UNKNOWN and not cmd.addressed:
        return None
    return cmd


async def handle_group(
    session: AsyncSession, msg: Inbound, ctx: Context, cmd: ParsedCommand | None
) -> Outcome:
    """Answer a command or a button press in a group."""
    if problems.is_problem_button(msg.button):  # the group alert's "Masalah…" and its menu
        return await problems.group_button(session, msg, ctx)
    if msg.button is not None:
        return await staff.group_button(session, msg, ctx)
    if cmd is None:
        return Outcome()
    if cmd.command in ACTIONS:
        return await staff.typed_in_group(session, msg, ctx, cmd)
    if cmd.command is Command.LINK:
        return await staff.link_group(session, msg, ctx)
    if cmd.command is Command.REPORTS:
        return await staff.open_reports_in_group(session, msg, ctx)
    catalog = ctx.config.catalog
    lang = ctx.config.default_language
    link = f"https://t.me/{ctx.bot_username}" if ctx.bot_username else None
    if cmd.command is Command.EMERGENCY:
        area = await area_of_group(session, str(msg.channel), msg.chat_id)
        text = await emergency_text(session, ctx.config, lang, area)
    elif cmd.command is Command.REGISTER:
        text = catalog.text(lang, "register.in_group")
    elif cmd.command in PRIVATE_ONLY:
        text = (
            catalog.text(lang, "group.private_only", link=link)
            if link
            else catalog.text(lang, "group.private_only_nolink")
        )
    else:  # /bantuan: the alert's buttons (as labelled) and the typed commands
        text = catalog.text(
            lang,
            "group.help",
            **{key: catalog.text(lang, f"alert.{key}") for key in ("claim", "resolve", "reject")},
        )
    return Outcome(replies=[Reply(text)], recorded=Recorded(command=cmd.command))
