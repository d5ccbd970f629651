"""What a WhatsApp reply's file becomes: the signed link Twilio fetches, or nothing it can carry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.media import MediaUrls
from bot.media.library import MediaLibrary
from bot.media.links import MediaLinks
from handlers.capabilities import MB
from handlers.types import Document, Media, MediaKind, Reply
from tests.support.media import local_library, ref_of

PUBLIC = "https://ktn.example.id"
PHOTO = b"\xff\xd8\xff\xe0 banjir"


@pytest.fixture
async def urls(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[tuple[MediaUrls, MediaLibrary, MediaLinks]]:
    library = local_library(tmp_path / "media", sessions)
    await library.start()
    links = MediaLinks(b"k" * 32, PUBLIC, 600)
    yield MediaUrls(library, links, ("https://api.twilio.com",)), library, links
    await library.close()


async def test_a_stored_photo_is_a_signed_link_to_it(
    urls: tuple[MediaUrls, MediaLibrary, MediaLinks],
) -> None:
    media_urls, library, links = urls
    blob = await library.put(PHOTO, "image/jpeg", hold=False)
    url = await media_urls(Reply("Laporan baru", media=Media(MediaKind.PHOTO, blob.ref, size=9)))
    assert url is not None and url.startswith(PUBLIC + "/media/")
    assert links.verify(url.rsplit("/", 1)[1]) == blob.ref


async def test_an_export_is_stored_and_linked_under_its_name(
    urls: tuple[MediaUrls, MediaLibrary, MediaLinks],
) -> None:
    media_urls, library, _ = urls
    data = b"ticket\r\nKTN-ABC234\r\n"
    url = await media_urls(Reply("📎", document=Document("ktn-laporan.csv", data, "text/csv")))
    assert url is not None and url.endswith("/ktn-laporan.csv")
    assert await library.read(ref_of(data)) == data


async def test_what_whatsapp_cannot_carry_is_left_out(
    urls: tuple[MediaUrls, MediaLibrary, MediaLinks],
) -> None:
    media_urls, _, _ = urls
    big = Document("besar.csv", b"x" * (16 * MB + 1), "text/csv")
    assert await media_urls(Reply("📎", document=big)) is None  # over WhatsApp's 16 MB
    gone = Media(MediaKind.PHOTO, ref_of(b"never stored"), "image/jpeg", 12)
    assert await media_urls(Reply("Foto", media=gone)) is None  # no longer stored: words only
    sticker = Media(MediaKind.STICKER, ref_of(PHOTO), "image/webp", 9)
    assert await media_urls(Reply("Stiker", media=sticker)) is None  # a kind it does not send
    twilio = Media(MediaKind.PHOTO, "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1")
    assert await media_urls(Reply("Foto", media=twilio)) is None  # needs our credentials
    public = Media(MediaKind.PHOTO, "https://example.org/poster.jpg")
    assert await media_urls(Reply("Poster", media=public)) == public.ref
