"""WhatsApp's pure parts: the webhook form -> Inbound mapping, rendering, splitting, templates,
status order, and the [whatsapp] settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.whatsapp.inbound import FormError, media_kind, normalise_phone, to_inbound
from bot.channels.whatsapp.render import (
    BODY_LIMIT,
    location_text,
    message_parts,
    public_media_url,
    render_text,
    split_body,
    template_variables,
    utf16_units,
)
from bot.channels.whatsapp.statuses import may_move
from bot.config import ConfigError, Settings, WhatsAppSettings, load_settings, whatsapp_problems
from bot.sandbox.twilio_fake import TwilioFake
from handlers.i18n import Catalog
from handlers.types import Channel, ChatKind, Location, Media, MediaKind, Option, Reply
from storage.types import OutboxStatus

NOW = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)
USER = "+6281234567890"
CATALOG = Catalog.load()


@pytest.fixture(scope="module")
def fake() -> TwilioFake:
    """Only the fake's form builders (nothing is served)."""
    f = TwilioFake()
    f.public_base_url = "https://api.twilio.example"
    return f


def test_text_message_maps_to_a_private_inbound(fake: TwilioFake) -> None:
    form = fake.inbound_text(USER, "LAPOR", profile_name="Siti Aminah")
    msg = to_inbound(form, NOW)
    assert (msg.channel, msg.chat_kind) == (Channel.WHATSAPP, ChatKind.PRIVATE)
    assert msg.chat_id == msg.user_id == 6281234567890
    assert (msg.text, msg.display_name, msg.phone) == ("LAPOR", "Siti Aminah", USER)
    assert msg.message_id == "wa:" + form["MessageSid"]
    assert (msg.location, msg.media, msg.button, msg.received_at) == (None, (), None, NOW)


def test_shared_location_with_an_empty_body_is_kept(fake: TwilioFake) -> None:
    form = fake.inbound_location(USER, -3.7956, 102.2592, address="Jl. Melati 5", label="Posko")
    assert form["Body"] == ""
    msg = to_inbound(form, NOW)
    assert msg.text is None
    assert msg.location == Location(-3.7956, 102.2592, "Jl. Melati 5", "Posko")


def test_media_and_caption(fake: TwilioFake) -> None:
    form = fake.inbound_media(USER, b"jpeg", "image/jpeg", caption="banjir di RT 3")
    msg = to_inbound(form, NOW)
    assert msg.text == "banjir di RT 3"
    assert msg.media == (Media(MediaKind.PHOTO, form["MediaUrl0"], "image/jpeg"),)
    voice = to_inbound(fake.inbound_media(USER, b"ogg", "audio/ogg"), NOW)
    assert voice.text is None and voice.media[0].kind is MediaKind.VOICE


@pytest.mark.parametrize(
    ("content_type", "message_type", "kind"),
    [
        ("image/jpeg", "image", MediaKind.PHOTO),
        ("image/webp", "sticker", MediaKind.STICKER),
        ("audio/ogg; codecs=opus", "audio", MediaKind.VOICE),
        ("video/mp4", "video", MediaKind.VIDEO),
        ("application/pdf", "document", MediaKind.DOCUMENT),
        (None, None, MediaKind.DOCUMENT),
    ],
)
def test_media_kind(content_type: str | None, message_type: str | None, kind: MediaKind) -> None:
    assert media_kind(content_type, message_type) is kind


def test_button_payload_becomes_the_button(fake: TwilioFake) -> None:
    msg = to_inbound(fake.inbound_button(USER, "consent:yes", "Setuju"), NOW)
    assert (msg.button, msg.text) == ("consent:yes", "Setuju")
    listed = to_inbound(
        fake.inbound_button(USER, "cat:kesehatan", "Kesehatan", message_type="interactive"), NOW
    )
    assert (listed.button, listed.text) == ("cat:kesehatan", "Kesehatan")


def test_an_overlong_payload_is_not_cut_into_an_option(fake: TwilioFake) -> None:
    """Option data are at most 64 bytes: a longer payload is forged and must stay unlike any
    (cut at 64 it could become one); it is kept to what the core takes, and matches nothing."""
    data = "cat:" + "k" * 60  # 64 bytes: the longest data an option can have
    msg = to_inbound(fake.inbound_button(USER, data + "x" * 500, "Keamanan"), NOW)
    assert msg.button is not None and msg.button != data and len(msg.button) == 256


@pytest.mark.parametrize("missing", ["From", "WaId", "MessageSid"])
def test_a_form_without_sender_or_sid_is_malformed(fake: TwilioFake, missing: str) -> None:
    form = fake.inbound_text(USER, "halo")
    form.pop(missing)
    if missing == "MessageSid":
        form.pop("SmsMessageSid")
    with pytest.raises(FormError):
        to_inbound(form, NOW)


