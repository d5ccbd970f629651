"""Telegram updates in: one neutral ``Inbound`` per update the core handles.

Only translation: a message or a button press becomes an ``Inbound`` tagged with the bot's key;
edits, channel posts and service messages are ignored; an update of a malformed shape raises
``InvalidInbound`` so the channel refuses it before the core.
"""

from __future__ import annotations

import logging

from telegram import (
    CallbackQuery,
    Message,
    Update,
)

from handlers.types import (
    Channel,
    ChatKind,
    Inbound,
    InvalidInbound,
    Location,
    Media,
    MediaKind,
)
from storage.types import DEFAULT_BOT

log = logging.getLogger(__name__)


def to_inbound(update: Update, bot_key: str = DEFAULT_BOT) -> Inbound | None:
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
    """The file a message carries: its file_id (the channel downloads it into the media store
    before the core), content type, and the size Telegram declares (checked before
    downloading)."""
    if message.photo:
        largest = message.photo[-1]
        return (Media(MediaKind.PHOTO, largest.file_id, "image/jpeg", _size(largest.file_size)),)
    if message.voice:
        voice = message.voice
        return (Media(MediaKind.VOICE, voice.file_id, voice.mime_type, _size(voice.file_size)),)
    if message.video:
        video = message.video
        return (Media(MediaKind.VIDEO, video.file_id, video.mime_type, _size(video.file_size)),)
    if message.document:
        document = message.document
        kind = MediaKind.DOCUMENT
        if (document.mime_type or "").startswith("image/"):
            kind = MediaKind.PHOTO
        return (Media(kind, document.file_id, document.mime_type, _size(document.file_size)),)
    if message.sticker:
        return (Media(MediaKind.STICKER, message.sticker.file_id, None),)
    if message.animation or message.audio or message.video_note or message.contact or message.poll:
        return (Media(MediaKind.OTHER, "unsupported", None),)
    return ()


def _size(value: object) -> int | None:
    """A declared file size, when it is one."""
    return value if type(value) is int and value >= 0 else None
