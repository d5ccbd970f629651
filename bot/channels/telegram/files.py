"""One Telegram bot's files: downloaded into the media store, sent from it.

In: a resident's photo (video, voice note, document) is fetched with ``getFile`` and the file
download (``[telegram] base_file_url``) before the core sees the message; a declared
``file_size`` over the limit is refused without downloading (``bot.media.intake``). The file_id
the message carried is remembered for this bot and kind.

Out: a stored file goes to Telegram by the file_id this bot knows for it (from the resident's
own message, or from the first upload: Telegram answers an upload with the file_id it gave
it); else its bytes are uploaded once and the new file_id kept. A file_id Telegram refuses is
forgotten and the bytes uploaded instead. file_ids are per bot: another bot uploads its own.
"""

from __future__ import annotations

import logging
import mimetypes

from telegram import Bot, InputFile, Message

from bot.media.intake import Limits, take_media
from bot.media.library import MediaLibrary
from bot.media.store import Blob, TooLarge
from handlers.types import Inbound, Media, MediaKind
from storage.types import Channel

log = logging.getLogger(__name__)

DOWNLOAD_SECONDS = 30.0  # per file: Telegram's download is 20 MB at most
TELEGRAM = Channel.TELEGRAM.value


def file_id_of(message: Message, kind: MediaKind) -> str | None:
    """The file_id Telegram gave the file a message carries, as the kind it was sent."""
    if kind is MediaKind.PHOTO and message.photo:
        return message.photo[-1].file_id
    found = {
        MediaKind.VIDEO: message.video,
        MediaKind.VOICE: message.voice,
        MediaKind.DOCUMENT: message.document,
    }.get(kind)
    return found.file_id if found is not None else None


def upload_name(media: Media) -> str:
    """A file name for an upload: its kind and an extension from its content type."""
    base = (media.content_type or "").split(";")[0].strip()
    extension = mimetypes.guess_extension(base) if base else None
    if media.kind is MediaKind.PHOTO and extension not in (".jpg", ".png", ".webp", ".gif"):
        extension = ".jpg"
    return f"{media.kind.value}{extension or '.bin'}"


class TelegramFiles:
    """The media store as one bot uses it (see the module's docstring)."""

    def __init__(self, library: MediaLibrary, bot_key: str, limits: Limits) -> None:
        self.library = library
        self.bot_key = bot_key
        self.limits = limits

    async def prepare(self, bot: Bot, inbound: Inbound) -> Inbound:
        """The message with its files downloaded into the store (or marked why not)."""

        async def fetch(item: Media, limit: int) -> bytes:
            file = await bot.get_file(item.ref)
            if file.file_size is not None and file.file_size > limit:
                raise TooLarge(limit)
            return bytes(await file.download_as_bytearray())

        async def remember(item: Media, blob: Blob) -> None:
            await self.library.remember_file_id(
                blob.ref, TELEGRAM, self.bot_key, item.kind.value, item.ref
            )

        return await take_media(
            inbound,
            self.library,
            self.limits,
            fetch,
            seconds=DOWNLOAD_SECONDS,
            on_stored=remember,
        )

    async def known_id(self, media: Media) -> str | None:
        """The file_id this bot knows for a stored file, as this kind."""
        return await self.library.file_id(media.ref, TELEGRAM, self.bot_key, media.kind.value)

    async def upload(self, media: Media) -> InputFile:
        """The stored bytes, ready to upload."""
        data = await self.library.read(media.ref)
        return InputFile(data, filename=upload_name(media))

    async def sent(self, media: Media, message: Message) -> None:
        """Keep the file_id Telegram gave an upload, for the next send of this file."""
        file_id = file_id_of(message, media.kind)
        if file_id is not None:
            await self.library.remember_file_id(
                media.ref, TELEGRAM, self.bot_key, media.kind.value, file_id
            )

    async def refused(self, media: Media) -> None:
        """Forget a file_id Telegram refused (the bytes are uploaded instead)."""
        log.info("a cached file_id was refused by Telegram; uploading the file again")
        await self.library.forget_file_id(media.ref, TELEGRAM, self.bot_key, media.kind.value)
