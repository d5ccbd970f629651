"""Reliability suite: faults, duplicate deliveries and fuzzing, each printing one figures line.

Short by default (CI); ``KTN_RELIABILITY_SCALE=long`` runs the long version of the whole suite:

    KTN_RELIABILITY_SCALE=long .venv/bin/python -m pytest tests/test_reliability*.py -q

R2 faults (Telegram and WhatsApp), R3 duplicate deliveries and R4 fuzzing are here; R1 crash (SIGKILL) is in
test_reliability_crash.py, R5 security in test_reliability_security.py and R6 concurrency in
test_reliability_concurrency.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update

from bot.channels.telegram.inbound import to_inbound
from bot.channels.telegram.sender import TelegramSender
from bot.channels.telegram.transport import AiohttpRequest
from bot.channels.whatsapp import inbound as whatsapp
from bot.channels.whatsapp.sender import WhatsAppSender, make_client
from bot.delivery.dispatcher import Dispatcher, Sender
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.sandbox.twilio_fake import DEFAULT_SENDER, TwilioFake
from handlers.i18n import Catalog
from handlers.types import Inbound, InvalidInbound, Reply
from storage.models import Contact, Outbox, Report
from storage.types import OutboxStatus
from tests.support.chats import FakeChat, load_areas
from tests.support.figures import LONG, figures
from tests.support.telegram_run import (
    GROUP,
    RESIDENT,
    Running,
    bot_running,
    file_report,
    lenient_private_chats,
    link_alert_group,
    settings_for,
)


async def send_everything(
    sessions: async_sessionmaker[AsyncSession], senders: dict[str, Sender]
) -> int:
    """Drain the outbox round after round, the clock an hour further each round so retries are
    due at once, not after real backoff; returns the rows still unsent after 60 rounds."""
    offset = timedelta()

    def wall() -> datetime:
        return datetime.now(UTC) + offset

    dispatcher = Dispatcher(sessions, senders, {}, max_attempts=50, wall=wall)
    left = 0
    for _ in range(60):
        await dispatcher.drain()
        async with sessions() as s:
            left = (
                await s.scalar(
                    select(func.count())
                    .select_from(Outbox)
                    .where(Outbox.status != OutboxStatus.SENT)
                )
                or 0
            )
        if not left:
            break
        offset += timedelta(hours=1)
    return left


def check_r2(
    capsys: pytest.CaptureFixture[str],
    check: str,
    attempts: int,
    delivered: Counter[str],
    faults: int,
    timed_out: int,
    left: int,
) -> None:
    """R2's figures, and what they must show: nothing left unsent or lost, enough faults."""
    duplicated = sum(n - 1 for n in delivered.values())
    lost = attempts - len(delivered)
    figures(
        capsys,
        check,
        attempts=attempts,
        faults=faults,
        timeouts=timed_out,
        lost=lost,
        duplicated=duplicated,
    )
    assert left == 0
    assert lost == 0
    assert faults > attempts * 0.05
    # Neither Telegram nor Twilio has an idempotency key: a send that arrived but whose answer
    # timed out is sent again (at-least-once). Every other fault must cause no duplicate at all.
    assert duplicated <= timed_out


async def test_r2_alerts_survive_failing_sends(
    sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    """10% of sends answer 5xx, 429 or time out: every alert arrives, duplicates <= 0.1%."""
    alerts = 2000 if LONG else 300
    async with sessions() as s:
        s.add_all(
            Outbox(
                channel="telegram",
                chat_id=-100_000 - i % 20,
                kind="alert",
                payload={"reply": Reply(f"Laporan uji #{i}").to_json()},
            )
            for i in range(alerts)
        )
        await s.commit()
    async with TelegramFake(flood=False, hang_seconds=2) as fake:
        for i in range(20):
            fake.add_group(-100_000 - i, f"Bhabin {i}", kind="supergroup")
        fake.set_fault_rate(0.10, seed=7)
        request = AiohttpRequest(connection_pool_size=64, read_timeout=0.5)  # hung sends give up
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url, request=request) as bot:
            left = await send_everything(sessions, {"telegram": TelegramSender(bot, sessions)})
        delivered = Counter(
            m.content for i in range(20) for m in fake.messages(-100_000 - i) if "uji" in m.content
        )
        faults = sum(fake.fault_counts.values())
    check_r2(capsys, "R2 faults", alerts, delivered, faults, fake.fault_counts["timeout"], left)


