"""Signed links to stored files: what Twilio fetches, and what a stranger or a late fetch gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bot.media.library import MediaLibrary
from bot.media.links import MediaLinks, link_key, media_routes
from tests.support.media import local_library

PUBLIC = "https://ktn.example.id"
KEY = b"k" * 32
CSV = b"ticket,category\r\nKTN-ABC234,keamanan\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def served(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[tuple[MediaLibrary, MediaLinks, Clock, httpx.AsyncClient]]:
    library = local_library(tmp_path / "media", sessions)
    await library.start()
    clock = Clock()
    links = MediaLinks(KEY, PUBLIC + "/", 600, clock=clock)
    app = Starlette(routes=media_routes(library, links))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
        yield library, links, clock, client
    await library.close()


async def test_a_link_serves_the_file_until_it_expires(
    served: tuple[MediaLibrary, MediaLinks, Clock, httpx.AsyncClient],
) -> None:
    library, links, clock, client = served
    blob = await library.put(CSV, "text/csv", hold=False)
    url = links.url(blob.ref, "ktn-laporan-17.71.08-20261125.csv")
    assert url.startswith(PUBLIC + "/media/") and url.endswith("/ktn-laporan-17.71.08-20261125.csv")

    got = await client.get(url)
    assert got.status_code == 200 and got.content == CSV
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-length"] == str(len(CSV))
    assert 'filename="ktn-laporan-17.71.08-20261125.csv"' in got.headers["content-disposition"]
    assert "sandbox" in got.headers["content-security-policy"]  # a sent "text/html" runs nothing
    head = await client.head(url)
    assert head.status_code == 200 and head.content == b""

    clock.now += 600  # the last second it is valid
    assert (await client.get(url)).status_code == 200
    clock.now += 1
    late = await client.get(url)
    assert (late.status_code, late.content) == (403, b"")


async def test_forged_or_damaged_tokens_get_403_and_a_file_gone_404(
    served: tuple[MediaLibrary, MediaLinks, Clock, httpx.AsyncClient],
) -> None:
    library, links, clock, client = served
    blob = await library.put(CSV, "text/csv", hold=False)
    token = links.token(blob.ref)
    other = MediaLinks(b"x" * 32, PUBLIC, 600, clock=clock)  # somebody else's key
    for bad in (
        other.token(blob.ref),
        token[:-1],
        token + "A",
        token[:20] + ("A" if token[20] != "A" else "B") + token[21:],
        "not-a-token",
        "%2e%2e",
        "A" * 500,
        token[:48] + "!" + token[48:],  # a character base64 would skip is no part of a token
    ):
        answer = await client.get(f"/media/{bad}")
        assert (answer.status_code, answer.content) == (403, b""), bad
    await library.store.delete(blob.ref)
    assert (await client.get(f"/media/{token}")).status_code == 404


def test_a_link_names_only_the_file_and_its_expiry() -> None:
    links = MediaLinks(KEY, PUBLIC, 600, clock=Clock())
    ref = "sha256:" + "ab" * 32
    url = links.url(ref, "../../etc/passwd")  # a name that is not a plain file name is left out
    assert url.count("/") == PUBLIC.count("/") + 2
    assert links.verify(url.rsplit("/", 1)[1]) == ref


def test_the_key_is_the_configured_secret_or_derived_from_twilios_token() -> None:
    assert link_key("a-long-configured-secret", "twilio-token") == b"a-long-configured-secret"
    derived = link_key(None, "twilio-token")
    assert derived is not None and derived != b"twilio-token" and len(derived) == 32
    assert link_key(None, "twilio-token") == derived  # every worker derives the same key
    assert link_key(None, None) is None
    with pytest.raises(ValueError, match="at least 16 bytes"):
        MediaLinks(b"short", PUBLIC, 600)
