"""The WhatsApp webhooks in process (httpx ASGI transport), with the Twilio fake serving media and
REST on 127.0.0.1 and the real core behind them."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bot.channels.whatsapp import channel as channel_module
from bot.channels.whatsapp.channel import REPLIES, WhatsAppChannel, WhatsAppConfig
from bot.inbound import make_on_inbound
from bot.media.intake import Limits
from bot.media.library import MediaLibrary
from bot.metrics import Metrics
from bot.sandbox.twilio_fake import DEFAULT_SENDER, TwilioFake
from handlers import core
from handlers.context import Context
from handlers.types import Inbound, MediaKind, MediaProblem, Outcome
from storage.models import Contact, Outbox, ProcessedInbound
from tests.support.chats import core_config
from tests.support.media import local_library, stored_files

PUBLIC = "https://ktn.example.id"
USER = "+6281234567890"
PHOTO = b"\xff\xd8\xff\xe0 jpeg bytes"


@dataclass
class Hook:
    channel: WhatsAppChannel
    fake: TwilioFake
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    media_dir: Path
    library: MediaLibrary
    woken: list[int] = field(default_factory=list)
    held: dict[str, bytes] = field(default_factory=dict)  # the stored bytes the core was handed

    def on_disk(self) -> list[Path]:
        return stored_files(self.media_dir)

    async def post(
        self, form: dict[str, str], path: str = "/whatsapp/inbound", signed: str | None = None
    ) -> httpx.Response:
        """POST as Twilio does: signed for the public URL of ``path`` (or ``signed``)."""
        signature = self.fake.sign(signed or PUBLIC + path, form)
        return await self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})

    async def rows(self, model: Any) -> list[Any]:
        async with self.sessions() as s:
            return list((await s.scalars(select(model))).all())


@dataclass
class Woken:
    """The dispatcher, as far as the seam is concerned: told that rows were committed."""

    times: list[int]

    def notify(self) -> None:
        self.times.append(1)


@pytest.fixture
async def hook(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Hook]:
    fake = TwilioFake(auto_deliver=False)
    async with fake.serve():
        config = WhatsAppConfig(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number=DEFAULT_SENDER.removeprefix("whatsapp:"),
            public_url=PUBLIC + "/",
            api_base_url=fake.base_url,
            buttons=True,
            content_base_url=fake.base_url,
            delete_media_at_twilio=True,
            request_timeout=2.0,
            messages_per_second=10.0,
            templates={},
        )
        woken: list[int] = []
        core = core_config()
        metrics = Metrics()
        library = local_library(tmp_path / "media", sessions)
        await library.start()
        channel = WhatsAppChannel(
            config,
            sessions,
            core,
            on_inbound=make_on_inbound(
                sessions, core, Woken(woken), metrics=metrics, queued=REPLIES, media=library
            ),
            metrics=metrics,
            media=library,
        )
        await channel.start()
        app = Starlette(routes=channel.routes())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.5:8080"
        ) as client:
            try:
                yield Hook(channel, fake, client, sessions, tmp_path / "media", library, woken)
            finally:
                await channel.close()
                await library.close()


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, hook: Hook) -> list[Inbound]:
    """Every Inbound the core is handed (and, in ``hook.held``, the stored files' bytes as
    they were while the core handled it)."""
    got: list[Inbound] = []
    real = core.handle

    async def spy(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
        got.append(msg)
        for item in msg.media:
            if item.stored:
                hook.held[item.ref] = await hook.library.read(item.ref)
        return await real(session, msg, ctx)

    monkeypatch.setattr(core, "handle", spy)
    return got


async def test_the_answer_is_an_empty_twiml_and_the_reply_an_outbox_row(hook: Hook) -> None:
    response = await hook.post(hook.fake.inbound_text(USER, "Halo", profile_name="Siti"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    [row] = await hook.rows(Outbox)
    [contact] = await hook.rows(Contact)
    assert (row.channel, row.chat_id, row.kind, row.contact_id) == (
        "whatsapp",
        6281234567890,
        "reply",
        contact.id,
    )
    assert row.payload["lang"] == "id" and "Apakah Anda setuju?" in row.payload["reply"]["text"]
    assert row.payload["reply"]["options"][0] == ["Setuju", "consent:yes"]
    assert hook.woken == [1]
    assert hook.fake.messages == []  # sending is the dispatcher's job


async def test_a_photo_is_stored_handed_over_as_a_file_and_deleted_at_twilio(
    hook: Hook, seen: list[Inbound]
) -> None:
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg", caption="pohon tumbang")
    assert (await hook.post(form)).status_code == 200
    [msg] = seen
    [media] = msg.media
    ref = "sha256:" + hashlib.sha256(PHOTO).hexdigest()
    assert (media.kind, media.ref, media.content_type, media.size) == (
        MediaKind.PHOTO,
        ref,
        "image/jpeg",
        len(PHOTO),
    )
    assert hook.held == {ref: PHOTO} and msg.text == "pohon tumbang"
    await hook.channel.close()  # waits for the background deletion
    assert hook.fake.media == {} and hook.fake.counters["media_fetched"] == 1
    # The sender has not consented yet: the core kept nothing, so our copy is gone too.
    assert hook.on_disk() == [] and await hook.library.stat(ref) is None


async def test_media_that_cannot_be_fetched_are_refused_politely_and_left_at_twilio(
    hook: Hook, seen: list[Inbound]
) -> None:
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    hook.fake.media.clear()  # Twilio answers 404
    assert (await hook.post(form)).status_code == 200
    [media] = seen[0].media
    assert (media.ref, media.problem) == (form["MediaUrl0"], MediaProblem.UNAVAILABLE)
    [row] = await hook.rows(Outbox)
    assert row.payload["reply"]["text"].startswith("Maaf, file Anda gagal kami terima")
    await hook.channel.close()
    assert hook.fake.deleted_media == [] and hook.on_disk() == []


async def test_our_credentials_go_to_twilio_only(hook: Hook, seen: list[Inbound]) -> None:
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    form["MediaUrl0"] = hook.fake.base_url + ".evil.example/photo.jpg"
    assert (await hook.post(form)).status_code == 200
    assert seen[0].media[0].problem is MediaProblem.UNAVAILABLE
    assert hook.fake.counters["media_fetched"] == 0


async def test_a_file_over_the_limit_is_refused_politely_and_nothing_is_stored(
    hook: Hook, seen: list[Inbound]
) -> None:
    """WhatsApp declares no size: the download is cut as soon as it passes the limit."""
    hook.channel.limits = Limits({MediaKind.PHOTO: 1024, MediaKind.DOCUMENT: 16 * 1024 * 1024})
    big = b"\xff\xd8" + bytes(5000)
    form = hook.fake.inbound_media(USER, big, "image/jpeg")
    assert (await hook.post(form)).status_code == 200
    [media] = seen[0].media
    assert (media.problem, media.limit) == (MediaProblem.TOO_LARGE, 1024)
    [row] = await hook.rows(Outbox)
    text = row.payload["reply"]["text"]
    assert "terlalu besar (paling besar 1 KB)" in text and "tidak kami simpan" in text
    await hook.channel.close()
    assert hook.on_disk() == [] and hook.held == {}
    assert len(hook.fake.media) == 1  # Twilio's copy was never ours: left alone


async def test_a_kind_the_deployment_does_not_take_is_refused_politely(
    hook: Hook, seen: list[Inbound]
) -> None:
    hook.channel.limits = Limits({MediaKind.PHOTO: 1024})
    form = hook.fake.inbound_media(USER, b"%PDF-1.4 laporan", "application/pdf")
    assert (await hook.post(form)).status_code == 200
    assert seen[0].media[0].problem is MediaProblem.NOT_ACCEPTED
    [row] = await hook.rows(Outbox)
    assert row.payload["reply"]["text"].startswith("Maaf, jenis file ini tidak bisa kami terima")
    assert hook.fake.counters["media_fetched"] == 0 and hook.on_disk() == []


async def test_a_location_with_an_empty_body_reaches_the_core(
    hook: Hook, seen: list[Inbound]
) -> None:
    form = hook.fake.inbound_location(USER, -6.2088, 106.8456, label="Posko")
    assert (await hook.post(form)).status_code == 200
    assert seen[0].text is None and seen[0].location is not None
    assert (seen[0].location.latitude, seen[0].location.label) == (-6.2088, "Posko")


async def test_the_signature_covers_the_public_url_and_its_query(hook: Hook) -> None:
    form = hook.fake.inbound_text(USER, "Halo")
    path = "/whatsapp/inbound?source=ktn"
    wrong = await hook.post(form, path, signed=PUBLIC + "/whatsapp/inbound")
    assert wrong.status_code == 403
    local = await hook.post(form, path, signed="http://10.0.0.5:8080" + path)
    assert local.status_code == 403  # the URL behind the proxy is not what Twilio signed
    assert await hook.rows(ProcessedInbound) == []
    assert (await hook.post(form, path)).status_code == 200


async def test_a_stale_button_gets_its_notice_as_text(hook: Hook) -> None:
    await hook.post(hook.fake.inbound_button(USER, "cat:keamanan", "Keamanan"))
    [row] = await hook.rows(Outbox)
    catalog = core_config().catalog
    assert row.payload["reply"]["text"] == catalog.text("id", "common.stale_button")


async def test_berhenti_opts_out_of_broadcasts(hook: Hook) -> None:
    await hook.post(hook.fake.inbound_text(USER, "BERHENTI"))
    [contact] = await hook.rows(Contact)
    assert contact.opted_out_at is not None
    [row] = await hook.rows(Outbox)
    assert row.payload["reply"]["text"] == core_config().catalog.text("id", "stop.done")


async def test_a_failing_core_records_nothing_keeps_the_media_and_says_sorry(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
        raise RuntimeError("boom")

    monkeypatch.setattr(core, "handle", broken)
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    answer = await hook.post(form)
    # Twilio does not retry: the apology travels in the TwiML answer, so nobody waits in silence
    assert answer.status_code == 200
    assert "<Message>Maaf, ada gangguan" in answer.text and "kirim lagi" in answer.text
    await hook.channel.close()
    assert len(hook.fake.media) == 1 and hook.fake.deleted_media == []
    assert await hook.rows(ProcessedInbound) == [] and await hook.rows(Outbox) == []
    assert hook.on_disk() == []  # our copy went with the failed message; Twilio's stays


async def test_status_callbacks_need_a_signature_and_fields(hook: Hook) -> None:
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    ok = await hook.post(params, "/whatsapp/status")
    assert ok.status_code == 204
    bare = await hook.client.post("/whatsapp/status", data=params)
    assert bare.status_code == 403
    assert (await hook.post({"MessageSid": "SM1"}, "/whatsapp/status")).status_code == 400


async def test_media_stay_at_twilio_when_so_configured(hook: Hook, seen: list[Inbound]) -> None:
    hook.channel.config = replace(hook.channel.config, delete_media_at_twilio=False)
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    assert (await hook.post(form)).status_code == 200
    await hook.channel.close()
    assert seen[0].media[0].stored and hook.held == {seen[0].media[0].ref: PHOTO}
    assert len(hook.fake.media) == 1 and hook.fake.deleted_media == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"not multipart at all"),
        ("multipart/form-data", b"--xyz\r\n"),
        ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(1500))),
    ],
)
async def test_a_body_that_is_no_twilio_form_cannot_be_verified_so_is_a_403_recording_nothing(
    hook: Hook, content_type: str, body: bytes
) -> None:
    """The signature covers the body: one that is not a form of at most 200 fields cannot be
    checked, so it is refused as unverified before anything is parsed (not 400: that would
    tell a forger the signature was never looked at)."""
    headers = {"X-Twilio-Signature": "c2lnbmVk", "Content-Type": content_type}
    for path in ("/whatsapp/inbound", "/whatsapp/status"):
        response = await hook.client.post(path, content=body, headers=headers)
        assert response.status_code == 403, path
    assert await hook.rows(ProcessedInbound) == [] and await hook.rows(Outbox) == []


@pytest.mark.parametrize(
    "change",
    [
        {"WaId": "62812abc"},
        {"WaId": "1234"},
        {"From": "+6281234567890"},
        {"From": "sms:+6281234567890"},
        {"MessageSid": "", "SmsMessageSid": ""},
    ],
)
async def test_a_signed_but_malformed_form_is_a_400_and_records_nothing(
    hook: Hook, change: dict[str, str]
) -> None:
    form = {**hook.fake.inbound_text(USER, "LAPOR"), **change}
    assert (await hook.post(form)).status_code == 400
    assert await hook.rows(Contact) == [] and await hook.rows(ProcessedInbound) == []
    assert await hook.rows(Outbox) == [] and hook.woken == []


async def test_odd_fields_are_tolerated(hook: Hook, seen: list[Inbound]) -> None:
    form = {
        **hook.fake.inbound_text(USER, "Halo"),
        "NumMedia": "lots",
        "Latitude": "north",
        "Longitude": "",
        "SomeNewTwilioField": "x",
    }
    assert (await hook.post(form)).status_code == 200
    assert (seen[0].text, seen[0].media, seen[0].location) == ("Halo", (), None)


async def test_several_media_are_all_stored_in_order(hook: Hook, seen: list[Inbound]) -> None:
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    form["NumMedia"] = "3"
    form["MediaUrl1"] = hook.fake.add_media(b"OggS voice", "audio/ogg", form["MessageSid"])
    form["MediaContentType1"] = "audio/ogg"
    form["MediaUrl2"] = hook.fake.add_media(b"%PDF-1.4", "application/pdf", form["MessageSid"])
    form["MediaContentType2"] = "application/pdf"
    assert (await hook.post(form)).status_code == 200
    kinds = [MediaKind.PHOTO, MediaKind.VOICE, MediaKind.DOCUMENT]
    assert [m.kind for m in seen[0].media] == kinds
    assert [hook.held[m.ref] for m in seen[0].media] == [PHOTO, b"OggS voice", b"%PDF-1.4"]
    await hook.channel.close()
    assert hook.fake.media == {} and len(hook.fake.deleted_media) == 3


async def test_a_stalled_download_is_refused_and_the_message_is_answered(
    hook: Hook,
    seen: list[Inbound],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Twilio waits 15 s for the answer: a medium that will not arrive in time is left at Twilio,
    and the sender is asked to send it again.

    The budget (here 0.2 s) is for the whole download, shorter than one request's timeout."""
    monkeypatch.setattr(channel_module, "MEDIA_BUDGET_SECONDS", 0.2)
    form = hook.fake.inbound_media(USER, PHOTO, "image/jpeg")
    form["NumMedia"] = "2"
    form["MediaUrl1"] = hook.fake.add_media(b"OggS voice", "audio/ogg", form["MessageSid"])
    form["MediaContentType1"] = "audio/ogg"
    hook.fake.stalled_media.add(form["MediaUrl0"].rsplit("/", 1)[1])
    assert (await hook.post(form)).status_code == 200
    [photo, voice] = seen[0].media
    assert (photo.ref, photo.problem) == (form["MediaUrl0"], MediaProblem.UNAVAILABLE)
    assert "not received within 0.2 s" in caplog.text
    assert hook.held == {voice.ref: b"OggS voice"}
    [row] = await hook.rows(Outbox)
    assert row.payload["reply"]["text"].startswith("Maaf, file Anda gagal kami terima")
    await hook.channel.close()
    assert list(hook.fake.media) == [form["MediaUrl0"].rsplit("/", 1)[1]]  # not deleted