async def test_r2_whatsapp_messages_survive_failing_sends(
    sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    """10% of Twilio message creations answer 5xx, 429 or time out: every message arrives,
    duplicates only where Twilio accepted a message whose answer never came."""
    messages = 1000 if LONG else 200
    numbers = [6281200000000 + i for i in range(20)]
    now = datetime.now(UTC)
    async with sessions() as s:
        contacts = [
            Contact(channel="whatsapp", external_id=n, last_inbound_at=now) for n in numbers
        ]
        s.add_all(contacts)
        await s.flush()
        s.add_all(
            Outbox(
                channel="whatsapp",
                chat_id=numbers[i % 20],
                contact_id=contacts[i % 20].id,
                kind="status",
                payload={"reply": Reply(f"Kabar uji #{i}").to_json()},
            )
            for i in range(messages)
        )
        await s.commit()
    fake = TwilioFake(auto_deliver=False, hang_seconds=2)
    async with fake.serve():
        for n in numbers:
            fake.inbound_text(f"+{n}", "halo")  # the fake's own 24-hour window is open
        fake.set_fault_rate(0.10, seed=7)
        client = make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.5)
        sender = WhatsAppSender(
            client,
            sessions,
            from_number=DEFAULT_SENDER.removeprefix("whatsapp:"),
            catalog=Catalog.load(),
            default_language="id",
            templates={},
            status_callback=None,
            messages_per_second=50,
        )
        try:
            left = await send_everything(sessions, {"whatsapp": sender})
        finally:
            await sender.close()
    delivered = Counter(m.body for m in fake.messages if "uji" in m.body)
    faults = sum(n for key, n in fake.counters.items() if key.startswith("fault_"))
    timed_out = fake.counters["fault_timeout"]
    check_r2(capsys, "R2 faults (WhatsApp)", messages, delivered, faults, timed_out, left)