def test_bad_coordinates_are_no_location(fake: TwilioFake) -> None:
    form = fake.inbound_location(USER, -3.7, 102.2)
    form["Latitude"] = "north"
    assert to_inbound(form, NOW).location is None
    form["Latitude"] = "95"
    assert to_inbound(form, NOW).location is None


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+6281234567890", "+6281234567890"),
        ("081234567890", "+6281234567890"),
        ("0812-3456-7890", "+6281234567890"),
        ("whatsapp:+14155238886", "+14155238886"),
        ("", None),
        ("halo", None),
    ],
)
def test_phone_numbers_become_e164_in_region_id(raw: str, e164: str | None) -> None:
    assert normalise_phone(raw) == e164


def test_options_left_to_buttons_are_not_numbered() -> None:
    reply = Reply("Apakah Anda setuju?", (Option("Setuju", "y"), Option("Tidak", "n")))
    assert render_text(reply, CATALOG, "id", numbered_options=False) == "Apakah Anda setuju?"


def test_options_become_numbered_lines_with_how_to_answer() -> None:
    labels = ["Keamanan", "Kesehatan", "Sosial-Ekonomi", "Pangan", "Bencana", "Lainnya"]
    reply = Reply("Kejadiannya tentang apa?", tuple(Option(x, f"cat:{x.lower()}") for x in labels))
    text = render_text(reply, CATALOG, "id")
    assert text.startswith("Kejadiannya tentang apa?\n\n1. Keamanan\n2. Kesehatan\n")
    assert "6. Lainnya" in text and text.endswith("Balas 1-6")
    one = render_text(Reply("Pilih wilayah", (Option("Wiyono", "area:1"),)), CATALOG, "en")
    assert one.endswith("1. Wiyono\n\nReply 1")


def test_location_is_a_maps_link() -> None:
    assert location_text(Location(-3.7956, 102.2592)) == (
        "📍 -3.7956, 102.2592 (https://maps.google.com/?q=-3.7956,102.2592)"
    )
    named = location_text(Location(-3.7956, 102.0, "Jl. Melati 5", "Posko"))
    assert named.startswith("Posko — Jl. Melati 5\n📍 -3.7956, 102 (")
    rendered = render_text(Reply("Lokasi laporan", location=Location(1.5, 2.5)), CATALOG, "id")
    assert rendered == "Lokasi laporan\n\n📍 1.5, 2.5 (https://maps.google.com/?q=1.5,2.5)"


def test_only_public_media_urls_are_sent() -> None:
    twilio = ("http://127.0.0.1:9/fake", "https://api.twilio.com")
    photo = Media(MediaKind.PHOTO, "https://cdn.example.id/banjir.jpg", "image/jpeg")
    assert public_media_url(photo, twilio) == photo.ref
    for ref in ("/srv/ktn/data/media/SM1-0.jpg", "AgACAgIAAx-telegram-file-id"):
        assert public_media_url(Media(MediaKind.PHOTO, ref), twilio) is None
    own = Media(MediaKind.PHOTO, "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM")
    assert public_media_url(own, twilio) is None


def test_short_bodies_are_not_split() -> None:
    assert split_body("halo") == ["halo"]
    assert split_body("x" * BODY_LIMIT) == ["x" * BODY_LIMIT]
    assert split_body("") == []


def test_long_bodies_split_at_paragraphs_then_lines_then_words() -> None:
    para = "Paragraf satu. " * 70  # ~1050 chars
    text = f"{para.strip()}\n\n{para.strip()}\n\n{para.strip()}"
    parts = split_body(text)
    assert len(parts) == 3 and all(p == para.strip() for p in parts)
    lines = "\n".join(f"baris {i} " + "x" * 40 for i in range(80))
    parts = split_body(lines)
    assert all(utf16_units(p) <= BODY_LIMIT for p in parts) and len(parts) == 3
    assert all(p.startswith("baris ") and p.endswith("x") for p in parts)
    assert "\n".join(parts) == lines


def test_emoji_count_double_and_a_word_is_never_cut() -> None:
    text = "🚨 " * 900  # 1800 code points, 2700 UTF-16 units
    parts = split_body(text)
    assert all(utf16_units(p) <= BODY_LIMIT for p in parts)
    assert "".join(parts).count("🚨") == 900


