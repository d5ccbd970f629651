"""Telegram sends: replies part by part, and the outbox's ``Sender`` for Telegram rows.

Every Bot API error is translated once (``translate``) into what should be done about it, for
outbox rows (the dispatcher) and direct replies (``TelegramChannel``) alike.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import (
    Bot,
    InputFile,
    Message,
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
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram.files import TelegramFiles
from bot.channels.telegram.render import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    Part,
    fit_keeping_tail,
    keyboard,
    primary_index,
    reply_parts,
)
from bot.delivery.dispatcher import Envelope, SendError, save_progress
from handlers.types import (
    Media,
    MediaKind,
    Reply,
)
from storage import outbox
from storage.db import Sessions
from storage.types import OutboxKind

log = logging.getLogger(__name__)
PARTS_KEY = "tg_parts_sent"  # payload: how many parts of a reply went out already
PRIMARY_KEY = "tg_primary_id"  # payload: the primary message's id, once it went out


# payload: whether the primary message is a caption (on a photo, video or document) rather than
# a text, recorded on rows that are edited later before their first part goes out, so the edit
# calls editMessageCaption or editMessageText as the message really is.
CAPTION_KEY = "tg_primary_caption"
EDITED_KINDS = frozenset({OutboxKind.ALERT.value, OutboxKind.ESCALATION.value})


async def send_part(
    bot: Bot, chat_id: int, part: Part, files: TelegramFiles | None = None
) -> Message:
    """Make the one Bot API call of a part (``files``: this bot's view of the media store,
    needed for a part that carries a stored file)."""
    if part.location is not None:
        return await bot.send_location(chat_id, part.location.latitude, part.location.longitude)
    if part.media is not None:
        return await _send_media(bot, chat_id, part.media, part.text, part.markup, files)
    if part.document is not None:
        upload = InputFile(part.document.data, filename=part.document.filename)
        return await bot.send_document(chat_id, upload, caption=part.text, reply_markup=part.markup)
    assert part.text is not None
    return await bot.send_message(chat_id, part.text, reply_markup=part.markup)


async def send_reply(
    bot: Bot, chat_id: int, reply: Reply, files: TelegramFiles | None = None
) -> Message | None:
    """Send one reply; returns the message that carries its text and buttons."""
    parts = reply_parts(reply)
    primary = primary_index(parts)
    message: Message | None = None
    for i, part in enumerate(parts):
        sent = await send_part(bot, chat_id, part, files)
        if i == primary:
            message = sent
    return message


async def _send_media(
    bot: Bot,
    chat_id: int,
    media: Media,
    caption: str | None,
    markup: Any,
    files: TelegramFiles | None,
) -> Message:
    if media.stored:  # in the media store: by this bot's file_id once known, else uploaded
        if files is None:
            raise RuntimeError("a stored file needs the media store to be sent")
        known = await files.known_id(media)
        if known is not None:
            try:
                return await _send_media_file(bot, chat_id, media.kind, known, caption, markup)
            except BadRequest as exc:
                if "file" not in exc.message.lower():
                    raise  # not about the file (a closed chat...): uploading would not help
                await files.refused(media)  # Telegram no longer takes that file_id: upload
        upload = await files.upload(media)
        message = await _send_media_file(bot, chat_id, media.kind, upload, caption, markup)
        await files.sent(media, message)
        return message
    file: str | bytes = media.ref
    if media.ref.startswith("/"):  # a file stored before the media store: a path under data_dir
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


def translate(exc: TelegramError) -> SendError:
    """What a Bot API error means for a send, the one mapping for outbox rows and direct
    replies alike: wait and retry (flood control), retry later (network trouble, 5xx, anything
    unknown), send to the group's new id, or give up for good (blocked, a bad request)."""
    if isinstance(exc, RetryAfter):
        return SendError("rate limited", retry_after=retry_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return SendError("group migrated", migrated_to=exc.new_chat_id)
    if isinstance(exc, Forbidden):
        return SendError(f"forbidden: {exc.message}", permanent=True, blocked=True)
    if isinstance(exc, BadRequest):  # before NetworkError: PTB derives it from NetworkError
        return SendError(f"bad request: {exc.message}", permanent=True)
    if isinstance(exc, InvalidToken):
        return SendError("invalid bot token")
    if isinstance(exc, TimedOut | NetworkError):
        return SendError(f"network: {exc.message}")
    return SendError(f"telegram: {exc.message}")


def is_not_modified(exc: TelegramError) -> bool:
    """An edit that changes nothing: the message already says it (a retried edit)."""
    return isinstance(exc, BadRequest) and "message is not modified" in exc.message


def primary_is_caption(payload: dict[str, Any] | None) -> bool:
    """Whether a sent row's primary message is a caption: what its send recorded, or, for a row
    sent before sends recorded it, what this renderer makes of its reply."""
    if payload is None:
        return False
    recorded = payload.get(CAPTION_KEY)
    if isinstance(recorded, bool):
        return recorded
    try:
        parts = reply_parts(Reply.from_json(payload["reply"]))
    except (KeyError, TypeError, ValueError):
        return False
    at = primary_index(parts)
    return at is not None and parts[at].is_caption


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

    def __init__(self, bot: Bot, sessions: Sessions, files: TelegramFiles | None = None) -> None:
        self.bot = bot
        self.sessions = sessions
        self.files = files

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
        except TelegramError as exc:
            if is_not_modified(exc):
                return envelope.edit_target
            raise translate(exc) from exc

    async def _send_parts(self, envelope: Envelope, reply: Reply) -> str | None:
        """Send the parts not sent yet; returns the primary message's id (the one with buttons)."""
        parts = reply_parts(reply)
        primary_at = primary_index(parts)
        done = int(envelope.payload.get(PARTS_KEY) or 0)
        primary = envelope.payload.get(PRIMARY_KEY)
        recorded: dict[str, Any] = {}
        if envelope.kind in EDITED_KINDS and CAPTION_KEY not in envelope.payload:
            # Before anything is sent: a failure here is a plain retry, never a second copy.
            recorded[CAPTION_KEY] = primary_at is not None and parts[primary_at].is_caption
            await save_progress(self.sessions, envelope, **recorded)
        for i in range(done, len(parts)):
            message = await send_part(self.bot, envelope.chat_id, parts[i], self.files)
            if i == primary_at:
                primary = str(message.message_id)
            if i < len(parts) - 1:
                await save_progress(
                    self.sessions,
                    envelope,
                    **{**recorded, PARTS_KEY: i + 1, PRIMARY_KEY: primary},
                )
        return None if primary is None else str(primary)

    async def _edits_caption(self, envelope: Envelope) -> bool:
        """Whether the message an edit changes is a caption, as its send recorded it."""
        async with self.sessions() as session:
            original = await outbox.payload_of(session, int(envelope.payload["edit_of"]))
        return primary_is_caption(original)

    async def _edit(self, envelope: Envelope, reply: Reply) -> None:
        """Edit an alert in place: its caption when it was sent as a photo, else its text."""
        assert envelope.edit_target is not None
        message_id = int(envelope.edit_target)
        markup = keyboard(reply.options)
        if await self._edits_caption(envelope):
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
