"""The Telegram fake, driven by the real python-telegram-bot over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)
from telegram.request import HTTPXRequest

from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.web.serving import serve_asgi
from tests.support.telegram_fake import GROUP, USER, fake, png, ptb_timedelta

__all__ = ["fake", "ptb_timedelta"]  # the fake's fixtures: a served fake, PTB_TIMEDELTA on


def ptb_bot(fake: TelegramFake, token: str = DEFAULT_TOKEN, **kwargs: object) -> telegram.Bot:
    """A real PTB Bot pointed at the fake."""
    return telegram.Bot(token, base_url=fake.bot_api_url, base_file_url=fake.file_api_url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def bot(fake: TelegramFake) -> AsyncIterator[telegram.Bot]:
    """An initialized PTB Bot talking to the fake."""
    async with ptb_bot(fake) as client:
        yield client


async def test_send_message_is_recorded_with_its_inline_keyboard(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Klaim", callback_data="claim:17")]])
    sent = await bot.send_message(
        GROUP, "Laporan <b>KTN-17</b>", parse_mode="HTML", reply_markup=markup
    )

    record = fake.last_message(GROUP)
    assert record is not None
    assert record.message_id == sent.message_id
    assert record.text == sent.text == "Laporan KTN-17"
    assert record.source == "Laporan <b>KTN-17</b>"
    assert record.button_data() == ["claim:17"]
    assert sent.reply_markup == markup
    assert sent.from_user is not None and sent.from_user.username == "ktn_test_bot"
    assert fake.sent_count == 1


async def test_reply_keyboard_with_location_button_and_location_message(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    keyboard = telegram.ReplyKeyboardMarkup(
        [[KeyboardButton("Kirim lokasi", request_location=True)]]
    )
    await bot.send_message(USER, "Bagikan lokasi Anda", reply_markup=keyboard)
    await bot.send_location(USER, latitude=-3.79, longitude=102.26)

    first, second = fake.messages(USER)
    assert first.reply_markup is not None
    assert first.reply_markup["keyboard"][0][0]["request_location"] is True
    assert second.kind == "location" and second.location == (-3.79, 102.26)


async def test_text_over_4096_characters_is_rejected(fake: TelegramFake, bot: telegram.Bot) -> None:
    await bot.send_message(USER, "x" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(USER, "1 < 2 <rusak>", parse_mode="HTML")
    assert len(fake.messages(USER)) == 1


async def test_callback_data_over_64_bytes_is_rejected(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    too_long = "é" * 33  # 33 characters, 66 bytes
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Pilih", callback_data=too_long)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(USER, "Pilih kategori", reply_markup=markup)
    assert fake.messages(USER) == []


async def test_identical_edit_is_not_modified(fake: TelegramFake, bot: telegram.Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="yes")]])
    sent = await bot.send_message(USER, "Status: baru", reply_markup=markup)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Status: baru", USER, sent.message_id, reply_markup=markup)

    edited = await bot.edit_message_text("Status: diklaim", USER, sent.message_id)
    assert isinstance(edited, telegram.Message)
    record = fake.messages(USER)[0]
    assert record.text == "Status: diklaim"
    assert record.reply_markup is None  # an edit without reply_markup drops the keyboard
    assert [e.text for e in record.edits] == ["Status: baru"]
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("?", USER, 999)


async def test_injected_429_raises_retry_after(fake: TelegramFake, bot: telegram.Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "Halo")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert fake.count_429 == 1
    await bot.send_message(USER, "Halo lagi")
    assert [m.text for m in fake.messages(USER)] == ["Halo lagi"]


async def test_blocked_and_never_started_users_are_forbidden(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    fake.block(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "Halo")
    fake.add_user(77, "Budi")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(77, "Halo")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(123456, "Halo")


async def test_migrated_group_raises_chat_migrated(fake: TelegramFake, bot: telegram.Bot) -> None:
    new_id = fake.migrate_group(GROUP)
    assert str(new_id).startswith("-100")
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(GROUP, "Peringatan")
    assert caught.value.new_chat_id == new_id
    await bot.send_message(new_id, "Peringatan")
    updates = await bot.get_updates(timeout=0)
    service = [u.message for u in updates if u.message and u.message.migrate_to_chat_id]
    assert service and service[0].migrate_to_chat_id == new_id


async def test_group_flood_limit_answers_429_after_20_messages(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    delivered, limited = 0, 0
    for n in range(25):
        try:
            await bot.send_message(GROUP, f"Peringatan {n}")
            delivered += 1
        except RetryAfter:
            limited += 1
    assert (delivered, limited) == (20, 5)
    assert fake.count_429 == 5
    assert len(fake.messages(GROUP)) == 20


async def test_private_chat_allows_a_burst_of_three(fake: TelegramFake, bot: telegram.Bot) -> None:
    for text in ("satu", "dua", "tiga"):
        await bot.send_message(USER, text)
    with pytest.raises(RetryAfter):
        await bot.send_message(USER, "empat")
    assert fake.count_429 == 1


async def test_get_updates_long_poll_wakes_when_a_user_sends(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    first = await bot.get_updates(timeout=0)  # the /start from the fixture
    offset = first[-1].update_id + 1
    polls = fake.call_counts["getUpdates"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(offset=offset, timeout=30))
    await fake.wait_for(lambda: fake.call_counts["getUpdates"] > polls)
    update_id = fake.send_text(USER, USER, "lapor banjir")
    updates = await asyncio.wait_for(poll, timeout=3)
    assert [u.update_id for u in updates] == [update_id]
    assert updates[0].message is not None and updates[0].message.text == "lapor banjir"
    assert loop.time() - started < 3


async def test_commands_get_bot_command_entities(fake: TelegramFake, bot: telegram.Bot) -> None:
    fake.send_text(GROUP, USER, "/lapor@ktn_test_bot jalan rusak")
    updates = await bot.get_updates(timeout=0)
    message = updates[-1].message
    assert message is not None
    assert message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/lapor@ktn_test_bot")


async def test_photo_upload_get_file_and_download_round_trip(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    image = png(640, 480)
    sent = await bot.send_photo(USER, photo=image, caption="Foto lokasi")
    largest = sent.photo[-1]
    assert (largest.width, largest.height) == (640, 480)
    file = await bot.get_file(largest.file_id)
    assert bytes(await file.download_as_bytearray()) == image
    assert fake.messages(USER)[0].kind == "photo"
    again = await bot.send_photo(GROUP, photo=largest.file_id)
    assert again.photo[-1].file_id == largest.file_id

    fake.send_photo(USER, USER, image, caption="Jalan rusak")
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.message is not None and update.message.caption == "Jalan rusak"
    user_file = await update.message.photo[-1].get_file()
    buffer = bytearray()
    await user_file.download_as_bytearray(buffer)
    assert bytes(buffer) == image


async def test_document_upload_keeps_its_filename(fake: TelegramFake, bot: telegram.Bot) -> None:
    sent = await bot.send_document(GROUP, document=b"id,status\n1,baru\n", filename="laporan.csv")
    assert sent.document is not None and sent.document.file_name == "laporan.csv"
    record = fake.messages(GROUP)[0]
    assert (record.kind, record.filename) == ("document", "laporan.csv")
    assert fake.files[record.file_id or ""].data == b"id,status\n1,baru\n"


async def test_webhook_delivery_with_secret_and_conflict_for_polling(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, object]]] = asyncio.Queue()
    attempts = 0

    async def receiver(request: Request) -> Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return Response(status_code=500)  # the fake must retry
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        await received.put((secret, await request.json()))
        return Response()

    app = Starlette(routes=[Route("/hook", receiver, methods=["POST"])])
    async with serve_asgi(app) as hook_url:
        await bot.set_webhook(
            f"{hook_url}/hook", secret_token="rahasia-123", drop_pending_updates=True
        )
        update_id = fake.send_text(USER, USER, "halo lewat webhook")
        secret, body = await asyncio.wait_for(received.get(), timeout=5)
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates(timeout=0)
        info = await bot.get_webhook_info()
        await bot.delete_webhook()

    assert secret == "rahasia-123"
    update = Update.de_json(body, bot)
    assert update.update_id == update_id
    assert update.message is not None and update.message.text == "halo lewat webhook"
    assert info.url == f"{hook_url}/hook"
    assert info.last_error_message is not None and "500" in info.last_error_message
    assert await bot.get_updates(timeout=0) == ()


async def test_unknown_token_is_invalid_and_unknown_method_not_found(fake: TelegramFake) -> None:
    with pytest.raises(InvalidToken):
        async with ptb_bot(fake, "999:not-a-token"):
            pass
    async with ptb_bot(fake) as client:
        with pytest.raises(EndPointNotFound):
            await client.do_api_request("sendTelepathy")


async def test_redeliver_repeats_the_same_update_id(fake: TelegramFake, bot: telegram.Bot) -> None:
    update_id = fake.send_text(USER, USER, "pesan ganda")
    updates = await bot.get_updates(timeout=0)
    assert updates[-1].update_id == update_id
    offset = update_id + 1
    assert await bot.get_updates(offset=offset, timeout=0) == ()

    assert fake.redeliver(update_id) == update_id
    again = await bot.get_updates(offset=offset, timeout=0)
    assert [u.update_id for u in again] == [update_id]
    assert again[0].message is not None and again[0].message.text == "pesan ganda"


async def test_timeout_fault_delivers_the_message_but_the_client_times_out(
    fake: TelegramFake,
) -> None:
    request = HTTPXRequest(read_timeout=0.3)
    async with ptb_bot(fake, request=request) as client:
        fake.fail_next("sendMessage", "timeout")
        with pytest.raises(TimedOut):
            await client.send_message(USER, "Laporan diterima")
        await client.send_message(USER, "Laporan diterima")  # the retry makes a duplicate
    assert [m.text for m in fake.messages(USER)] == ["Laporan diterima"] * 2
    assert fake.fault_counts["timeout"] == fake.fault_counts["timeout_delivered"] == 1


async def test_commands_are_stored_per_language(fake: TelegramFake, bot: telegram.Bot) -> None:
    await bot.set_my_commands([("lapor", "Buat laporan")])
    await bot.set_my_commands([("lapor", "Create a report")], language_code="en")
    assert fake.commands == {
        "": [{"command": "lapor", "description": "Buat laporan"}],
        "en": [{"command": "lapor", "description": "Create a report"}],
    }
    english = await bot.get_my_commands(language_code="en")
    assert [c.description for c in english] == ["Create a report"]


async def test_wait_for_message_timeout_lists_what_the_chat_received(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    await bot.send_message(USER, "Selamat datang")
    with pytest.raises(TimeoutError, match="Selamat datang"):
        await fake.wait_for_message(USER, contains="KTN-", timeout=0.05)


async def test_application_polling_command_and_button(fake: TelegramFake) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        buttons = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="ok:1")]])
        await update.message.reply_text("Halo Siti! Lanjut?", reply_markup=buttons)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Tercatat")
        await query.edit_message_text(f"Pilihan: {query.data}")

    app = (
        ApplicationBuilder()
        .token(DEFAULT_TOKEN)
        .base_url(fake.bot_api_url)
        .base_file_url(fake.file_api_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=2))
    try:
        fake.start(USER, "rw03")
        greeting = await fake.wait_for_message(USER, contains="Halo Siti")
        update_id = fake.press_button(USER, USER, greeting.message_id, "ok:1")
        edited = await fake.wait_for_edit(USER, greeting.message_id, contains="Pilihan: ok:1")
        answer = await fake.wait_for_callback_answer()
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert edited.text == "Pilihan: ok:1" and edited.reply_markup is None
    assert answer.text == "Tercatat" and answer.message_id == greeting.message_id
    assert fake.get_bot().history[update_id]["callback_query"]["data"] == "ok:1"


async def test_sim_http_api_sends_text_and_reads_the_answer(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    await bot.get_updates(offset=-1, timeout=0)
    async with httpx.AsyncClient(base_url=f"{fake.url}/_sim") as sim:
        mark = (await sim.get("/state")).json()["last_event_id"]
        sent = await sim.post("/text", json={"chat_id": USER, "user_id": USER, "text": "/lapor"})
        assert sent.status_code == 200, sent.text
        updates = await bot.get_updates(offset=-1, timeout=5)
        assert updates[-1].update_id == sent.json()["update_id"]
        await bot.send_message(USER, "Silakan ceritakan kejadiannya.")

        events = (await sim.get("/events", params={"after": mark, "timeout": 5})).json()
        messages = (await sim.get(f"/chats/{USER}/messages")).json()["messages"]
        photo = await sim.post(
            "/photo", data={"chat_id": str(USER), "user_id": str(USER)}, files={"photo": png(2, 2)}
        )
        bad = await sim.post("/button", json={"chat_id": USER, "user_id": USER, "message_id": 99})
    kinds = [e["type"] for e in events["events"]]
    assert kinds[0] == "update"
    assert "message" in kinds
    assert messages[-1]["text"] == "Silakan ceritakan kejadiannya."
    assert photo.status_code == 200 and photo.json()["update_id"] > 0
    assert bad.status_code == 400 and "required" in bad.json()["error"]


async def test_sim_events_long_poll_wakes_on_a_bot_message(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    async with httpx.AsyncClient(base_url=f"{fake.url}/_sim") as sim:
        mark = fake.mark()
        poll = asyncio.create_task(sim.get("/events", params={"after": mark, "timeout": 25}))
        await fake.wait_for(lambda: fake.call_counts["/_sim/events"] > 0)
        await bot.send_chat_action(USER, "typing")
        response = await asyncio.wait_for(poll, timeout=3)
    body = response.json()
    assert body["events"][0]["type"] == "chat_action"
    assert body["events"][0]["id"] == mark + 1 == body["last_id"]


async def test_two_bots_have_separate_users_updates_and_messages(fake: TelegramFake) -> None:
    other = fake.add_bot("7000000002:AAOtherBotToken", username="ktn_officer_bot")
    fake.send_text(USER, USER, "untuk bot utama")
    async with ptb_bot(fake) as main, ptb_bot(fake, other.token) as officer:
        assert (await officer.get_me()).username == "ktn_officer_bot"
        assert await officer.get_updates(timeout=0) == ()
        with pytest.raises(Forbidden):
            await officer.send_message(USER, "Halo")
        fake.start(USER, bot="ktn_officer_bot")
        await officer.send_message(USER, "Halo dari petugas")
        assert len(await main.get_updates(timeout=0)) == 2
    assert [m.text for m in fake.messages(USER, bot=other)] == ["Halo dari petugas"]
    assert fake.messages(USER) == []


async def test_fault_rate_fails_a_seeded_fraction_of_sends(fake: TelegramFake) -> None:
    fake.set_flood_limits(None)
    fake.set_fault_rate(0.5, seed=3, kinds=("5xx",))
    failures = 0
    async with ptb_bot(fake) as client:
        for n in range(20):
            try:
                await client.send_message(GROUP, f"pesan {n}")
            except telegram.error.NetworkError:
                failures += 1
    assert 0 < failures < 20
    assert fake.fault_counts["5xx"] == failures
    assert len(fake.messages(GROUP)) == 20 - failures


async def test_chat_info_actions_voice_forwarding_and_delete(
    fake: TelegramFake, bot: telegram.Bot
) -> None:
    chat = await bot.get_chat(GROUP)
    assert chat.title == "Pos Ronda RW 03"
    await bot.send_chat_action(GROUP, "typing")
    fake.send_voice(USER, USER, b"OggS-voice-note", duration=4)
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.message is not None and update.message.voice is not None
    forwarded = await bot.send_voice(GROUP, voice=update.message.voice.file_id)
    assert forwarded.voice is not None
    assert forwarded.voice.file_id == update.message.voice.file_id
    assert await bot.delete_message(GROUP, forwarded.message_id)
    record = fake.messages(GROUP)[0]
    assert (record.kind, record.deleted) == ("voice", True)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(GROUP, 999)


async def test_service_updates_parse_in_ptb(fake: TelegramFake, bot: telegram.Bot) -> None:
    fake.add_group(-5005, "Grup Baru", members=[USER], bots=())
    with pytest.raises(Forbidden, match="not a member"):
        await bot.send_message(-5005, "Halo")
    joined = fake.add_bot_to_group(-5005, USER)
    fake.send_sticker(USER, USER)
    fake.send_contact(USER, USER, "+6281234567890")
    fake.send_location(USER, USER, -5.4, 105.26)
    blocked = fake.block(USER)
    updates = {u.update_id: u for u in await bot.get_updates(timeout=0)}

    member = updates[joined].my_chat_member
    assert member is not None and member.new_chat_member.status == "member"
    added = updates[joined + 1].message
    assert added is not None and added.new_chat_members[0].username == "ktn_test_bot"
    kinds = [u.effective_message for u in updates.values() if u.effective_message]
    assert any(m.sticker for m in kinds) and any(m.contact for m in kinds)
    assert any(m.location and m.location.latitude == -5.4 for m in kinds)
    kicked = updates[blocked].my_chat_member
    assert kicked is not None and kicked.new_chat_member.status == "kicked"
    await bot.send_message(-5005, "Bot siap")
