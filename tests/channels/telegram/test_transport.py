"""bot.telegram_request: the real python-telegram-bot Bot over aiohttp to the fake Bot API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dtm
import socket
import traceback
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.channels.telegram.transport import AiohttpRequest
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.web.serving import serve_asgi
from tests.support.telegram_fake import USER, fake, png, ptb_timedelta

__all__ = ["fake", "ptb_timedelta"]  # the fake's fixtures: a served fake, PTB_TIMEDELTA on


def client(fake: TelegramFake, request: AiohttpRequest | None = None) -> telegram.Bot:
    """A real PTB Bot on this transport, pointed at the fake."""
    return telegram.Bot(
        DEFAULT_TOKEN,
        base_url=fake.bot_api_url,
        base_file_url=fake.file_api_url,
        request=request or AiohttpRequest(),
    )


async def test_a_message_with_buttons_arrives_and_its_answer_is_parsed(
    fake: TelegramFake,
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Kirim", callback_data="send")]])
    async with client(fake) as bot:
        sent = await bot.send_message(USER, "Laporan siap dikirim?", reply_markup=markup)
    [stored] = fake.messages(USER)
    assert stored.text == "Laporan siap dikirim?"
    assert stored.reply_markup is not None
    assert stored.reply_markup["inline_keyboard"][0][0]["callback_data"] == "send"
    assert sent.message_id == stored.message_id and sent.chat.id == USER


async def test_a_photo_upload_goes_as_multipart_and_downloads_back_unchanged(
    fake: TelegramFake,
) -> None:
    image = png(40, 30)
    async with client(fake) as bot:
        sent = await bot.send_photo(USER, photo=image, caption="Foto lokasi")
        largest = max(sent.photo, key=lambda p: p.width)
        file = await bot.get_file(largest.file_id)
        assert bytes(await file.download_as_bytearray()) == image
    assert fake.messages(USER)[-1].caption == "Foto lokasi"


async def test_a_long_poll_returns_the_update_that_arrives_while_it_waits(
    fake: TelegramFake,
) -> None:
    async with client(fake) as bot:
        [start] = await bot.get_updates(timeout=0)
        polling = asyncio.create_task(bot.get_updates(offset=start.update_id + 1, timeout=5))
        await fake.wait_for(lambda: fake.call_counts["getUpdates"] >= 2, 5)
        fake.send_text(USER, USER, "ada maling")
        updates = await polling
    assert [u.message.text for u in updates if u.message] == ["ada maling"]


async def test_an_idle_long_poll_outlasts_the_read_timeout(fake: TelegramFake) -> None:
    async with client(fake, AiohttpRequest(read_timeout=0.2)) as bot:
        [start] = await bot.get_updates(timeout=0)
        # PTB adds the poll's own second to the read timeout: an empty answer, not TimedOut
        assert await bot.get_updates(offset=start.update_id + 1, timeout=1) == ()


async def test_a_document_keeps_its_file_name(fake: TelegramFake) -> None:
    async with client(fake) as bot:
        upload = telegram.InputFile(b"tiket,status\nKTN-1,baru\n", filename="laporan Mei.csv")
        await bot.send_document(USER, upload, caption="Ekspor")
    assert fake.messages(USER)[-1].filename == "laporan Mei.csv"


async def test_errors_reach_ptb_as_its_own_exceptions(fake: TelegramFake) -> None:
    async with client(fake) as bot:
        fake.fail_next("sendMessage", 429, retry_after=7)
        with pytest.raises(RetryAfter) as limited:
            await bot.send_message(USER, "pesan")
        assert limited.value.retry_after == dtm.timedelta(seconds=7)
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(999_999, "pesan")


async def test_a_hung_answer_times_out_and_the_next_call_still_works(fake: TelegramFake) -> None:
    async with client(fake, AiohttpRequest(read_timeout=0.3)) as bot:
        fake.fail_next("sendMessage", "timeout")
        with pytest.raises(TimedOut):
            await bot.send_message(USER, "Laporan diterima")
        await bot.send_message(USER, "Laporan diterima")
    assert [m.text for m in fake.messages(USER)] == ["Laporan diterima"] * 2


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    bot = telegram.Bot(DEFAULT_TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await bot.send_message(USER, "pesan")
    finally:
        await request.shutdown()


async def test_a_network_error_never_shows_the_token() -> None:
    request = AiohttpRequest()
    await request.initialize()
    bot = telegram.Bot(DEFAULT_TOKEN, base_url="ftp://127.0.0.1/bot", request=request)
    try:
        with pytest.raises(NetworkError) as caught:
            await bot.send_message(USER, "pesan")
    finally:
        await request.shutdown()
    secret = DEFAULT_TOKEN.split(":")[1]
    shown = "".join(traceback.format_exception(caught.value))
    assert "NonHttpUrlClientError" in shown and "/bot<token>/sendMessage" in shown
    assert secret not in shown


async def test_a_full_pool_times_out_without_showing_the_token(fake: TelegramFake) -> None:
    request = AiohttpRequest(connection_pool_size=1, connect_timeout=0.1, pool_timeout=0.1)
    async with client(fake, request) as bot:
        fake.fail_next("sendMessage", "timeout")  # holds the one connection
        hung = asyncio.create_task(bot.send_message(USER, "pertama"))
        await fake.wait_for(lambda: fake.fault_counts["timeout"] == 1, 5)
        with pytest.raises(TimedOut) as caught:
            await bot.send_message(USER, "kedua")
        hung.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hung
    shown = "".join(traceback.format_exception(caught.value))
    assert "Connection timeout" in shown and "/bot<token>/sendMessage" in shown
    assert DEFAULT_TOKEN.split(":")[1] not in shown


async def test_the_transport_reopens_after_shutdown_and_refuses_before(
    fake: TelegramFake,
) -> None:
    request = AiohttpRequest()
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(f"{fake.bot_api_url}{DEFAULT_TOKEN}/getMe")
    for _ in range(2):
        async with client(fake, request) as bot:
            assert (await bot.get_me()).is_bot


@contextlib.asynccontextmanager
async def forward_proxy(seen: list[tuple[str, str | None]]) -> AsyncIterator[str]:
    """A loopback HTTP forward proxy until the block ends; yields its URL. ``seen`` gets each
    URL asked for and its Proxy-Authorization."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        target = scope["path"]  # a forward proxy is asked for the whole URL (absolute form)
        seen.append((target, request.headers.get("proxy-authorization")))
        answer = await client.request(
            request.method,
            target,
            content=await request.body(),
            headers={"content-type": request.headers.get("content-type", "")},
        )
        response = Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )
        await response(scope, receive, send)

    async with httpx.AsyncClient(trust_env=False) as client, serve_asgi(app) as url:
        yield url


async def test_a_proxy_named_by_the_environment_carries_the_calls(
    fake: TelegramFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []
    async with forward_proxy(seen) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("//", "//kantor:rahasia%40@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with client(fake) as bot:
            await bot.send_message(USER, "lewat proxy kantor")
    assert fake.messages(USER)[-1].text == "lewat proxy kantor"
    [(url, auth)] = [s for s in seen if s[0].endswith("/sendMessage")]
    assert url.startswith(fake.bot_api_url)
    assert auth == "Basic " + base64.b64encode(b"kantor:rahasia@").decode()


async def test_no_proxy_sends_the_calls_directly(
    fake: TelegramFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []
    async with forward_proxy(seen) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client(fake) as bot:
            await bot.send_message(USER, "langsung")
    assert fake.messages(USER)[-1].text == "langsung"
    assert seen == []
