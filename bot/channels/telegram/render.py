"""Telegram rendering: a neutral ``Reply`` as the Bot API calls that send it.

Options become inline buttons; a reply with a photo or document carries its text as the caption
when it fits, else as a message after it; long text is split at 4096 characters; a pin is its own
call. ``reply_parts`` lists the calls, ``primary_index`` names the one later edited in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.channels.telegram.capabilities import TELEGRAM
from handlers.commands import MENU
from handlers.types import (
    Document,
    Location,
    Media,
    Option,
    Reply,
)

log = logging.getLogger(__name__)


TEXT_LIMIT = TELEGRAM.text_limit  # 4096, as declared in capabilities.py
CAPTION_LIMIT = TELEGRAM.caption_limit  # 1024


def keyboard(options: tuple[Option, ...]) -> InlineKeyboardMarkup | None:
    """Inline buttons: two to a row when the labels are short, else one per row."""
    if not options:
        return None
    buttons = [InlineKeyboardButton(o.label, callback_data=o.data) for o in options]
    per_row = 2 if all(len(o.label) <= 14 for o in options) and len(options) > 3 else 1
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split a long text at paragraph, then line, then word boundaries."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(
            rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit)
        )
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    chunks.append(rest)
    return [c for c in chunks if c]


@dataclass(frozen=True, slots=True)
class Part:
    """One Bot API call of a reply: a medium or document (with its caption), a piece of text,
    or a pin."""

    text: str | None = None
    media: Media | None = None
    location: Location | None = None
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    document: Document | None = None

    @property
    def is_caption(self) -> bool:
        """Its text is a caption on a medium or document (edited with editMessageCaption)."""
        return self.text is not None and (self.media is not None or self.document is not None)


def reply_parts(reply: Reply) -> list[Part]:
    """The Bot API calls that send a reply, in order (see ``primary_index``)."""
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = keyboard(reply.options)
    if reply.ask_location and markup is None:
        markup = ReplyKeyboardMarkup(
            [[KeyboardButton(reply.location_label or "📍", request_location=True)]],
            one_time_keyboard=True,
            resize_keyboard=True,
        )
    parts: list[Part] = []
    text_to_send = reply.text
    if reply.document is not None:
        caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
        parts.append(Part(caption, document=reply.document, markup=markup if caption else None))
        if caption is not None:
            text_to_send = ""
    elif reply.media is not None:
        caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
        parts.append(Part(caption, reply.media, markup=markup if caption else None))
        if caption is not None:
            text_to_send = ""
    if text_to_send:
        chunks = split_text(text_to_send)
        parts.extend(
            Part(chunk, markup=markup if i == len(chunks) - 1 else None)
            for i, chunk in enumerate(chunks)
        )
    if reply.location is not None:
        parts.append(Part(location=reply.location))
    return parts


def primary_index(parts: list[Part]) -> int | None:
    """The part with the reply's text and buttons (later edited): the last text or medium,
    else the pin; None when there is nothing to send."""
    if not parts:
        return None
    return max((i for i, p in enumerate(parts) if p.location is None), default=len(parts) - 1)


def fit_keeping_tail(text: str, limit: int) -> str:
    """Shorten the head of an edited alert so its last paragraph (who acted, when) survives."""
    if len(text) <= limit:
        return text
    head, _, tail = text.rpartition("\n\n")
    if not head or len(tail) > limit // 2:
        return text[: limit - 1] + "…"
    return head[: limit - len(tail) - 3] + "…\n\n" + tail


def bot_commands(
    catalog_lookup: Callable[[str, str], str],
    menu: tuple[tuple[str, str], ...] = MENU,
) -> dict[str, list[BotCommand]]:
    """A command menu per language: the core's words (MENU for private chats, GROUP_MENU for
    groups), described from the catalog."""
    return {
        lang: [
            BotCommand(english if lang == "en" else word, catalog_lookup(lang, f"commands.{word}"))
            for word, english in menu
        ]
        for lang in ("id", "en")
    }
