"""Given-up messages: admins can list them with the reason and queue them again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.delivery import retry, undelivered
from storage.models import Outbox
from storage.types import utcnow
from tests.support.cli import cli


def row(status: str, error: str | None = None) -> Outbox:
    return Outbox(
        channel="telegram",
        chat_id=-100123,
        kind="alert",
        payload={"reply": {"text": "x"}},
        status=status,
        attempts=8,
        last_error=error,
    )


async def test_undelivered_rows_are_listed_and_requeued(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        s.add_all(
            [
                row("sent"),
                row("failed", "forbidden: bot was kicked"),
                row("needs_template"),
                row("pending"),
            ]
        )
        await s.commit()
    async with sessions() as s:
        listed = await undelivered(s)
        assert [(r.status, r.last_error) for r in listed] == [
            ("needs_template", None),
            ("failed", "forbidden: bot was kicked"),
        ]
        assert await retry(s, [listed[1].id], utcnow()) == 1
        await s.commit()
    async with sessions() as s:
        again = await s.get(Outbox, listed[1].id)
        assert again is not None and (again.status, again.attempts) == ("pending", 0)
        assert [r.status for r in await undelivered(s)] == ["needs_template"]
        assert await retry(s, None, utcnow()) == 1


def test_outbox_commands(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite+aiosqlite:///ktn.db"\n')
    assert cli(cfg, "outbox", "failed").stdout.strip() == "nothing undelivered"
    assert cli(cfg, "outbox", "retry").stdout.strip() == "0 message(s) queued again"
