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
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
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

from bot.outbox import Envelope, SendError
from handlers.commands import MENU
from handlers.types import (
    Channel,
    ChatKind,
    Inbound,
    Location,
    Media,
    MediaKind,
    Option,
    Reply,
)
from storage.types import OutboxKind

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
Handler = Callable[[Inbound], Awaitable[Any]]


def to_inbound(update: Update, bot_key: str = "default") -> Inbound | None:
    """The neutral message for an update, or None for updates the core does not handle."""
    query = update.callback_query
    if query is not None:
        return _from_callback(update, query, bot_key)
    message = update.message or update.edited_message
    if message is None or message.from_user is None:
        return None
    chat = message.chat
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
    if message.migrate_to_chat_id is not None or message.migrate_from_chat_id is not None:
        return None  # service messages: TelegramChannel updates the stored chat id
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
            prev.options or prev.media or prev.location or prev.ask_location
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


async def send_reply(bot: Bot, chat_id: int, reply: Reply) -> Message | None:
    """Send one reply; returns the message that carries its text and buttons."""
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = keyboard(reply.options)
    if reply.ask_location and markup is None:
        markup = ReplyKeyboardMarkup(
            [[KeyboardButton(reply.location_label or "📍", request_location=True)]],
            one_time_keyboard=True,
            resize_keyboard=True,
        )
    primary: Message | None = None
    if reply.media is not None:
        caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
        primary = await _send_media(bot, chat_id, reply.media, caption, markup if caption else None)
        if caption is None and reply.text:
            primary = await _send_text(bot, chat_id, reply.text, markup)
    elif reply.text:
        primary = await _send_text(bot, chat_id, reply.text, markup)
    if reply.location is not None:
        sent = await bot.send_location(chat_id, reply.location.latitude, reply.location.longitude)
        primary = primary or sent
    return primary


async def _send_text(bot: Bot, chat_id: int, text: str, markup: Any) -> Message:
    chunks = split_text(text)
    message: Message | None = None
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        message = await bot.send_message(chat_id, chunk, reply_markup=markup if last else None)
    assert message is not None
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
    """Delivers outbox envelopes through one bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, envelope: Envelope) -> str | None:
        """Send or edit; translate Telegram's errors into what the dispatcher should do."""
        reply = Reply.from_json(envelope.payload["reply"])
        try:
            if envelope.kind == OutboxKind.ALERT_EDIT:
                assert envelope.edit_target is not None
                await self.bot.edit_message_text(
                    reply.text[:TEXT_LIMIT],
                    chat_id=envelope.chat_id,
                    message_id=int(envelope.edit_target),
                    reply_markup=keyboard(reply.options),
                )
                return envelope.edit_target
            message = await send_reply(self.bot, envelope.chat_id, reply)
            return str(message.message_id) if message is not None else None
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
