"""Status news for a report filed through the Open311 API: the person it was filed for follows
it once they write to the bot from that phone number and have accepted the privacy notice;
nobody is messaged before."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.open311 import ApiReport, file_request
from storage.areas import get_by_code
from storage.models import Open311Request, Outbox, ReportFollower
from storage.open311 import Submitter
from storage.types import Channel
from tests.support.chats import SUMBER_JAYA, Cast, FakeChat, staff_cast, texts
from tests.support.open311 import make_key

PHONE = "+6281234567890"


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def file_for_phone(cast: Cast, *, anonymous: bool = False) -> str:
    """The call centre files a report for a caller who gave their number; its ticket."""
    sessions = cast.officer.sessions
    key_id, _ = await make_key(sessions, SUMBER_JAYA, "Call centre")
    async with sessions() as session:
        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        filed = await file_request(
            session,
            Context(cast.officer.config, now=cast.officer.now),
            ApiReport(
                key_id=key_id,
                key_area_id=area.id,
                service_code="keamanan",
                description="Kabel listrik dicuri",
                address="Jl. Merpati",
                attributes={"anonymous": "true"} if anonymous else {},
                submitter=Submitter(first_name="Wiryo", phone=PHONE),
            ),
            resubmit_window=timedelta(hours=1),
            news_by_phone=True,
        )
        await session.commit()
        return filed.report.ticket


def caller(cast: Cast) -> FakeChat:
    """The caller, on WhatsApp from the number the call centre was given."""
    return FakeChat(
        cast.officer.sessions,
        channel=Channel.WHATSAPP,
        user_id=int(PHONE.removeprefix("+")),
        name="Wiryo",
        phone=PHONE,
    )


async def rows_to(cast: Cast, chat_id: int) -> list[Outbox]:
    async with cast.officer.sessions() as session:
        found = await session.scalars(select(Outbox).where(Outbox.chat_id == chat_id))
        return list(found.all())


@pytest.mark.parametrize("anonymous", [False, True])
async def test_the_caller_follows_the_report_once_they_write_and_consent(
    cast: Cast, anonymous: bool
) -> None:
    ticket = await file_for_phone(cast, anonymous=anonymous)
    person = caller(cast)
    assert await rows_to(cast, person.user_id) == []  # nothing to a number that never wrote

    first = await person.send("halo")  # not consented yet: the privacy notice, no link
    assert ticket not in texts(first)
    out = await person.press("consent:yes")
    # The note comes before the next question (here: which village).
    assert f"Laporan {ticket} dicatat untuk nomor Anda" in out.replies[-2].text
    assert "kelurahan/desa mana" in out.replies[-1].text
    async with cast.officer.sessions() as session:
        follows = (await session.scalars(select(ReportFollower))).all()
        [request] = (await session.scalars(select(Open311Request))).all()
    assert [f.report_id for f in follows] == [request.report_id]
    assert request.linked_contact_id == follows[0].contact_id

    again = await person.send("halo lagi")  # linked once
    assert ticket not in texts(again)

    await cast.officer.send(f"TANGANI {ticket}")
    [news] = [r for r in await rows_to(cast, person.user_id) if r.kind == "status"]
    assert news.channel == "whatsapp"
    assert f"Laporan {ticket} sedang ditangani oleh Bripka Andi" in news.payload["reply"]["text"]


async def test_someone_who_declines_is_not_linked_nor_told(cast: Cast) -> None:
    ticket = await file_for_phone(cast)
    person = caller(cast)
    await person.send("halo")
    out = await person.press("consent:no")
    assert ticket not in texts(out)
    await cast.officer.send(f"TANGANI {ticket}")
    assert [r for r in await rows_to(cast, person.user_id) if r.kind == "status"] == []


async def test_another_number_is_not_linked(cast: Cast) -> None:
    ticket = await file_for_phone(cast)
    other = caller(cast)
    other.phone, other.user_id = "+6281299990000", 6281299990000
    await other.send("halo")
    out = await other.press("consent:yes")
    assert ticket not in texts(out)


async def test_a_closed_report_is_not_linked(cast: Cast) -> None:
    ticket = await file_for_phone(cast)
    await cast.officer.send(f"SELESAI {ticket} sudah aman")
    person = caller(cast)
    await person.send("halo")
    out = await person.press("consent:yes")
    assert ticket not in texts(out)


async def test_a_resident_already_on_whatsapp_is_linked_by_their_next_message(cast: Cast) -> None:
    person = caller(cast)
    await person.onboard()
    ticket = await file_for_phone(cast)
    assert await rows_to(cast, person.user_id) == []  # filing sends nothing by itself
    out = await person.send("halo")
    assert f"Laporan {ticket} dicatat untuk nomor Anda" in out.replies[-2].text
    # The menu still comes last, and its options are what the next answer picks from.
    assert out.replies[-1].options and person.options == list(out.replies[-1].options)
    status = await person.send("/status")
    assert ticket in texts(status)
