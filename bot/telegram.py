"""The Telegram adapter: updates in, neutral messages to the core, replies and outbox rows out.

It only translates. Business rules live in ``handlers``; delivery of outbox rows lives in
``bot.outbox``. Updates of different users run concurrently, one user's updates in order.
"""

from __future__ import annotations

import os

# Opt in to PTB's timedelta durations now (RetryAfter etc.); the int form is deprecated.
os.environ.setdefault("PTB_TIMEDELTA", "true")

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseUpdateProcessor
from telegram.warnings import PTBDeprecationWarning

from bot.outbox import Envelope, SendError, save_progress
from handlers.commands import MENU
from handlers.types import (
    Channel,
    ChatKind,
    Document,
    Inbound,
    InvalidInbound,
    Location,
    Media,
    MediaKind,
    Option,
    Reply,
)
from storage.types import OutboxKind

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
PARTS_KEY = "tg_parts_sent"  # payload: how many parts of a reply went out already
PRIMARY_KEY = "tg_primary_id"  # payload: the primary message's id, once it went out
CAPTION_LIMIT = 1024
Handler = Callable[[Inbound], Awaitable[Any]]


def to_inbound(update: Update, bot_key: str = "default") -> Inbound | None:
    """The neutral message for an update, or None for updates the core does not handle.

    ``InvalidInbound`` for an update of a malformed shape (python-telegram-bot parses leniently:
    a message without a chat, a string chat id): the core never sees it.
    """
    if type(update.update_id) is not int:
        raise InvalidInbound("update_id is not an integer")
    try:
        return _to_inbound(update, bot_key)
    except (AttributeError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInbound):
            raise
        raise InvalidInbound(f"malformed update ({exc.__class__.__name__})") from None


def _to_inbound(update: Update, bot_key: str) -> Inbound | None:
    query = update.callback_query
    if query is not None:
        return _from_callback(update, query, bot_key)
    # Edits are not new answers: a corrected story would land in a later step, and a live
    # location sends an edit every few seconds for hours.
    message = update.message
    if message is None:
        return None
    chat = message.chat
    if chat is None or type(chat.id) is not int:
        raise InvalidInbound("message without a chat, or a chat id that is not an integer")
    if message.from_user is None or message.migrate_to_chat_id is not None:
        return None  # a channel post; a group's move (TelegramChannel updates the stored id)
    user = message.from_user
    text = message.text or message.caption
    location = None
    if message.location is not None:
        venue = message.venue
        location = Location(
            message.location.latitude,
            message.location.longitude,
            address=venue.address if venue else None,
            label=venue.title if venue else None,
        )
    if message.migrate_from_chat_id is not None:
        return None  # the supergroup's first message after a move: nothing to answer
    return Inbound(
        channel=Channel.TELEGRAM,
        chat_id=chat.id,
        chat_kind=ChatKind.PRIVATE if chat.type == "private" else ChatKind.GROUP,
        user_id=user.id,
        display_name=user.full_name,
        text=text,
        location=location,
        media=_media_of(message),
        message_id=f"{bot_key}:{update.update_id}",
        language_code=user.language_code,
        received_at=message.date,
        chat_title=chat.title,
    )


def _from_callback(update: Update, query: CallbackQuery, bot_key: str) -> Inbound | None:
    message = query.message
    if message is None or query.data is None:
        return None
    chat = message.chat
    return Inbound(
        channel=Channel.TELEGRAM,
        chat_id=chat.id,
        chat_kind=ChatKind.PRIVATE if chat.type == "private" else ChatKind.GROUP,
        user_id=query.from_user.id,
        display_name=query.from_user.full_name,
        button=query.data,
        message_id=f"{bot_key}:{update.update_id}",
        language_code=query.from_user.language_code,
        chat_title=chat.title,
    )


