"""Malformed and oversized webhooks against the real ``run``: refused at the edge, before the
core, with one log line and no traceback; bodies are never read past the limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from bot.config import DEFAULT_MAX_BODY
from tests.support.live import Live, telegram_update
from tests.support.telegram_run import WEBHOOK_SECRET

SECRET = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
USER = 8870


def message(update_id: int, **changes: Any) -> dict[str, Any]:
    update = telegram_update(update_id, USER, "/start")
    update["message"].update(changes)
    return update


MALFORMED: dict[str, Any] = {
    "a message without a chat": {
        "update_id": 9101,
        "message": {
            "message_id": 1,
            "date": 0,
            "from": {"id": USER, "is_bot": False, "first_name": "A"},
            "text": "/start",
        },
    },
    "a string chat id": message(9102, chat={"id": "abc", "type": "private"}),
    "a string user id": message(9103, **{"from": {"id": "x", "is_bot": False, "first_name": "A"}}),
    "a chat id beyond 64 bits": message(9104, chat={"id": 2**70, "type": "private"}),
    "a text that is a list": message(9105, text=["/start"]),
    "a text far over Telegram's limit": message(9106, text="a" * 20_000),
    "a pin off the Earth": message(9107, text=None, location={"latitude": 1e9, "longitude": 0}),
    "a string update id": {**message(0), "update_id": "9108"},
    "a button press without its chat": {
        "update_id": 9109,
        "callback_query": {
            "id": "1",
            "from": {"id": USER, "is_bot": False, "first_name": "A"},
            "chat_instance": "x",
            "data": "claim:1",
            "message": {"message_id": 1, "date": 0},
        },
    },
    "a message that is a string": {"update_id": 9110, "message": "halo"},
    "a list, not an update": [1, 2, 3],
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_well_signed_malformed_update_is_a_400_with_one_log_line_and_no_traceback(
    live: Live,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    before = await live.counts()
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(live.telegram_hook, json=MALFORMED[case], headers=SECRET)
        assert response.status_code == 400, case
        assert await live.counts() == before
    # The control: the same hook takes the user's real /start (so the 400 was the shape's).
    live.telegram.add_user(USER, "Warga")
    live.telegram.start(USER)
    assert await live.telegram.wait_for_message(USER, timeout=10)
    refused = [r for r in caplog.records if "malformed telegram update" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    update_id = MALFORMED[case].get("update_id") if isinstance(MALFORMED[case], dict) else None
    if isinstance(update_id, int):
        assert f"update {update_id} refused" in refused[0].getMessage()
    assert "/start" not in refused[0].getMessage() and "aaaa" not in refused[0].getMessage()


async def post_streaming(
    url: str, headers: dict[str, str], total: int, *, declare_length: bool
) -> tuple[str, int]:
    """POST a body of ``total`` bytes over a raw connection while reading the answer; returns
    the status line and how many body bytes the server let us send before it answered."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    chunk = b"a" * 65_536
    sent = 0

    async def upload() -> None:
        nonlocal sent
        while sent < total:
            data = chunk if declare_length else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            writer.write(data)
            await writer.drain()  # blocks once the server stops reading: TCP's window is full
            sent += len(chunk)

    uploading = asyncio.create_task(upload())
    try:
        status = (await reader.readline()).decode().strip()
    finally:
        uploading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await uploading
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return status, sent


FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_a_50_mb_telegram_webhook_body_is_a_413_without_being_read(
    live: Live,
    declare_length: bool,
) -> None:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    status, sent = await post_streaming(
        live.telegram_hook,
        {**SECRET, "Content-Type": "application/json"},
        FIFTY_MB,
        declare_length=declare_length,
    )
    grown = process.memory_info().rss - rss_before
    assert status.startswith("HTTP/1.1 413"), status
    # The server answered long before the body was through (the rest sits in socket buffers
    # or was never written), and kept at most the limit of it: memory stays flat.
    assert sent < FIFTY_MB // 4
    assert grown < 4 * DEFAULT_MAX_BODY + 8 * 1024 * 1024, grown
    live.telegram.add_user(USER, "Warga")  # still serving
    live.telegram.start(USER)
    assert await live.telegram.wait_for_message(USER, timeout=10)


async def test_a_forged_twilio_request_with_a_huge_body_is_a_403_recording_nothing(
    live: Live,
) -> None:
    twilio = live.twilio
    form = twilio.inbound_text("+6285700002222", "LAPOR", "Penyusup")
    before = await live.counts()
    huge_field = {**form, "Body": "x" * (5 * 1024 * 1024)}
    many_fields = "&".join(f"f{i}=" for i in range(2_000_000))
    async with httpx.AsyncClient(trust_env=False) as client:
        for label, body, signature in [
            ("a 5 MB field, made-up signature", huge_field, "forged"),
            ("a 5 MB field, no signature", huge_field, None),
            ("two million fields, made-up signature", many_fields, "forged"),
            ("a 200 kB form of many fields, made-up signature", many_fields[:200_000], "forged"),
        ]:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if signature:
                headers["X-Twilio-Signature"] = signature
            content = body if isinstance(body, str) else httpx.QueryParams(body).__str__()
            response = await client.post(live.whatsapp_hook, content=content, headers=headers)
            assert response.status_code == 403, label
        assert await live.counts() == before
        # The control: the same form, correctly signed, is answered.
        assert (await twilio.post_inbound(live.whatsapp_hook, form)).status_code == 200
    assert await twilio.wait_for_messages("+6285700002222", count=1, timeout=10)