@given(st.text(alphabet=st.sampled_from("ab \n😀é"), min_size=0, max_size=5000))
def test_split_keeps_every_word_in_order(text: str) -> None:
    parts = split_body(text)
    assert all(0 < utf16_units(p) <= BODY_LIMIT for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_the_parts_of_a_long_body_are_numbered() -> None:
    assert message_parts("x" * BODY_LIMIT) == ["x" * BODY_LIMIT]
    text = "\n\n".join(f"Paragraf {i}. " + "kata " * 200 for i in range(3))
    parts = message_parts(text)
    assert [p.rsplit("\n", 1)[1] for p in parts] == ["(1/3)", "(2/3)", "(3/3)"]
    assert all(utf16_units(p) <= BODY_LIMIT for p in parts)
    assert [p.rsplit("\n", 1)[0] for p in parts] == [p.strip() for p in text.split("\n\n")]
    many = message_parts("kata " * 3000)  # 15,000 characters: 10+ parts, two-digit marks
    assert many[-1].endswith(f"\n({len(many)}/{len(many)})") and len(many) >= 10
    assert all(utf16_units(p) <= BODY_LIMIT for p in many)


@given(st.text(alphabet=st.sampled_from("ab \n😀"), min_size=1500, max_size=20000))
def test_numbered_parts_fit_and_keep_every_word(text: str) -> None:
    parts = message_parts(text)
    assert all(utf16_units(p) <= BODY_LIMIT for p in parts)
    if len(parts) > 1:
        bare = [p.rsplit("\n", 1)[0] for p in parts]
        assert [p.rsplit("\n", 1)[1] for p in parts] == [
            f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)
        ]
    else:
        bare = parts
    assert "".join("".join(bare).split()) == "".join(text.split())


def test_template_variables_are_one_line_each() -> None:
    text = "Laporan KTN-ABC234 sedang ditangani oleh Bripka Andi.\nCatatan: -\n\nKetik STATUS"
    assert template_variables(text, {"ticket": "KTN-ABC234"}) == {
        "1": "Laporan KTN-ABC234 sedang ditangani oleh Bripka Andi.",
        "2": "Catatan: - · Ketik STATUS",
        "3": "KTN-ABC234",
    }
    assert template_variables("Ronda malam ini", {}) == {"1": "Ronda malam ini", "2": "-", "3": "-"}
    long = template_variables("judul\n" + "kata " * 500, {})
    assert len(long["2"]) <= 900 and long["2"].endswith("…")


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("sent", OutboxStatus.DELIVERED, True),
        ("sent", OutboxStatus.READ, True),
        ("delivered", OutboxStatus.READ, True),
        ("delivered", OutboxStatus.SENT, False),
        ("read", OutboxStatus.DELIVERED, False),
        ("delivered", OutboxStatus.DELIVERED, False),
        ("sent", OutboxStatus.UNDELIVERED, True),
        ("undelivered", OutboxStatus.READ, False),
        ("failed", OutboxStatus.DELIVERED, False),
        ("read", OutboxStatus.FAILED, False),
        ("needs_template", OutboxStatus.DELIVERED, False),
        ("pending", OutboxStatus.DELIVERED, False),
    ],
)
def test_status_only_moves_forward(current: str, new: OutboxStatus, moves: bool) -> None:
    assert may_move(current, new) is moves


def test_whatsapp_settings_are_checked() -> None:
    wa = WhatsAppSettings(
        from_number="whatsapp:+62 811-0000-0000",
        public_url="https://ktn.example.id/",
        templates={"status": "HX" + "ab" * 16},
    )
    assert (wa.from_number, wa.public_url) == ("+6281100000000", "https://ktn.example.id")
    assert WhatsAppSettings(from_number="0811-0000-0000").from_number == "+6281100000000"
    with pytest.raises(ValueError, match="E.164"):
        WhatsAppSettings(from_number="0811")
    with pytest.raises(ValueError, match="unknown kind 'statsu'"):
        WhatsAppSettings(templates={"statsu": "HX" + "ab" * 16})
    with pytest.raises(ValueError, match="Content Template SID"):
        WhatsAppSettings(templates={"alert": "template-1"})
    with pytest.raises(ValueError, match="http"):
        WhatsAppSettings(content_base_url="content.twilio.com")
    assert WhatsAppSettings(content_base_url="http://127.0.0.1:9/").content_base_url == (
        "http://127.0.0.1:9"
    )


def test_enabled_whatsapp_needs_its_url_number_and_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KTN_TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("KTN_TWILIO_AUTH_TOKEN", raising=False)
    assert whatsapp_problems(Settings()) == []
    problems = whatsapp_problems(Settings(whatsapp=WhatsAppSettings(enabled=True)))
    assert [p.split(":")[0] for p in problems] == [
        "[whatsapp] public_url",
        "[whatsapp] from_number",
        "KTN_TWILIO_ACCOUNT_SID",
        "KTN_TWILIO_AUTH_TOKEN",
    ]


def test_config_file_without_public_url_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTN_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("KTN_TWILIO_AUTH_TOKEN", "token")
    path = tmp_path / "config.toml"
    path.write_text('[whatsapp]\nenabled = true\nfrom_number = "+6281100000000"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "[whatsapp] public_url: required" in str(info.value) and str(path) in str(info.value)
    path.write_text(path.read_text() + 'public_url = "https://ktn.example.id"\n')
    assert load_settings(path).whatsapp.public_url == "https://ktn.example.id"
