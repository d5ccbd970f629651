"""/umumkan (/announce): the coordinator's flow, recipients as outbox rows, status, permissions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from handlers.types import MediaKind, Reply
from storage.models import Broadcast, Contact, Outbox
from storage.types import Role
from tests.support.chats import (
    ALERT_GROUP,
    KAMPUNG_MELAYU,
    WIYONO,
    Cast,
    FakeChat,
    photo,
    staff_cast,
    texts,
)


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def prepare(chat: FakeChat, audience: str = "both", text: str = "Kerja bakti Minggu 07.00"):
    """Coordinator: /umumkan, the kecamatan, the audience, the text; returns the preview."""
    out = await chat.send("/umumkan")
    assert [o.label for o in out.replies[-1].options] == ["Kampung Melayu", "Sumber Jaya", "Batal"]
    await chat.press("Kampung Melayu")
    await chat.press(f"bc:aud:{audience}")
    return await chat.send(text)


async def test_coordinator_broadcasts_to_residents_and_groups(cast: Cast) -> None:
    preview = await prepare(cast.coordinator)
    assert preview.recorded.state == State.BROADCAST_CONFIRM
    assert "📢 Pengumuman — Kampung Melayu" in preview.replies[0].text
    assert "Kerja bakti Minggu 07.00" in preview.replies[0].text
    assert "3 penerima" in texts(preview)  # two residents and the officers' group
    assert await rows(cast.coordinator.sessions, Outbox) == []  # nothing before Kirim

    done = await cast.coordinator.press("Kirim")
    assert "#1 dikirim ke 3 penerima" in texts(done)
    assert done.recorded.state == State.IDLE
    sent = [r for r in await rows(cast.coordinator.sessions, Outbox) if r.kind == "broadcast"]
    assert sorted(r.chat_id for r in sent) == sorted(
        [cast.reporter.user_id, cast.resident.user_id, ALERT_GROUP]
    )
    assert {r.broadcast_id for r in sent} == {1}
    assert len({r.dedupe_key for r in sent}) == 3
    for row in sent:
        text = Reply.from_json(row.payload["reply"]).text
        assert "Kerja bakti Minggu 07.00" in text
        assert ("BERHENTI" in text) is (row.chat_id != ALERT_GROUP)  # residents learn how to stop
    (item,) = await rows(cast.coordinator.sessions, Broadcast)
    assert (item.recipients, item.audience) == (3, "both")
    # A second tap on Kirim (or a retried update) sends nothing more.
    again = await cast.coordinator.send(button="bc:send")
    assert again.notice is not None and not again.outbox_ids
    assert len(await rows(cast.coordinator.sessions, Outbox)) == 3


async def test_opted_out_residents_are_skipped(cast: Cast) -> None:
    await cast.resident.send("/berhenti")
    preview = await prepare(cast.coordinator, audience="residents")
    assert "1 penerima" in texts(preview)
    await cast.coordinator.press("Kirim")
    sent = [r for r in await rows(cast.coordinator.sessions, Outbox) if r.kind == "broadcast"]
    assert [r.chat_id for r in sent] == [cast.reporter.user_id]


async def test_groups_only_and_a_photo(cast: Cast) -> None:
    chat = cast.coordinator
    await chat.send("/announce")
    await chat.press("Sumber Jaya")
    await chat.press("bc:aud:groups")
    kept = await chat.send(media=[photo("poster-1")])
    assert "Foto disimpan" in texts(kept)
    preview = await chat.send("Posyandu Rabu pagi")
    assert preview.replies[0].media is not None and preview.replies[0].media.ref == "poster-1"
    await chat.press("Kirim")
    (row,) = [r for r in await rows(chat.sessions, Outbox) if r.kind == "broadcast"]
    assert row.chat_id == ALERT_GROUP
    assert Reply.from_json(row.payload["reply"]).media is not None


async def test_cancel_and_edit_send_nothing_until_confirmed(cast: Cast) -> None:
    await prepare(cast.coordinator)
    again = await cast.coordinator.press("Ubah teks")
    assert again.recorded.state == State.BROADCAST_TEXT
    bad = await cast.coordinator.send(media=[photo("s", caption_kind=MediaKind.STICKER)])
    assert "teks" in texts(bad) and bad.recorded.state == State.BROADCAST_TEXT
    out = await cast.coordinator.send("/batal")
    assert "dibatalkan" in texts(out)
    assert await rows(cast.coordinator.sessions, Outbox) == []
    assert await rows(cast.coordinator.sessions, Broadcast) == []


@pytest.mark.parametrize("role", ["resident", "officer", "other_officer"])
async def test_only_coordinators_may_announce_or_see_status(cast: Cast, role: str) -> None:
    chat = cast.get(role)
    for command in ("/umumkan", "/umumkan status", "UMUMKAN"):
        out = await chat.send(command)
        assert "hanya bisa dikirim oleh koordinator" in texts(out), command
    assert await rows(chat.sessions, Broadcast) == []


async def test_a_coordinator_cannot_announce_to_another_area(cast: Cast) -> None:
    wiyono = FakeChat(cast.coordinator.sessions, user_id=4010, name="Lurah Wiyono")
    await wiyono.enrol(Role.COORDINATOR, WIYONO)
    out = await wiyono.send("/umumkan")  # no area below Wiyono: straight to the audience
    assert out.recorded.state == State.BROADCAST_AUDIENCE
    # A forged button for Kampung Melayu is not among the options offered: refused as stale.
    async with wiyono.sessions() as session:
        area_id = await session.scalar(
            select(Contact.area_id).where(Contact.external_id == cast.coordinator.user_id)
        )
    forged = await wiyono.send(button=f"bc:area:{area_id}")
    assert forged.notice is not None
    assert await rows(wiyono.sessions, Broadcast) == []


async def test_a_coordinator_demoted_before_kirim_sends_nothing(cast: Cast) -> None:
    await prepare(cast.coordinator)
    async with cast.coordinator.sessions() as session:
        await session.execute(
            update(Contact)
            .where(Contact.external_id == cast.coordinator.user_id)
            .values(role=Role.RESIDENT.value)
        )
        await session.commit()
    out = await cast.coordinator.press("Kirim")
    assert "hanya bisa dikirim oleh koordinator" in texts(out)
    assert await rows(cast.coordinator.sessions, Outbox) == []


async def test_status_counts_sent_failed_pending(cast: Cast) -> None:
    await prepare(cast.coordinator)
    await cast.coordinator.press("Kirim")
    async with cast.coordinator.sessions() as session:
        ids = list((await session.scalars(select(Outbox.id).order_by(Outbox.id))).all())
        await session.execute(update(Outbox).where(Outbox.id == ids[0]).values(status="sent"))
        await session.execute(update(Outbox).where(Outbox.id == ids[1]).values(status="failed"))
        await session.commit()
    out = await cast.coordinator.send("/umumkan status")
    assert "#1" in texts(out) and "Kerja bakti Minggu" in texts(out)
    assert "✅ 1 terkirim, ❌ 1 gagal, ⏳ 1 menunggu" in texts(out)
    assert KAMPUNG_MELAYU  # the kecamatan's coordinator sees broadcasts below it


async def test_help_names_the_coordinator_commands_only_to_coordinators(cast: Cast) -> None:
    assert "/umumkan" in texts(await cast.coordinator.send("/bantuan"))
    assert "/umumkan" not in texts(await cast.officer.send("/bantuan"))
    assert "/umumkan" not in texts(await cast.resident.send("/bantuan"))


async def test_a_broadcast_to_nobody_is_refused_with_a_warning(cast: Cast) -> None:
    await cast.resident.send("/berhenti")
    await cast.reporter.send("/berhenti")
    preview = await prepare(cast.coordinator, audience="residents")
    assert "0 penerima" in texts(preview)
    refused = await cast.coordinator.press("Kirim")
    assert texts(refused).startswith(
        "⚠️ Tidak ada penerima (Warga) di Kampung Melayu dan wilayah di bawahnya, "
        "jadi pengumuman ini tidak dikirim."
    )
    assert "dikirim ke 0 penerima" not in texts(refused)
    assert refused.recorded.state == State.BROADCAST_AUDIENCE, "choose other recipients"
    assert await rows(cast.coordinator.sessions, Broadcast) == []
    assert await rows(cast.coordinator.sessions, Outbox) == []


async def test_after_a_broadcast_the_coordinator_gets_the_coordinator_menu(cast: Cast) -> None:
    await prepare(cast.coordinator)
    done = await cast.coordinator.press("Kirim")
    assert "#1 dikirim ke 3 penerima" in texts(done)
    menu = done.replies[-1]
    assert [o.label for o in menu.options] == [
        "Kirim pengumuman",
        "Laporan terbuka",
        "Lapor kejadian",
        "Bantuan",
    ]
    again = await cast.coordinator.press("Kirim pengumuman")
    assert again.recorded.state == State.BROADCAST_AREA, "the menu starts another one"
    resident_menu = (await cast.resident.send("halo")).replies[-1]
    assert "Kirim pengumuman" not in [o.label for o in resident_menu.options]