def _media_of(message: Message) -> tuple[Media, ...]:
    if message.photo:
        return (Media(MediaKind.PHOTO, message.photo[-1].file_id, "image/jpeg"),)
    if message.voice:
        return (Media(MediaKind.VOICE, message.voice.file_id, message.voice.mime_type),)
    if message.video:
        return (Media(MediaKind.VIDEO, message.video.file_id, message.video.mime_type),)
    if message.document:
        kind = MediaKind.DOCUMENT
        if (message.document.mime_type or "").startswith("image/"):
            kind = MediaKind.PHOTO
        return (Media(kind, message.document.file_id, message.document.mime_type),)
    if message.sticker:
        return (Media(MediaKind.STICKER, message.sticker.file_id, None),)
    if message.animation or message.audio or message.video_note or message.contact or message.poll:
        return (Media(MediaKind.OTHER, "unsupported", None),)
    return ()


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


def coalesce(replies: list[Reply]) -> list[Reply]:
    """Join plain texts into the reply that follows them: fewer messages, one notification."""
    merged: list[Reply] = []
    for reply in replies:
        prev = merged[-1] if merged else None
        plain = prev is not None and not (
            prev.options or prev.media or prev.document or prev.location or prev.ask_location
        )
        if (
            prev is not None
            and plain
            and reply.media is None
            and (len(prev.text) + len(reply.text) + 2 <= TEXT_LIMIT)
        ):
            merged[-1] = replace(reply, text=f"{prev.text}\n\n{reply.text}".strip())
        else:
            merged.append(reply)
    return merged


@dataclass(frozen=True, slots=True)
class Part:
    """One Bot API call of a reply: a medium or document (with its caption), a piece of text,
    or a pin."""

    text: str | None = None
    media: Media | None = None
    location: Location | None = None
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    document: Document | None = None


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


async def send_part(bot: Bot, chat_id: int, part: Part) -> Message:
    """Make the one Bot API call of a part."""
    if part.location is not None:
        return await bot.send_location(chat_id, part.location.latitude, part.location.longitude)
    if part.media is not None:
        return await _send_media(bot, chat_id, part.media, part.text, part.markup)
    if part.document is not None:
        upload = InputFile(part.document.data, filename=part.document.filename)
        return await bot.send_document(chat_id, upload, caption=part.text, reply_markup=part.markup)
    assert part.text is not None
    return await bot.send_message(chat_id, part.text, reply_markup=part.markup)


async def send_reply(bot: Bot, chat_id: int, reply: Reply) -> Message | None:
    """Send one reply; returns the message that carries its text and buttons."""
    parts = reply_parts(reply)
    primary = primary_index(parts)
    message: Message | None = None
    for i, part in enumerate(parts):
        sent = await send_part(bot, chat_id, part)
        if i == primary:
            message = sent
    return message


async def _send_media(
    bot: Bot, chat_id: int, media: Media, caption: str | None, markup: Any
) -> Message:
    file: str | bytes = media.ref
    if media.ref.startswith("/"):  # a file in our media store, not a Telegram file_id
        file = await asyncio.to_thread(Path(media.ref).read_bytes)
    return await _send_media_file(bot, chat_id, media.kind, file, caption, markup)


