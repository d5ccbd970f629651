"""The resident flows driven through the entry point with neutral messages."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from handlers.types import Channel, ChatKind, Location, Media, MediaKind
from storage import conversations
from storage.areas import get_by_code
from storage.models import (
    Contact,
    GroupChat,
    Outbox,
    ProcessedInbound,
    Report,
    ReportEvent,
    ReportFollower,
    ReportMedia,
)
from tests.support.chats import SUMBER_JAYA, WIYONO, FakeChat, load_areas, photo, texts

TICKET = re.compile(r"^KTN-[A-HJ-NP-Z2-9]{6}$")
PIN = Location(-3.7956, 102.2592)
ALERT_GROUP = -1001234567890


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession]) -> FakeChat:
    await load_areas(sessions)
    return FakeChat(sessions)


async def link_group(
    sessions: async_sessionmaker[AsyncSession], code: str = SUMBER_JAYA, chat_id: int = ALERT_GROUP
) -> None:
    async with sessions() as session:
        area = await get_by_code(session, code)
        assert area is not None
        session.add(GroupChat(channel="telegram", chat_id=chat_id, area_id=area.id, title="Polsek"))
        await session.commit()


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model))).all())


async def state_of(chat: FakeChat) -> str:
    async with chat.sessions() as session:
        conv = await conversations.get(session, chat.channel, chat.user_id, chat.user_id)
        assert conv is not None
        return conv.state


async def test_full_report_flow_on_telegram(chat: FakeChat) -> None:
    await link_group(chat.sessions)
    out = await chat.send("/start 17.71.08.1004")
    assert "Halo!" in texts(out) and "27 Tahun 2022" in texts(out)
    out = await chat.press("Setuju")
    assert "Wilayah Anda: Sumber Jaya (Kampung Melayu, Kota Bengkulu)" in texts(out)

    out = await chat.send("/lapor")
    assert [o.label for o in out.replies[-1].options] == [
        "Keamanan",
        "Kesehatan",
        "Sosial-Ekonomi",
        "Ketahanan Pangan",
        "Bencana",
        "Lainnya",
    ]
    await chat.press("Keamanan")
    out = await chat.send("Motor tetangga hilang dari depan rumah tadi malam")
    assert out.replies[-1].ask_location
    await chat.send(location=PIN)
    await chat.send(media=[photo("file-abc")])
    out = await chat.press("Tidak")
    summary = out.replies[-1]
    assert "Jenis: Keamanan" in summary.text
    assert "Motor tetangga hilang" in summary.text
    assert "Lokasi: titik lokasi di peta: https://maps.google.com/?q=-3.79560,102.25920" in (
        summary.text
    ), "a map link, not bare numbers"
    assert "Foto/file: 1" in summary.text
    assert "Nama: terlihat oleh petugas" in summary.text
    assert [o.data for o in summary.options] == ["sum:send", "sum:edit", "sum:cancel"]

    out = await chat.press("Kirim")
    ticket = out.recorded.filed["ticket"]
    assert TICKET.match(ticket)
    assert ticket in texts(out) and "/status" in texts(out)
    assert out.recorded.state == "idle"

    [report] = await rows(chat.sessions, Report)
    assert (report.ticket, report.category, report.status) == (ticket, "keamanan", "new")
    assert not report.urgent and not report.anonymous
    assert (report.latitude, report.longitude) == (PIN.latitude, PIN.longitude)
    assert report.escalate_at == chat.now + timedelta(minutes=60)
    assert out.recorded.filed["report_id"] == report.id
    [contact] = await rows(chat.sessions, Contact)
    assert report.reporter_id == contact.id and contact.display_name == "Budi Santoso"
    [media] = await rows(chat.sessions, ReportMedia)
    assert (media.kind, media.file_ref, media.channel) == ("photo", "file-abc", "telegram")
    [event] = await rows(chat.sessions, ReportEvent)
    assert (event.kind, event.to_status) == ("created", "new")

    [alert] = await rows(chat.sessions, Outbox)
    assert out.outbox_ids == [alert.id]
    assert (alert.kind, alert.chat_id, alert.channel, alert.report_id) == (
        "alert",
        ALERT_GROUP,
        "telegram",
        report.id,
    )
    reply = alert.payload["reply"]
    assert ticket in reply["text"] and "Budi Santoso" in reply["text"]
    assert "Motor tetangga hilang" in reply["text"]
    assert reply["options"] == [
        ["Tangani", f"claim:{report.id}"],
        ["Selesai", f"resolve:{report.id}"],
        ["Tolak", f"reject:{report.id}"],
        ["Duplikat", f"merge:{report.id}"],
        ["Masalah…", f"pmenu:{report.id}"],  # handlers.problems: add it to a problem
    ]
    assert reply["location"]["lat"] == PIN.latitude
    assert reply["media"]["ref"] == "file-abc"

    out = await chat.send("/status")
    assert f"{ticket} — Keamanan — menunggu petugas" in texts(out)
    out = await chat.send(f"/status {ticket.lower()}")
    assert "Status: menunggu petugas" in texts(out)


async def test_whatsapp_style_words_numbers_and_no_slash(chat: FakeChat) -> None:
    wa = FakeChat(
        chat.sessions,
        channel=Channel.WHATSAPP,
        user_id=6281234567890,
        phone="+6281234567890",
        name="Ibu Rini",
        bot_username=None,
    )
    assert "Apakah Anda setuju?" in texts(await wa.send("Halo"))
    assert "kelurahan/desa" in texts(await wa.send("1"))
    out = await wa.send("wiyono")
    assert [o.label for o in out.replies[-1].options] == ["Wiyono (Gedong Tataan, Pesawaran)"]
    assert "Wiyono" in texts(await wa.send("1"))
    assert "Kejadiannya tentang apa?" in texts(await wa.send("LAPOR"))
    assert "Ceritakan" in texts(await wa.send("sosial ekonomi"))
    await wa.send("Harga beras naik, warga kesulitan")
    await wa.send("Dusun 2 dekat balai desa")
    assert "Kirim" not in texts(await wa.send("lewati"))
    out = await wa.send("TIDAK")
    assert "Sudah benar?" in texts(out)
    out = await wa.send("ya")
    ticket = out.recorded.filed["ticket"]
    out = await wa.send(f"status {ticket.lower()}")
    assert "Sosial-Ekonomi" in texts(out) and "menunggu petugas" in texts(out)
    async with chat.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.channel == "whatsapp"))
        assert contact is not None
        assert (contact.phone, contact.display_name) == ("+6281234567890", "Ibu Rini")


async def test_a_sentence_starting_with_a_command_word_is_text(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("lapor")
    await chat.send("3")
    out = await chat.send("Lapor pak")
    assert out.recorded.state == State.LOCATION.value
    await chat.send("status rumah kosong di RT 5")
    out = await chat.press("photo:skip")
    await chat.press("anon:no")
    out = await chat.send("/batal")
    assert "Laporan dibatalkan" in texts(out)


async def test_voice_note_alone_tells_the_story(chat: FakeChat) -> None:
    await link_group(chat.sessions)
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("kesehatan")
    voice = Media(MediaKind.VOICE, "voice-1", "audio/ogg")
    out = await chat.send(media=[voice])
    assert out.recorded.state == State.LOCATION.value
    await chat.send("Gang Mawar")
    await chat.press("photo:skip")
    out = await chat.press("anon:no")
    assert "Kejadian: (pesan suara)" in texts(out)
    await chat.press("sum:send")
    [alert] = await rows(chat.sessions, Outbox)
    assert "(pesan suara terlampir)" in alert.payload["reply"]["text"]
    assert alert.payload["media"][0]["kind"] == "voice"


async def test_photo_without_caption_asks_for_words_and_keeps_the_photo(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    out = await chat.send(media=[photo("p1")])
    assert out.recorded.state == State.DESCRIPTION.value
    assert "Fotonya sudah disimpan" in texts(out)
    out = await chat.send(media=[photo("p2")], text="Pagar sekolah dirusak")
    assert out.recorded.state == State.LOCATION.value
    out = await chat.send("SD Negeri 3")
    assert out.recorded.state == State.ANONYMOUS.value, "photos came with the story: not asked"
    assert "foto" not in out.replies[-1].text.lower()
    out = await chat.press("anon:no")
    assert "Foto/file: 2" in texts(out)
    assert "Pagar sekolah dirusak" in texts(out)


async def test_darurat_gives_numbers_first_then_a_short_urgent_flow(chat: FakeChat) -> None:
    await link_group(chat.sessions)
    await chat.onboard()
    out = await chat.send("/darurat")
    numbers = out.replies[0].text
    for expected in ("110", "112", "113", "119", "Pemadam kebakaran", "Ambulans"):
        assert expected in numbers
    assert "Polsek (Kampung Melayu): (0736) 000000" in numbers
    assert "Laporan mendesak" in out.replies[-1].text
    await chat.press("Lainnya")
    await chat.send("Rumah terbakar di ujung gang")
    out = await chat.send(location=PIN)
    assert out.recorded.state == State.ANONYMOUS.value, "no photo question; anonymity asked"
    assert [o.data for o in out.replies[-1].options] == ["anon:yes", "anon:no"]
    out = await chat.press("Ya")
    assert out.recorded.state == State.SUMMARY.value
    assert "Mendesak" in texts(out)
    out = await chat.press("Kirim")
    assert "110 atau 112" in texts(out)
    [report] = await rows(chat.sessions, Report)
    assert report.urgent
    assert report.escalate_at == chat.now + timedelta(minutes=10)
    [alert] = await rows(chat.sessions, Outbox)
    assert alert.payload["reply"]["text"].startswith("🚨 LAPORAN MENDESAK")
    assert alert.payload["urgent"] is True
    assert report.anonymous  # the urgent alert no longer shows the name
    assert "Pelapor: anonim" in alert.payload["reply"]["text"]
    assert chat.name not in json.dumps(alert.payload)


async def test_urgent_category_shows_numbers_and_shortens_the_flow(chat: FakeChat) -> None:
    await chat.onboard(WIYONO)
    await chat.send("/lapor")
    out = await chat.press("Bencana")
    assert "Polsek (Gedong Tataan): (0721) 000000" in out.replies[0].text
    assert out.recorded.state == State.DESCRIPTION.value
    await chat.send("Banjir setinggi lutut")
    out = await chat.send("RT 01")
    assert out.recorded.state == State.ANONYMOUS.value, "anonymity is asked, nothing assumed"
    out = await chat.press("Tidak")
    assert out.recorded.state == State.SUMMARY.value
    out = await chat.press("Kirim")
    [report] = await rows(chat.sessions, Report)
    assert report.urgent and report.category == "bencana" and not report.anonymous


async def test_darurat_from_a_new_contact_numbers_then_consent_then_urgent_flow(
    chat: FakeChat,
) -> None:
    out = await chat.send("/darurat")
    assert "110" in out.replies[0].text and "Polsek" not in out.replies[0].text
    assert "Apakah Anda setuju?" in out.replies[-1].text
    await chat.press("Setuju")
    await chat.send("sumber")
    out = await chat.send("1")
    assert "Polsek (Kampung Melayu): (0736) 000000" in texts(out), "now that the area is known"
    assert "Laporan mendesak" in out.replies[-1].text
    assert out.recorded.state == State.CATEGORY.value


async def test_lapor_before_consent_completes_onboarding_then_reports(chat: FakeChat) -> None:
    out = await chat.send("/lapor")
    assert out.recorded.state == State.CONSENT.value
    out = await chat.press("Setuju")
    assert out.recorded.state == State.AREA.value
    await chat.send("Wiyono")
    out = await chat.send("1")
    assert out.recorded.state == State.CATEGORY.value
    assert "Kejadiannya tentang apa?" in out.replies[-1].text


@pytest.mark.parametrize("payload", ["17_71_08_1004", "17.71.08.1004", "17-71-08-1004"])
async def test_start_deep_link_payload_sets_the_village(chat: FakeChat, payload: str) -> None:
    """t.me/<bot>?start=17_71_08_1004 (Telegram allows no dots in the payload) works."""
    from handlers.onboarding import start_payload

    assert start_payload(SUMBER_JAYA) == "17_71_08_1004"
    await chat.send(f"/start {payload}")
    out = await chat.press("Setuju")
    assert "Wilayah Anda: Sumber Jaya" in texts(out)
    assert out.recorded.state == State.IDLE.value


@pytest.mark.parametrize("code", ["99.99.99.9999", "17.71.08"])
async def test_start_with_an_unknown_or_non_village_code_asks_for_the_name(
    chat: FakeChat, code: str
) -> None:
    await chat.send(f"/start {code}")
    out = await chat.press("Setuju")
    assert f"Kode wilayah {code} tidak kami kenal" in texts(out)
    assert out.recorded.state == State.AREA.value


async def test_area_search_explains_no_match_and_too_short(chat: FakeChat) -> None:
    await chat.send("/start")
    await chat.press("Setuju")
    out = await chat.send("Kampung Atlantis")
    assert 'Kelurahan/desa "Kampung Atlantis" belum kami temukan' in texts(out)
    out = await chat.send("su")
    assert "minimal 3 huruf" in texts(out)
    out = await chat.send("JAYA")
    assert [o.data.split(":")[0] for o in out.replies[-1].options] == ["area"]


async def test_declining_consent_keeps_only_the_chat_id(chat: FakeChat) -> None:
    chat.phone = "+628111"
    await chat.send("/start")
    out = await chat.press("Tidak")
    assert "selain ID chat" in texts(out)
    [contact] = await rows(chat.sessions, Contact)
    assert contact.display_name is None and contact.phone is None and contact.consent_at is None
    out = await chat.send("/lapor")
    assert "Apakah Anda setuju?" in texts(out)


async def test_ubah_changes_one_field_and_returns_to_the_summary(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    await chat.send("Lampu jalan mati, rawan")
    await chat.send("Jalan Melati")
    await chat.press("photo:skip")
    await chat.press("anon:no")
    out = await chat.press("Ubah")
    assert [o.data for o in out.replies[-1].options][-1] == "edit:back"
    out = await chat.press("Lokasi")
    assert out.recorded.state == State.LOCATION.value
    out = await chat.send("Jalan Kenanga ujung")
    assert out.recorded.state == State.SUMMARY.value
    assert "Lokasi: Jalan Kenanga ujung" in texts(out)
    assert "Lampu jalan mati" in texts(out) and "Jenis: Keamanan" in texts(out)
    await chat.press("Ubah")
    await chat.press("Jenis")
    out = await chat.press("Sosial-Ekonomi")
    assert out.recorded.state == State.SUMMARY.value and "Sosial-Ekonomi" in texts(out)
    await chat.press("Ubah")
    await chat.press("Anonim")
    out = await chat.press("Ya")
    assert "disembunyikan (anonim)" in texts(out)
    await chat.press("Ubah")
    out = await chat.press("Kembali")
    assert out.recorded.state == State.SUMMARY.value
    await chat.press("Kirim")
    [report] = await rows(chat.sessions, Report)
    assert (report.address_text, report.category, report.anonymous) == (
        "Jalan Kenanga ujung",
        "sosial_ekonomi",
        True,
    )


async def test_duplicate_hint_follow_it_and_see_it_in_status(chat: FakeChat) -> None:
    neighbour = FakeChat(chat.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    out = await neighbour.file_report("keamanan")
    ticket = out.recorded.filed["ticket"]
    await chat.onboard()
    await chat.send("/lapor")
    out = await chat.press("Keamanan")
    assert out.recorded.state == State.DUPLICATE.value
    said = texts(out)
    assert "Sudah ada laporan Keamanan" in said and "12/05/2025 10:00 WIB" in said
    assert "menunggu petugas" in said and "Siti" not in said
    out = await chat.press("Ikut pantau laporan itu")
    assert ticket in texts(out) and out.recorded.state == "idle"
    [follower] = await rows(chat.sessions, ReportFollower)
    assert follower.report_id == out.recorded.followed
    out = await chat.send("/status")
    assert ticket in texts(out) and "(dipantau)" in texts(out)
    # Already following: no hint again; another category: no hint.
    await chat.send("/lapor")
    assert (await chat.press("Keamanan")).recorded.state == State.DESCRIPTION.value


async def test_duplicate_hint_window_and_new_report(chat: FakeChat) -> None:
    neighbour = FakeChat(chat.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    await neighbour.file_report("kesehatan")
    await chat.onboard()
    await chat.send("/lapor")
    await chat.press("Kesehatan")
    out = await chat.press("Buat laporan baru")
    assert out.recorded.state == State.DESCRIPTION.value
    await chat.send("/batal")
    chat.advance(hours=7)
    await chat.send("/lapor")
    out = await chat.press("Kesehatan")
    assert out.recorded.state == State.DESCRIPTION.value, "outside the 6 h window"


async def test_an_idle_draft_expires_politely(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    chat.advance(minutes=59)
    out = await chat.send("Ada pencurian")
    assert out.recorded.state == State.LOCATION.value
    chat.advance(minutes=61)
    out = await chat.send("Gang Kenari")
    assert "sudah kedaluwarsa" in out.replies[0].text
    assert out.recorded.state == State.IDLE.value
    out = await chat.send("/lapor")
    assert out.recorded.state == State.CATEGORY.value
    assert await rows(chat.sessions, Report) == []


async def test_restart_mid_flow_resumes_at_the_same_step(chat: FakeChat, db_url: str) -> None:
    from storage.db import create_engine, session_factory

    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    await chat.send("Kaca mobil dipecah")
    await chat.send("Parkiran pasar")
    engine = create_engine(db_url)
    try:
        restarted = FakeChat(session_factory(engine), now=chat.now)
        out = await restarted.send("lewati")
        assert out.recorded.state == State.ANONYMOUS.value
        await restarted.send("tidak")
        out = await restarted.send("kirim")
        assert TICKET.match(out.recorded.filed["ticket"])
    finally:
        await engine.dispose()
    [report] = await rows(chat.sessions, Report)
    assert (report.description, report.address_text) == ("Kaca mobil dipecah", "Parkiran pasar")


async def test_language_switch_and_english_for_an_english_phone(chat: FakeChat) -> None:
    await chat.onboard()
    out = await chat.send("/bahasa")
    assert "Language changed to English" in texts(out)
    out = await chat.send("/report")
    assert out.replies[-1].options[0].label == "Security"
    out = await chat.send("/language id")
    assert "Bahasa diganti" in texts(out)
    assert "Kejadiannya tentang apa?" in out.replies[-1].text, "asks the current question again"

    out = await chat.send("/bahasa jawa")
    assert "/bahasa en" in texts(out)

    english = FakeChat(chat.sessions, user_id=3003, language_code="en-GB")
    out = await english.send("/start")
    assert "Do you agree?" in texts(out)
    assert [o.label for o in out.replies[-1].options] == ["I agree", "No"]


async def test_berhenti_opts_out_but_reporting_still_works(chat: FakeChat) -> None:
    await chat.onboard()
    out = await chat.send("BERHENTI")
    assert "tidak akan menerima pengumuman" in texts(out)
    [contact] = await rows(chat.sessions, Contact)
    assert contact.opted_out_at == chat.now
    out = await chat.file_report()
    assert out.recorded.filed is not None
    out = await chat.send("/start")
    assert "menerima pengumuman lagi" in texts(out)
    [contact] = await rows(chat.sessions, Contact)
    assert contact.opted_out_at is None


async def test_berhenti_before_consent_is_undone_by_start(chat: FakeChat) -> None:
    """Someone who says BERHENTI before agreeing to anything can still come back with /start."""
    await chat.send("BERHENTI")
    [contact] = await rows(chat.sessions, Contact)
    assert contact.opted_out_at is not None
    out = await chat.send("/start")
    assert "menerima pengumuman lagi" in texts(out)
    assert "Apakah Anda setuju?" in texts(out)
    [contact] = await rows(chat.sessions, Contact)
    assert contact.opted_out_at is None


async def test_unknown_command_gets_short_help_and_the_question_again(chat: FakeChat) -> None:
    await chat.onboard()
    out = await chat.send("/cuaca")
    assert '"cuaca" tidak saya kenal' in texts(out) and "/bantuan" in texts(out)
    await chat.send("/lapor")
    out = await chat.send("/bantuan")
    assert "/hapusdata" in out.replies[0].text
    assert out.recorded.state == State.CATEGORY.value
    assert out.replies[-1].options, "the category question again"
    out = await chat.send("/lapor")
    assert "sedang mengisi laporan" in texts(out)


async def test_darurat_mid_report_marks_the_draft_urgent(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    out = await chat.send("/darurat")
    assert "110" in out.replies[0].text and "ditandai mendesak" in texts(out)
    assert out.recorded.state == State.DESCRIPTION.value
    await chat.send("Perampokan di warung")
    out = await chat.send("Warung Bu Sri")
    assert out.recorded.state == State.ANONYMOUS.value


async def test_anonymous_reporter_never_appears_in_the_group_alert(chat: FakeChat) -> None:
    await link_group(chat.sessions)
    chat.phone = "+6289999000111"
    await chat.onboard()
    await chat.file_report("keamanan", "Ada judi di pos ronda", anonymous=True)
    [alert] = await rows(chat.sessions, Outbox)
    dumped = json.dumps(alert.payload, ensure_ascii=False)
    [contact] = await rows(chat.sessions, Contact)
    for secret in ("Budi", "Santoso", str(chat.user_id), "6289999000111", f'"{contact.id}"'):
        assert secret not in dumped
    assert "Pelapor: anonim" in alert.payload["reply"]["text"]
    assert alert.contact_id is None


async def test_no_alert_group_and_no_staff_means_no_outbox_row_but_a_record(
    chat: FakeChat,
) -> None:
    await link_group(chat.sessions, code=WIYONO)
    await chat.onboard()
    out = await chat.file_report()
    assert out.outbox_ids == []
    assert await rows(chat.sessions, Outbox) == []
    assert [e.kind for e in await rows(chat.sessions, ReportEvent)] == ["created", "unrouted"]


async def test_pressing_kirim_twice_files_one_report(chat: FakeChat) -> None:
    await chat.onboard()
    out = await chat.file_report()
    assert out.recorded.filed is not None
    again = await chat.send(button="sum:send")
    assert again.notice and again.replies == [] and again.recorded.filed is None
    assert len(await rows(chat.sessions, Report)) == 1


async def test_duplicate_message_id_is_processed_once(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    first = await chat.send("Ada maling", message_id="wamid.1")
    again = await chat.send("Ada maling", message_id="wamid.1")
    assert first.recorded.state == State.LOCATION.value
    assert again.duplicate and again.replies == [] and again.notice is None
    assert await state_of(chat) == State.LOCATION.value


async def test_group_chatter_is_ignored_and_commands_for_us_answered(chat: FakeChat) -> None:
    await link_group(chat.sessions)
    group = FakeChat(chat.sessions, chat_id=ALERT_GROUP, chat_kind=ChatKind.GROUP)
    assert (await group.send("selamat pagi semua")).replies == []
    assert (await group.send("lapor")).replies == []
    assert (await group.send("/lapor@other_bot")).replies == []
    assert (await group.send("/cuaca")).replies == []
    out = await group.send("/lapor@ktn_bot")
    assert "https://t.me/ktn_bot" in texts(out)
    out = await group.send("/bantuan")
    assert "Saya bot KTN" in texts(out)
    out = await group.send("/cuaca@KTN_bot")
    assert "Saya bot KTN" in texts(out)
    out = await group.send("/darurat")
    assert "Polsek (Kampung Melayu): (0736) 000000" in texts(out)
    out = await group.send(button="claim:1")
    assert out.notice and out.replies == []
    async with chat.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0
        processed = await session.scalar(select(func.count()).select_from(ProcessedInbound))
    assert processed == 5, "ignored chatter is not even recorded"


async def test_hapusdata_mid_report_then_no_returns_to_the_same_step(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    await chat.send("Ada pencurian ayam")
    out = await chat.send("/hapusdata")
    assert out.recorded.state == State.ERASE_CONFIRM.value
    out = await chat.press("Tidak")
    assert out.recorded.state == State.LOCATION.value
    await chat.send("Kandang Pak RT")
    await chat.press("photo:skip")
    out = await chat.press("anon:no")
    assert "Ada pencurian ayam" in texts(out)


async def test_nul_characters_are_dropped_so_any_database_stores_the_report(
    chat: FakeChat,
) -> None:
    """PostgreSQL text cannot hold U+0000; a pasted one must not make "Kirim" fail forever."""
    await chat.onboard()
    out = await chat.file_report(description="Ada maling\x00 di rumah")
    assert out.recorded.filed is not None
    [report] = await rows(chat.sessions, Report)
    assert report.description == "Ada maling di rumah"


@pytest.mark.parametrize("channel", [Channel.TELEGRAM, Channel.WHATSAPP])
async def test_the_location_prompt_names_the_way_the_channel_really_has(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    await load_areas(sessions)
    chat = FakeChat(sessions, channel=channel, user_id=6281234500001, phone="+6281234500001")
    await chat.onboard()
    await chat.send("/lapor")
    await chat.press("cat:keamanan")
    asked = (await chat.send("Lampu jalan mati sejak kemarin")).replies[-1]
    assert asked.ask_location
    if channel is Channel.TELEGRAM:  # a keyboard button that sends the location
        assert asked.text.startswith("Di mana tepatnya? Tekan tombol 📍 Kirim lokasi di bawah")
        assert asked.location_label == "📍 Kirim lokasi"
    else:  # no such button: the app's attachment menu
        assert asked.text.startswith("Di mana tepatnya? Kirim lokasi (📎 → Lokasi)")
        assert "tombol" not in asked.text


async def test_a_pin_with_words_shows_the_words(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_areas(sessions)
    chat = FakeChat(sessions)
    await chat.onboard()
    await chat.send("/lapor")
    await chat.press("cat:keamanan")
    await chat.send("Lampu jalan mati sejak kemarin")
    await chat.send(location=Location(-3.7956, 102.2592, address="Jl. Merpati 12"))
    await chat.press("photo:skip")
    summary = (await chat.press("anon:no")).replies[-1].text
    assert "Lokasi: Jl. Merpati 12 (titik lokasi terkirim)" in summary
    assert "-3.79" not in summary
