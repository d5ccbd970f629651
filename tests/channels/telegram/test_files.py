"""One bot's files against the Telegram fake (real PTB over HTTP): downloads into the media store
with the limits, and stored files sent by the file_id Telegram gave them, else uploaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.capabilities import TELEGRAM
from bot.channels.telegram.files import TelegramFiles
from bot.channels.telegram.render import Part
from bot.channels.telegram.sender import send_part
from bot.media.intake import Limits
from bot.media.library import MediaLibrary
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from handlers.types import Channel, ChatKind, Inbound, Media, MediaKind, MediaProblem
from tests.support.media import local_library, ref_of, stored_files

USER = 5101
PHOTO = b"\xff\xd8\xff\xe0" + b"jalan berlubang " * 100


@dataclass
class Files:
    fake: TelegramFake
    bot: Bot
    files: TelegramFiles
    library: MediaLibrary
    root: Path

    def photo_message(self, data: bytes = PHOTO, chat_kind: ChatKind = ChatKind.PRIVATE) -> Inbound:
        """A message with a photo the user sent (the fake keeps its bytes for getFile)."""
        largest = self.fake.store_photo(data)[-1]
        media = Media(MediaKind.PHOTO, largest["file_id"], "image/jpeg", largest["file_size"])
        chat = USER if chat_kind is ChatKind.PRIVATE else -100123
        return Inbound(
            Channel.TELEGRAM, chat, chat_kind, USER, media=(media,), message_id="default:7"
        )


@pytest.fixture
async def tg(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Files]:
    library = local_library(tmp_path / "media", sessions)
    await library.start()
    async with (
        TelegramFake() as fake,
        Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url, base_file_url=fake.file_api_url) as bot,
    ):
        fake.start(USER)
        files = TelegramFiles(library, "default", Limits.of(TELEGRAM))
        yield Files(fake, bot, files, library, tmp_path / "media")
    await library.close()


async def test_a_photo_is_downloaded_into_the_store_and_its_file_id_kept(tg: Files) -> None:
    message = tg.photo_message()
    [got] = (await tg.files.prepare(tg.bot, message)).media
    assert (got.ref, got.size, got.problem) == (ref_of(PHOTO), len(PHOTO), None)
    assert await tg.library.read(got.ref) == PHOTO
    assert await tg.files.known_id(got) == message.media[0].ref  # the resident's own file_id
    assert tg.fake.call_counts["getFile"] == 1


async def test_a_declared_size_over_the_limit_is_refused_without_downloading(tg: Files) -> None:
    tg.files.limits = Limits({MediaKind.PHOTO: 1000})
    [got] = (await tg.files.prepare(tg.bot, tg.photo_message())).media
    assert (got.problem, got.limit) == (MediaProblem.TOO_LARGE, 1000)
    assert tg.fake.call_counts["getFile"] == 0 and stored_files(tg.root) == []


async def test_a_kind_not_accepted_and_a_failed_download_are_marked(tg: Files) -> None:
    tg.files.limits = Limits({MediaKind.VOICE: 1000})
    [got] = (await tg.files.prepare(tg.bot, tg.photo_message())).media
    assert got.problem is MediaProblem.NOT_ACCEPTED

    tg.files.limits = Limits.of(TELEGRAM)
    tg.fake.fail_next("getFile", 500)
    [got] = (await tg.files.prepare(tg.bot, tg.photo_message())).media
    assert got.problem is MediaProblem.UNAVAILABLE and stored_files(tg.root) == []


async def test_a_groups_files_are_not_downloaded(tg: Files) -> None:
    message = tg.photo_message(chat_kind=ChatKind.GROUP)
    assert await tg.files.prepare(tg.bot, message) == message
    assert tg.fake.call_counts["getFile"] == 0


async def test_a_stored_photo_is_uploaded_once_then_sent_by_its_file_id(tg: Files) -> None:
    blob = await tg.library.put(PHOTO, "image/jpeg", hold=False)  # e.g. from WhatsApp
    media = Media(MediaKind.PHOTO, blob.ref, "image/jpeg", blob.size)
    first = await send_part(tg.bot, USER, Part("Foto kejadian", media), tg.files)
    assert first.photo and tg.fake.files[first.photo[-1].file_id].data == PHOTO
    assert await tg.files.known_id(media) == first.photo[-1].file_id

    second = await send_part(tg.bot, USER, Part("Lagi", media), tg.files)
    assert second.photo[-1].file_id == first.photo[-1].file_id  # no second upload

    # Telegram stops taking that id: the bytes are uploaded again and the new id kept.
    tg.fake.fail_next(
        "sendPhoto", 400, description="Bad Request: wrong file identifier/HTTP URL specified"
    )
    third = await send_part(tg.bot, USER, Part("Sekali lagi", media), tg.files)
    assert third.photo[-1].file_id != first.photo[-1].file_id
    assert tg.fake.files[third.photo[-1].file_id].data == PHOTO
    assert await tg.files.known_id(media) == third.photo[-1].file_id


async def test_file_ids_are_per_bot(tg: Files) -> None:
    blob = await tg.library.put(PHOTO, "image/jpeg", hold=False)
    media = Media(MediaKind.PHOTO, blob.ref, "image/jpeg", blob.size)
    await send_part(tg.bot, USER, Part("Foto", media), tg.files)
    other = TelegramFiles(tg.library, "polda_lampung", Limits.of(TELEGRAM))
    assert await other.known_id(media) is None  # another bot uploads its own