async def _send_media_file(
    bot: Bot, chat_id: int, kind: MediaKind, file: Any, caption: str | None, markup: Any
) -> Message:
    if kind is MediaKind.PHOTO:
        return await bot.send_photo(chat_id, file, caption=caption, reply_markup=markup)
    if kind is MediaKind.VOICE:
        return await bot.send_voice(chat_id, file, caption=caption, reply_markup=markup)
    if kind is MediaKind.VIDEO:
        return await bot.send_video(chat_id, file, caption=caption, reply_markup=markup)
    return await bot.send_document(chat_id, file, caption=caption, reply_markup=markup)


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter's delay in seconds (PTB is moving it from int to timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Delivers outbox envelopes through one bot.

    A reply can take several Bot API calls (a pin after the alert, a text too long for a
    caption, text split at 4096). ``cost`` tells the dispatcher how many are still to make, so
    its flood windows count calls; after each part but the last the progress is saved on the row
    (``save_progress``), so a retry or a crash never sends a part twice.
    """

    def __init__(self, bot: Bot, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.bot = bot
        self.sessions = sessions

    def cost(self, envelope: Envelope) -> int:
        """How many Bot API calls sending this envelope still takes."""
        if envelope.kind == OutboxKind.ALERT_EDIT:
            return 1
        parts = reply_parts(Reply.from_json(envelope.payload["reply"]))
        return max(1, len(parts) - int(envelope.payload.get(PARTS_KEY) or 0))

    async def send(self, envelope: Envelope) -> str | None:
        """Send or edit; translate Telegram's errors into what the dispatcher should do."""
        reply = Reply.from_json(envelope.payload["reply"])
        try:
            if envelope.kind == OutboxKind.ALERT_EDIT:
                assert envelope.edit_target is not None
                await self._edit(envelope, reply)
                return envelope.edit_target
            return await self._send_parts(envelope, reply)
        except RetryAfter as exc:
            raise SendError("rate limited", retry_after=retry_seconds(exc)) from exc
        except ChatMigrated as exc:
            raise SendError("group migrated", migrated_to=exc.new_chat_id) from exc
        except Forbidden as exc:
            raise SendError(f"forbidden: {exc.message}", permanent=True, blocked=True) from exc
        except BadRequest as exc:
            if "message is not modified" in exc.message:
                return envelope.edit_target
            raise SendError(f"bad request: {exc.message}", permanent=True) from exc
        except InvalidToken as exc:
            raise SendError("invalid bot token") from exc
        except (TimedOut, NetworkError) as exc:
            raise SendError(f"network: {exc.message}") from exc
        except TelegramError as exc:
            raise SendError(f"telegram: {exc.message}") from exc

    async def _send_parts(self, envelope: Envelope, reply: Reply) -> str | None:
        """Send the parts not sent yet; returns the primary message's id (the one with buttons)."""
        parts = reply_parts(reply)
        primary_at = primary_index(parts)
        done = int(envelope.payload.get(PARTS_KEY) or 0)
        primary = envelope.payload.get(PRIMARY_KEY)
        for i in range(done, len(parts)):
            message = await send_part(self.bot, envelope.chat_id, parts[i])
            if i == primary_at:
                primary = str(message.message_id)
            if i < len(parts) - 1:
                await save_progress(
                    self.sessions, envelope, **{PARTS_KEY: i + 1, PRIMARY_KEY: primary}
                )
        return None if primary is None else str(primary)

    async def _edit(self, envelope: Envelope, reply: Reply) -> None:
        """Edit an alert in place: its caption when it was sent as a photo, else its text."""
        assert envelope.edit_target is not None
        message_id = int(envelope.edit_target)
        markup = keyboard(reply.options)
        if envelope.payload.get("caption"):
            await self.bot.edit_message_caption(
                chat_id=envelope.chat_id,
                message_id=message_id,
                caption=fit_keeping_tail(reply.text, CAPTION_LIMIT),
                reply_markup=markup,
            )
        else:
            await self.bot.edit_message_text(
                fit_keeping_tail(reply.text, TEXT_LIMIT),
                chat_id=envelope.chat_id,
                message_id=message_id,
                reply_markup=markup,
            )


def fit_keeping_tail(text: str, limit: int) -> str:
    """Shorten the head of an edited alert so its last paragraph (who acted, when) survives."""
    if len(text) <= limit:
        return text
    head, _, tail = text.rpartition("\n\n")
    if not head or len(tail) > limit // 2:
        return text[: limit - 1] + "…"
    return head[: limit - len(tail) - 3] + "…\n\n" + tail


class PerUserProcessor(BaseUpdateProcessor):
    """Different users' updates run concurrently; one user's updates run in arrival order."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._waiting: dict[tuple[int, int], int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the coroutine under the lock of the update's chat and user."""
        key = _user_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _user_key(update: object) -> tuple[int, int] | None:
    if not isinstance(update, Update):
        return None
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return None
    return (chat.id, user.id)


def bot_commands(catalog_lookup: Callable[[str, str], str]) -> dict[str, list[BotCommand]]:
    """The command menu per language: the core's MENU words, described from the catalog."""
    return {
        lang: [
            BotCommand(english if lang == "en" else word, catalog_lookup(lang, f"commands.{word}"))
            for word, english in MENU
        ]
        for lang in ("id", "en")
    }


async def answer_callback(query: CallbackQuery, notice: str | None) -> None:
    """Answer a button press (Telegram shows a spinner until we do)."""
    with contextlib.suppress(TelegramError):
        await query.answer(notice[:200] if notice else None)
