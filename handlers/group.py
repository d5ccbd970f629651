"""Group chats: only slash-commands addressed to the bot matter; chatter is ignored.

Officer features in groups (linking a group to an area, the alert buttons) are a later issue;
for now a group gets help, the emergency numbers, and a pointer to the private chat.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.commands import Command, ParsedCommand, parse_command
from handlers.context import Context
from handlers.render import emergency_text
from handlers.types import Inbound, Outcome, Reply
from storage.models import Area, GroupChat

PRIVATE_ONLY = frozenset(
    {
        Command.REPORT,
        Command.STATUS,
        Command.CANCEL,
        Command.LANGUAGE,
        Command.STOP,
        Command.ERASE,
        Command.AREA,
    }
)


def group_command(msg: Inbound, ctx: Context) -> ParsedCommand | None:
    """The slash-command for this bot in a group message, or None (chatter, other bots)."""
    cmd = parse_command(msg.text, slash_only=True, bot_username=ctx.bot_username)
    if cmd is None or (cmd.command is Command.UNKNOWN and not cmd.addressed):
        return None
    return cmd


async def handle_group(
    session: AsyncSession, msg: Inbound, ctx: Context, cmd: ParsedCommand | None
) -> Outcome:
    """Answer a command in a group; a pressed button gets a notice for now."""
    catalog = ctx.config.catalog
    lang = ctx.config.default_language
    if msg.button is not None:
        return Outcome(notice=catalog.text(lang, "group.button_unavailable"))
    if cmd is None:
        return Outcome()
    link = f"https://t.me/{ctx.bot_username}" if ctx.bot_username else None
    if cmd.command is Command.EMERGENCY:
        area = await session.scalar(
            select(Area)
            .join(GroupChat, GroupChat.area_id == Area.id)
            .where(GroupChat.channel == str(msg.channel), GroupChat.chat_id == msg.chat_id)
        )
        text = await emergency_text(session, ctx.config, lang, area)
    elif cmd.command in PRIVATE_ONLY:
        text = (
            catalog.text(lang, "group.private_only", link=link)
            if link
            else catalog.text(lang, "group.private_only_nolink")
        )
    else:
        text = catalog.text(lang, "group.help")
    return Outcome(replies=[Reply(text)], recorded={"command": cmd.command.value})