async def test_r3_redelivered_updates_make_one_report(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Telegram retries every update of a report (polling redelivery): one report, one alert."""
    await link_alert_group(sessions)
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        settings = settings_for(fake, migrated_url, tmp_path)
        async with bot_running(fake, settings, sessions) as running:
            first = fake.mark()
            await file_report(running, RESIDENT)
            updates = [
                e.data["update_id"] for e in fake.events if e.id > first and e.type == "update"
            ]
            repeats = 3 if LONG else 1
            for _ in range(repeats):
                for update_id in updates:
                    fake.redeliver(update_id)
            seen = len(fake.messages(RESIDENT))
            fake.send_text(RESIDENT, RESIDENT, "/status")  # handled after every redelivery
            await fake.wait_for_message(RESIDENT, since=seen)
            alert = await fake.wait_for_message(GROUP, contains="KTN-", since=0, timeout=10)
            await _stop(running)
        async with sessions() as s:
            reports = await s.scalar(select(func.count()).select_from(Report))
        alerts = [m for m in fake.messages(GROUP) if "KTN-" in m.content]
    figures(
        capsys,
        "R3 duplicate deliveries",
        attempts=len(updates) * repeats,
        reports=reports,
        alerts=len(alerts),
        duplicated=(reports or 0) - 1,
    )
    assert reports == 1
    assert [m.message_id for m in alerts] == [alert.message_id]


async def _stop(running: Running) -> None:
    """Stop the bot so the dispatcher records what it sent."""
    await running.stop()


async def test_r3_retried_message_sid_makes_one_report(
    sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    """Twilio retries a WhatsApp webhook: the same MessageSid is answered once."""
    await load_areas(sessions)
    chat = FakeChat(sessions, user_id=6281234567890)
    await chat.onboard()
    await chat.send("/lapor")
    await chat.press("cat:keamanan")
    await chat.send("Ada pencurian motor")
    await chat.send("RT 03/RW 02 dekat masjid")
    await chat.press("photo:skip")
    await chat.press("anon:no")
    send = chat.message(button="sum:send", message_id="wa:SM0123456789abcdef")
    outcomes = [await chat.deliver(send) for _ in range(5 if LONG else 3)]
    async with sessions() as s:
        reports = await s.scalar(select(func.count()).select_from(Report))
    figures(
        capsys,
        "R3 duplicate MessageSid",
        attempts=len(outcomes),
        reports=reports,
        answered=sum(not o.duplicate for o in outcomes),
    )
    assert reports == 1
    assert [o.duplicate for o in outcomes] == [False] + [True] * (len(outcomes) - 1)


ids = st.integers(min_value=-(2**53), max_value=2**53)
texts_or_none = st.one_of(st.none(), st.text(max_size=5000))


user = st.fixed_dictionaries(
    {"id": ids, "is_bot": st.booleans(), "first_name": st.text(max_size=80)},
    optional={"language_code": st.text(max_size=12), "last_name": st.text(max_size=80)},
)


chat = st.fixed_dictionaries(
    {"id": ids, "type": st.sampled_from(["private", "group", "supergroup", "channel"])},
    optional={"title": st.text(max_size=200)},
)


message = st.fixed_dictionaries(
    {"message_id": ids, "date": st.integers(0, 2**31), "chat": chat},
    optional={
        "from": user,
        "text": st.text(max_size=5000),
        "caption": st.text(max_size=2000),
        "location": st.fixed_dictionaries(
            {
                "latitude": st.floats(allow_nan=True, allow_infinity=True),
                "longitude": st.floats(allow_nan=True, allow_infinity=True),
            }
        ),
        "migrate_to_chat_id": ids,
    },
)


telegram_update = st.one_of(
    st.fixed_dictionaries({"update_id": ids, "message": message}),
    st.fixed_dictionaries({"update_id": ids, "edited_message": message}),
    st.fixed_dictionaries(
        {
            "update_id": ids,
            "callback_query": st.fixed_dictionaries(
                {"id": st.text(max_size=20), "from": user, "chat_instance": st.text(max_size=8)},
                optional={"message": message, "data": st.text(max_size=100)},
            ),
        }
    ),
    st.fixed_dictionaries({"update_id": ids}),
)


twilio_keys = st.sampled_from(
    [
        "MessageSid",
        "From",
        "WaId",
        "Body",
        "ProfileName",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "Latitude",
        "Longitude",
        "Address",
        "Label",
        "ButtonPayload",
        "MessageType",
    ]
)


twilio_form = st.dictionaries(twilio_keys, st.text(max_size=300)) | st.fixed_dictionaries(
    {
        "MessageSid": st.text(min_size=1, max_size=40),
        "From": st.just("whatsapp:+6281234567890"),
        "WaId": st.just("6281234567890"),
        "Body": st.text(max_size=2000),
    },
    optional={
        "NumMedia": st.text(max_size=4),
        "Latitude": st.text(max_size=12),
        "Longitude": st.text(max_size=12),
        "ButtonPayload": st.text(max_size=100),
    },
)


EXAMPLES = 3000 if LONG else 300


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


FUZZ_BOT = Bot(DEFAULT_TOKEN)  # one: each Bot builds HTTP clients and an SSL context (~0.1 s)


@FUZZ
@given(data=telegram_update)
def test_r4_random_telegram_updates_never_crash_the_adapter(data: dict[str, object]) -> None:
    """Any update PTB can parse becomes a neutral message, is ignored, or is refused as
    malformed (``InvalidInbound``: the webhook answers 400); nothing else raises."""
    update = Update.de_json(data, FUZZ_BOT)
    try:
        inbound = to_inbound(update)
    except InvalidInbound:
        return
    if inbound is not None:
        assert inbound.message_id.endswith(str(data["update_id"]))


@FUZZ
@given(form=twilio_form)
def test_r4_random_twilio_forms_are_used_or_refused(form: dict[str, str]) -> None:
    """A form is a message or a FormError (answered 400 by the channel), never a crash."""
    try:
        inbound = whatsapp.to_inbound(form, datetime.now(UTC))
    except whatsapp.FormError:
        return
    assert inbound.chat_id > 0


async def test_r4_core_survives_random_input_then_answers_start(
    sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    """Random texts, buttons and locations through the core: no crash; /start still works."""
    await load_areas(sessions)
    chat = FakeChat(sessions, user_id=777)
    attempts = 600 if LONG else 80
    crashed = answered = 0
    for i in range(attempts):
        try:
            outcome = await chat.deliver(_random_message(chat, i))
        except Exception:
            crashed += 1
            continue
        answered += bool(outcome.replies)
    start = await chat.send("/start")
    figures(capsys, "R4 fuzz core", attempts=attempts, crashed=crashed, answered=answered)
    assert crashed == 0
    assert start.replies, "the bot still answers /start"
    assert answered > attempts // 2


def _random_message(chat: FakeChat, i: int) -> Inbound:
    """A deterministic mix of hostile inputs: long, control characters, bad buttons, RTL."""
    samples = [
        "",
        " ",
        "\x00\x01\x02",
        "/",
        "/lapor@other_bot",
        "/start " + "9" * 300,
        "🙂" * 2000,
        "\u202e" + "lapor",
        "<b>tebal</b>",
        "cat:" + "x" * 60,
        "sum:send",
        "anon:maybe",
        "claim:999999999999",
        "resolve:-1",
        "a" * 5000,
    ]
    text = samples[i % len(samples)]
    if i % 3 == 1:
        return chat.message(button=text[:64] or "x")
    return chat.message(text or None)
