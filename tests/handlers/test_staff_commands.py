"""Officers' commands: /daftar (register with an invite), /hubungkan (link a group),
/laporan (open reports), for every kind of person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.commands import Command, parse_command
from handlers.states import State
from storage import reports
from storage.areas import get_by_code
from storage.models import Contact, GroupChat, Invite, Outbox
from tests.support.chats import (
    ALERT_GROUP,
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    WIYONO,
    Cast,
    FakeChat,
    load_areas,
    make_invite,
    staff_cast,
    texts,
)

ROLES = ["resident", "other_officer", "officer", "coordinator"]


async def all_rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def contact_of(chat: FakeChat) -> Contact:
    async with chat.sessions() as session:
        found = await session.scalar(select(Contact).where(Contact.external_id == chat.user_id))
        assert found is not None
        return found


# --- /daftar -------------------------------------------------------------------------------


@pytest.fixture
async def areas(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    await load_areas(sessions)
    return sessions


async def test_daftar_works_for_a_brand_new_contact_then_asks_consent(
    areas: async_sessionmaker[AsyncSession],
) -> None:
    code = await make_invite(areas, "officer", SUMBER_JAYA)
    chat = FakeChat(areas, user_id=4001, name="Bripka Andi")
    out = await chat.send(f"/daftar {code.lower()}")
    said = texts(out)
    assert said.startswith(
        "✅ Terdaftar. Anda sekarang petugas Bhabinkamtibmas untuk "
        "Sumber Jaya (Kampung Melayu, Kota Bengkulu)."
    )
    assert "27 Tahun 2022" in said, "the privacy notice follows"
    assert out.recorded.state == State.CONSENT.value
    contact = await contact_of(chat)
    assert (contact.role, contact.display_name, contact.consent_at) == (
        "officer",
        "Bripka Andi",
        None,
    )
    out = await chat.press("Setuju")
    assert out.recorded.state == State.IDLE.value
    [invite] = await all_rows(areas, Invite)
    assert invite.used_by_id == contact.id


@pytest.mark.parametrize(
    ("role", "code", "label"),
    [
        (
            "coordinator",
            KAMPUNG_MELAYU,
            "koordinator untuk Kampung Melayu (Kota Bengkulu, Bengkulu)",
        ),
        ("admin", "17.71", "admin untuk Kota Bengkulu (Bengkulu)"),
    ],
)
async def test_daftar_names_the_role_and_area(
    areas: async_sessionmaker[AsyncSession], role: str, code: str, label: str
) -> None:
    chat = FakeChat(areas, user_id=4003, name="Iptu Sari")
    await chat.onboard()
    out = await chat.send(f"daftar {await make_invite(areas, role, code)}")
    assert f"Anda sekarang {label}." in texts(out)
    assert (await contact_of(chat)).role == role


async def test_daftar_unknown_used_expired_and_usage(
    areas: async_sessionmaker[AsyncSession],
) -> None:
    chat = FakeChat(areas, user_id=4001, name="Bripka Andi")
    await chat.onboard()
    out = await chat.send("/daftar ZZZZZZZZZZ")
    assert (
        texts(out)
        == "Kode undangan ZZZZZZZZZZ tidak dikenal. Periksa lagi kodenya, lalu kirim /daftar KODE."
    )
    out = await chat.send("/daftar")
    assert texts(out) == "Ketik /daftar diikuti kode undangan Anda, misalnya: /daftar ABCD234567"
    expired = await make_invite(areas, "officer", SUMBER_JAYA, now=chat.now - timedelta(days=8))
    out = await chat.send(f"/daftar {expired}")
    assert texts(out).startswith("Kode undangan ini sudah kedaluwarsa.")
    code = await make_invite(areas, "officer", SUMBER_JAYA)
    await chat.send(f"/register {code}")
    out = await chat.send(f"/daftar {code}")
    assert texts(out) == "Kode ini sudah Anda pakai; Anda sudah terdaftar."
    other = FakeChat(areas, user_id=4002, name="Bripda Dodi")
    out = await other.send(f"/daftar {code}")
    assert texts(out).startswith("Kode undangan ini sudah dipakai.")
    assert (await contact_of(other)).role == "resident"


async def test_daftar_in_a_group_is_refused_and_the_code_kept(
    areas: async_sessionmaker[AsyncSession],
) -> None:
    code = await make_invite(areas, "officer", SUMBER_JAYA)
    group = FakeChat(areas, user_id=4001, chat_id=ALERT_GROUP).in_group()
    out = await group.send(f"/daftar {code}")
    assert "chat pribadi" in texts(out)
    [invite] = await all_rows(areas, Invite)
    assert invite.used_at is None
    assert await all_rows(areas, Contact) == []


def test_staff_words_without_a_slash_need_their_argument() -> None:
    assert parse_command("daftar") is None
    assert parse_command("daftar sekarang") is None
    parsed = parse_command("daftar abcd-efgh-23")
    assert parsed is not None and parsed.command is Command.REGISTER
    assert parse_command("hubungkan") is None
    for text in ("selesai", "tolak", "tangani", "selesai dengan baik", "tolak saja pak"):
        assert parse_command(text) is None, text
    parsed = parse_command("Selesai KTN-ABC234 pelaku sudah\ndiamankan")
    assert parsed is not None and parsed.command is Command.RESOLVE
    assert parsed.arg == "KTN-ABC234 pelaku sudah\ndiamankan"
    parsed = parse_command("claim ktn abc234")
    assert parsed is not None and (parsed.command, parsed.arg) == (Command.CLAIM, "ktn abc234")
    parsed = parse_command("LAPORAN")
    assert parsed is not None and parsed.command is Command.REPORTS
    parsed = parse_command("/tolak 7QX4PA")
    assert parsed is not None and (parsed.command, parsed.arg) == (Command.REJECT, "7QX4PA")


# --- /hubungkan ----------------------------------------------------------------------------


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions, group=False)


@pytest.mark.parametrize("role", ROLES)
async def test_hubungkan_by_every_role(cast: Cast, role: str) -> None:
    person = cast.get(role)
    out = await person.in_group(chat_id=-200, title="Grup Bhabin").send("/hubungkan@ktn_bot")
    groups = await all_rows(person.sessions, GroupChat)
    if role == "resident":
        assert texts(out).startswith("Maaf, hanya petugas atau koordinator terdaftar")
        assert groups == []
        return
    contact = await contact_of(person)
    [group] = groups
    assert (group.chat_id, group.area_id, group.title, group.linked_by_id, group.purpose) == (
        -200,
        contact.area_id,
        "Grup Bhabin",
        contact.id,
        "alerts",
    )
    said = texts(out)
    assert said.startswith("✅ Grup ini sekarang menerima laporan warga dari")
    assert said.endswith("Bot hanya melihat perintah dan tombol di grup ini; itu cukup.")


async def test_hubungkan_moves_a_group_and_replaces_an_area_link(cast: Cast) -> None:
    sessions = cast.officer.sessions
    await cast.officer.in_group(chat_id=-200).send("/hubungkan")
    out = await cast.other_officer.in_group(chat_id=-200).send("/hubungkan")
    assert "Hanya petugas atau koordinator Sumber Jaya" in texts(out)  # not Wiyono's to take
    async with sessions() as session:
        wiyono = await get_by_code(session, WIYONO)
        sumber_jaya = await get_by_code(session, SUMBER_JAYA)
        assert wiyono is not None and sumber_jaya is not None
    [group] = await all_rows(sessions, GroupChat)
    assert group.area_id == sumber_jaya.id
    await cast.officer.in_group(chat_id=-200).send("/hubungkan")  # relinking one's own: fine
    await cast.officer.in_group(chat_id=-199).send("/hubungkan")  # moves SJ's link away
    out = await cast.other_officer.in_group(chat_id=-200).send("/hubungkan")
    assert "Wiyono" in texts(out)
    [group, _] = sorted(await all_rows(sessions, GroupChat), key=lambda g: g.chat_id)
    assert (group.chat_id, group.area_id) == (-200, wiyono.id)

    await cast.officer.in_group(chat_id=-201).send("/hubungkan")
    out = await cast.officer.in_group(chat_id=-202, title="Grup Baru").send("/hubungkan")
    assert "Grup lain yang sebelumnya menerima laporan Sumber Jaya tidak lagi menerimanya" in texts(
        out
    )
    links = {(g.chat_id, g.area_id) for g in await all_rows(sessions, GroupChat)}
    assert links == {(-200, wiyono.id), (-202, sumber_jaya.id)}

    filed = await cast.reporter.file_report()
    alerts = [r for r in await all_rows(sessions, Outbox) if r.kind == "alert"]
    assert [a.chat_id for a in alerts] == [-202]
    assert filed.outbox_ids == [alerts[0].id]


async def test_hubungkan_in_a_private_chat_explains_where(cast: Cast) -> None:
    out = await cast.officer.send("/hubungkan")
    assert texts(out).startswith("Ketik /hubungkan di grup petugas")
    assert await all_rows(cast.officer.sessions, GroupChat) == []


# --- /laporan ------------------------------------------------------------------------------


async def _file_at(chat: FakeChat, minutes_ago: int, category: str = "lainnya") -> str:
    chat.now = datetime(2025, 5, 12, 3, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    out = await chat.file_report(category, f"cerita {minutes_ago}")
    return str(out.recorded.filed["ticket"])


@pytest.mark.parametrize("role", ROLES)
async def test_laporan_by_every_role(cast: Cast, role: str) -> None:
    ticket = await _file_at(cast.reporter, 30)
    out = await cast.get(role).send("/laporan")
    said = texts(out)
    if role == "resident":
        assert said.startswith("Maaf, perintah ini hanya untuk petugas")
    elif role == "other_officer":
        assert said == "Tidak ada laporan terbuka di wilayah Anda. 👍"
    else:
        assert ticket in said
    group_out = await cast.get(role).in_group().send("/laporan")
    assert texts(group_out) == said


async def test_laporan_lists_open_reports_oldest_first_with_scope(cast: Cast) -> None:
    neighbour = FakeChat(cast.officer.sessions, user_id=5001, name="Siti")
    await neighbour.onboard(WIYONO)
    old = await _file_at(cast.reporter, 3 * 60)
    newer = await _file_at(cast.reporter, 20, "kesehatan")
    closed = await _file_at(cast.reporter, 10, "keamanan")
    elsewhere = await _file_at(neighbour, 50)
    await cast.officer.send(f"tangani {newer}")
    await cast.officer.send(f"selesai {closed} sudah aman")
    urgent = await _file_at(cast.reporter, 5, "bencana")

    out = await cast.officer.send("/laporan")
    lines = texts(out).splitlines()
    assert lines[0] == "📋 Laporan terbuka (3), yang terlama dulu:"
    assert lines[1] == f"• {old} — Lainnya — Sumber Jaya — 3 jam — menunggu petugas"
    assert lines[2] == f"• {newer} — Kesehatan — Sumber Jaya — 20 mnt — ditangani Bripka Andi"
    assert lines[3] == f"• {urgent} — Bencana — Sumber Jaya — 5 mnt — menunggu petugas ⚠️"
    assert closed not in texts(out) and elsewhere not in texts(out)

    out = await cast.coordinator.send("/reports")
    assert [line.split(" — ")[0] for line in texts(out).splitlines()[1:]] == [
        f"• {old}",
        f"• {newer}",
        f"• {urgent}",
    ]
    out = await cast.other_officer.send("laporan")
    assert texts(out).splitlines()[1].startswith(f"• {elsewhere} — Lainnya — Wiyono — 50 mnt")


async def test_laporan_is_capped_with_how_many_more(cast: Cast) -> None:
    sessions = cast.officer.sessions
    start = datetime(2025, 5, 11, 0, 0, tzinfo=UTC)
    async with sessions() as session:
        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        for i in range(23):
            await reports.create_report(
                session,
                category="lainnya",
                description=f"kejadian {i}",
                area_id=area.id,
                reporter_id=None,
                anonymous=True,
                urgent=False,
                now=start + timedelta(minutes=i),
                ticket=f"KTN-AAAA{'ABCDEFGHJKLMNPQRSTUVWXYZ'[i]}A",
            )
        await session.commit()
    out = await cast.officer.send("/laporan")
    lines = texts(out).splitlines()
    assert lines[0] == "📋 Laporan terbuka (23), yang terlama dulu:"
    assert len(lines) == 1 + 20 + 1
    assert lines[1].startswith("• KTN-AAAAAA — Lainnya — Sumber Jaya — 27 jam")
    assert lines[-1] == "… dan 3 lainnya."


async def test_english_staff_get_english_lists(cast: Cast) -> None:
    await _file_at(cast.reporter, 90)
    await cast.officer.send("/language en")
    out = await cast.officer.send("/reports")
    assert texts(out).startswith("📋 Open reports (1), oldest first:")
    assert "— 1 h — waiting for an officer" in texts(out)


async def test_help_adds_the_staff_commands_for_staff_only(cast: Cast) -> None:
    staff_help = "Untuk petugas dan koordinator:"
    assert staff_help in texts(await cast.officer.send("/bantuan"))
    assert staff_help in texts(await cast.coordinator.send("bantuan"))
    assert staff_help not in texts(await cast.resident.send("/bantuan"))


def test_group_menu_words_are_commands_with_descriptions() -> None:
    from handlers.commands import GROUP_MENU, MENU
    from handlers.i18n import Catalog

    catalog = Catalog.load()
    for word, english in (*GROUP_MENU, *MENU):
        for typed in (word, english):
            parsed = parse_command(f"/{typed}")
            assert parsed is not None and parsed.command is not Command.UNKNOWN, typed
        for lang in ("id", "en"):
            assert catalog.get(lang, f"commands.{word}"), (lang, word)


# --- a staff member's area comes only from an invite ----------------------------------------


async def test_an_officer_cannot_move_to_another_village_with_a_start_link(cast: Cast) -> None:
    """The resident's deep link must not make Wiyono's officer an officer of Sumber Jaya."""
    filed = await cast.reporter.file_report()
    ticket = filed.recorded.filed["ticket"]
    out = await cast.other_officer.send(f"/start {SUMBER_JAYA}")
    assert "Wilayah tugas hanya berubah dengan kode undangan baru" in texts(out)
    out = await cast.other_officer.send(f"/selesai {ticket} beres")
    assert "hanya petugas atau koordinator wilayah laporan ini" in texts(out)
    out = await cast.other_officer.in_group(chat_id=-777, title="Grup Saya").send("/hubungkan")
    wiyono = await get_by_code_in(cast, WIYONO)
    assert [(g.chat_id, g.area_id) for g in await all_rows(cast.reporter.sessions, GroupChat)] == [
        (-777, wiyono)
    ]


async def test_an_officer_cannot_choose_another_village_with_wilayah(cast: Cast) -> None:
    out = await cast.other_officer.send("/wilayah")
    assert "Wilayah tugas hanya berubah" in texts(out)
    await cast.other_officer.send("Sumber Jaya")  # not a village search any more
    wiyono = await get_by_code_in(cast, WIYONO)
    async with cast.other_officer.sessions() as s:
        me = await s.scalar(select(Contact).where(Contact.external_id == 4002))
        assert me is not None and me.area_id == wiyono


async def test_an_erased_officer_is_no_longer_staff(cast: Cast) -> None:
    await cast.officer.send("/hapusdata")
    out = await cast.officer.send(button="erase:yes")
    assert out.recorded.erased is True
    async with cast.officer.sessions() as s:
        assert await s.scalar(select(Contact).where(Contact.external_id == 4001)) is None
    out = await cast.officer.send("/laporan")  # back as a newcomer: no rights
    assert "hanya untuk petugas dan koordinator" in texts(out)


async def get_by_code_in(cast: Cast, code: str) -> int:
    """The id of the area with this code."""
    async with cast.reporter.sessions() as s:
        area = await get_by_code(s, code)
        assert area is not None
        return area.id


async def test_help_in_a_group_lists_the_buttons_and_the_typed_commands(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await staff_cast(sessions)
    out = await cast.officer.in_group().send("/bantuan")
    text = texts(out)
    for line in (
        "• Tangani — Anda yang menangani laporan itu",
        "• Selesai — laporan sudah beres",
        "• Tolak — laporan tidak bisa ditindaklanjuti",
        "/tangani KTN-XXXXXX",
        "/selesai KTN-XXXXXX catatan singkat",
        "/tolak KTN-XXXXXX alasan singkat",
        "/laporan",
        "/hubungkan",
    ):
        assert line in text
