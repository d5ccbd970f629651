"""One bad outbox row fails alone: the rows claimed with it are sent, it is given up with its
reason (``ktn-bot outbox failed``), and no batch ever leaves a row claimed without an attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.sender import TelegramSender
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.windows import ChannelLimits, SlidingWindow
from bot.metrics import Metrics
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from handlers.types import Media, MediaKind, Reply
from storage.db import is_sqlite
from storage.models import Outbox
from tests.support.cli import cli

GROUP = -1001234567890
RESIDENT = 5101
LIMITS = ChannelLimits((30, 1.0), group_window=(20, 60.0), chat_window=(5, 1.0))


def good(chat_id: int, text: str, kind: str = "status") -> Outbox:
    return Outbox(
        channel="telegram", chat_id=chat_id, kind=kind, payload={"reply": Reply(text).to_json()}
    )


def poisoned(db_url: str, tmp_path: Path) -> dict[str, Outbox]:
    """Rows whose data or send raises, each as it happened or could happen in production."""
    rows = {
        # A reply that names a stored photo which is gone (a restore without data_dir/media).
        "gone": Outbox(
            channel="telegram",
            chat_id=RESIDENT,
            kind="status",
            payload={
                "reply": Reply(
                    "Foto laporan", media=Media(MediaKind.PHOTO, str(tmp_path / "hilang.jpg"))
                ).to_json()
            },
        ),
        # A payload that raises while being rendered (an option without its data).
        "unreadable": Outbox(
            channel="telegram",
            chat_id=RESIDENT,
            kind="status",
            payload={"reply": {"text": "Pilih", "options": [["Tangani"]]}},
        ),
        # A payload with no reply at all.
        "empty": Outbox(channel="telegram", chat_id=GROUP, kind="alert", payload={"x": 1}),
    }
    if is_sqlite(db_url):
        # The row of the adversarial run: a chat id that is a string. SQLite keeps any value in
        # a BIGINT column; PostgreSQL refuses it at the INSERT, so there it cannot exist.
        rows["string chat id"] = Outbox(
            channel="telegram", chat_id="abc", kind="reply", payload={"reply": {"text": "x"}}
        )
    return rows


async def outcome(sessions: async_sessionmaker[AsyncSession]) -> dict[int, tuple[str, int, str]]:
    async with sessions() as session:
        rows = (await session.scalars(select(Outbox).order_by(Outbox.id))).all()
        return {r.id: (r.status, r.attempts, r.last_error or "") for r in rows}


def config_for(db_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n')
    return path


async def test_poisoned_rows_fail_alone_beside_good_ones_and_are_listed_with_their_reason(
    sessions: async_sessionmaker[AsyncSession], migrated_url: str, tmp_path: Path
) -> None:
    bad = poisoned(migrated_url, tmp_path)
    async with sessions() as session:
        # Interleaved: each bad row is claimed in the same batch as good rows of its chat.
        session.add(good(GROUP, "Laporan KTN-0001", "alert"))
        session.add_all(bad.values())
        session.add(good(GROUP, "Laporan KTN-0002", "alert"))
        session.add(good(RESIDENT, "Tiket KTN-0002 sedang ditangani"))
        await session.commit()
        bad_ids = {name: row.id for name, row in bad.items()}
    metrics = Metrics()
    async with TelegramFake(flood_limits=FloodLimits(per_private=((5, 1.0),))) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya")
        fake.add_user(RESIDENT, "Siti")
        fake.start(RESIDENT)
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
            dispatcher = Dispatcher(
                sessions,
                {"telegram": TelegramSender(bot, sessions)},
                {"telegram": LIMITS},
                metrics=metrics,
            )
            await dispatcher.drain()
            assert await dispatcher.drain() == 0  # nothing is claimed again
        group = [m.content for m in fake.messages(GROUP)]
        private = [m.content for m in fake.messages(RESIDENT)]
    assert group == ["Laporan KTN-0001", "Laporan KTN-0002"]
    assert private[-1] == "Tiket KTN-0002 sedang ditangani"
    assert "Foto laporan" not in private and "Pilih" not in private

    rows = await outcome(sessions)
    assert all(status != "sending" for status, _tries, _reason in rows.values())
    for name, row_id in bad_ids.items():
        status, tries, reason = rows[row_id]
        assert (status, tries) == ("failed", 1), name
        assert reason.startswith("unexpected: "), (name, reason)
    assert "FileNotFoundError" in rows[bad_ids["gone"]][2]
    assert "ValueError" in rows[bad_ids["unreadable"]][2]
    assert "no reply" in rows[bad_ids["empty"]][2]
    if "string chat id" in bad_ids:
        assert "chat id is not an integer" in rows[bad_ids["string chat id"]][2]
    assert sum(status == "sent" for status, _t, _r in rows.values()) == 3
    unexpected = metrics.registry.get_sample_value(
        "ktn_outbox_unexpected_failures_total", {"channel": "telegram"}
    )
    assert unexpected == len(bad)

    listed = cli(config_for(migrated_url, tmp_path), "outbox", "failed")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()[1:]
    assert sorted(int(line.split("\t")[0]) for line in lines) == sorted(bad_ids.values())
    assert all("\tunexpected: " in line for line in lines)
    assert "abc" not in listed.stdout  # a malformed chat id is marked, not printed


class OneChatUnpaceable:
    """Limits whose window for one chat raises (a bug there must not stop the other chats)."""

    def overall(self) -> SlidingWindow:
        return LIMITS.overall()

    def for_chat(self, chat_id: int) -> SlidingWindow | None:
        if chat_id == RESIDENT:
            raise RuntimeError("no window for this chat")
        return LIMITS.for_chat(chat_id)


class Collect:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, envelope: Any) -> str | None:
        self.sent.append(envelope.payload["reply"]["text"])
        return str(len(self.sent))


async def test_a_chat_the_dispatcher_cannot_pace_fails_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add_all(
            [good(GROUP, "Alert 1", "alert"), good(RESIDENT, "Halo"), good(GROUP, "Alert 2")]
        )
        await session.commit()
    sender = Collect()
    dispatcher = Dispatcher(sessions, {"telegram": sender}, {"telegram": OneChatUnpaceable()})  # type: ignore[dict-item]
    await dispatcher.drain()
    assert sender.sent == ["Alert 1", "Alert 2"]
    rows = list((await outcome(sessions)).values())
    assert [r[0] for r in rows] == ["sent", "failed", "sent"]
    assert rows[1][2] == "unexpected: RuntimeError: no window for this chat"


async def test_a_fault_of_the_dispatcher_itself_counts_an_attempt_and_leaves_nothing_claimed(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session:
        session.add_all([good(GROUP, "Alert 1", "alert"), good(RESIDENT, "Halo")])
        await session.commit()
    sender = Collect()
    dispatcher = Dispatcher(sessions, {"telegram": sender}, {"telegram": LIMITS})
    real = dispatcher._send_batch

    async def sends_then_breaks(*args: Any) -> None:
        await real(*args)
        raise RuntimeError("a bug after the sends")

    monkeypatch.setattr(dispatcher, "_send_batch", sends_then_breaks)
    await dispatcher.drain_once()
    rows = list((await outcome(sessions)).values())
    # What went out is recorded as sent; nothing stays claimed waiting for a lease to expire.
    assert sorted(sender.sent) == ["Alert 1", "Halo"]
    assert [(r[0], r[1]) for r in rows] == [("sent", 1), ("sent", 1)]

    async with sessions() as session:
        session.add(good(RESIDENT, "Lagi"))
        await session.commit()

    async def breaks_at_once(*_args: Any) -> None:
        raise RuntimeError("a bug before any send")

    monkeypatch.setattr(dispatcher, "_send_batch", breaks_at_once)
    await dispatcher.drain_once()
    status, tries, reason = list((await outcome(sessions)).values())[-1]
    assert (status, tries) == ("pending", 1)
    assert reason == "dispatcher error: RuntimeError"
