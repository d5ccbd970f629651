"""`ktn-bot sandbox` without a browser: the page is served, demo data is seeded once, and the
real bot answers a resident through the page's /_sim/ API, and a WhatsApp resident through its
/_wa/ API (signed webhooks to the real WhatsApp channel, answers through the Twilio fake)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.sandbox import database_path
from bot.sandbox.demo import (
    COORDINATOR_ID,
    GROUP_ID,
    OFFICER_ID,
    RESIDENT_ID,
    WA_RESIDENT_NAME,
    WA_RESIDENT_NUMBER,
)
from storage.db import create_engine, session_factory
from storage.models import Area, Contact, GroupChat
from tests.conftest import ROOT
from tests.support.cli import sandbox_serves_then_stops
from tests.support.sandbox import running_sandbox, sandbox_config


async def next_bot_message(
    client: httpx.AsyncClient, chat_id: int, after: int
) -> tuple[dict[str, Any], int]:
    """Long-poll /_sim/events like the page does until the bot writes in that chat."""
    for _ in range(20):
        body = (await client.get("/_sim/events", params={"after": after, "timeout": 5})).json()
        for event in body["events"]:
            after = event["id"]
            if event["type"] == "message" and event["chat_id"] == chat_id:
                return event["data"], after
    raise AssertionError(f"the bot wrote nothing in chat {chat_id}")


async def say(client: httpx.AsyncClient, chat_id: int, user_id: int, text: str) -> int:
    """Send text as a user through the page's API; returns the last event id before it."""
    after = int((await client.get("/_sim/state")).json()["last_event_id"])
    answer = await client.post(
        "/_sim/text", json={"chat_id": chat_id, "user_id": user_id, "text": text}
    )
    assert answer.status_code == 200, answer.text
    return after


def button_labels(message: dict[str, Any]) -> list[str]:
    """The inline buttons' labels, as the page shows them."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [button["text"] for row in rows for button in row]


async def count_rows(settings: Settings) -> dict[str, int]:
    """How many areas, staff contacts and groups the sandbox database holds."""
    engine = create_engine(f"sqlite+aiosqlite:///{database_path(settings)}")
    try:
        async with session_factory(engine)() as s:
            return {
                "areas": await s.scalar(select(func.count()).select_from(Area)) or 0,
                "staff": await s.scalar(
                    select(func.count()).where(Contact.role.in_(("officer", "coordinator")))
                )
                or 0,
                "groups": await s.scalar(select(func.count()).select_from(GroupChat)) or 0,
            }
    finally:
        await engine.dispose()


async def test_page_shows_its_chats_and_the_bot_answers_a_resident(tmp_path: Path) -> None:
    settings = sandbox_config(tmp_path)
    async with running_sandbox(settings) as url, httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/")
        assert page.status_code == 200
        for key in ("resident", "whatsapp", "group", "officer", "coordinator"):
            assert f'data-pane="{key}"' in page.text
        assert "Mulai di panel Warga: ketik <kbd>/lapor</kbd>" in page.text
        for asset in ("/static/sandbox.js", "/static/sandbox.css"):
            assert asset in page.text
            assert (await client.get(asset)).status_code == 200
        config = (await client.get("/sandbox.json")).json()
        assert [(p["key"], p["chat_id"], p["user_id"]) for p in config["panes"]] == [
            ("resident", RESIDENT_ID, RESIDENT_ID),
            ("group", GROUP_ID, OFFICER_ID),
            ("officer", OFFICER_ID, OFFICER_ID),
            ("coordinator", COORDINATOR_ID, COORDINATOR_ID),
        ]
        assert (config["whatsapp"]["number"], config["whatsapp"]["who"]) == (
            WA_RESIDENT_NUMBER,
            WA_RESIDENT_NAME,
        )

        after = await say(client, RESIDENT_ID, RESIDENT_ID, "/start")
        welcome, _ = await next_bot_message(client, RESIDENT_ID, after)
        assert "Kampung Tangguh Nusantara" in welcome["text"]
        assert button_labels(welcome) == ["Setuju", "Tidak"]

        after = await say(client, COORDINATOR_ID, COORDINATOR_ID, "/bantuan")
        help_text, _ = await next_bot_message(client, COORDINATOR_ID, after)
        assert "/lapor" in help_text["text"]


async def wa_chat(client: httpx.AsyncClient, after: int) -> list[dict[str, Any]]:
    """The WhatsApp resident's chat items after ``after``, long-polled like the page does."""
    params = {"number": WA_RESIDENT_NUMBER, "after": after, "timeout": 10}
    return list((await client.get("/_wa/chat", params=params)).json()["items"])


async def wa_answer(client: httpx.AsyncClient, after: int) -> dict[str, Any]:
    """The bot's next message to the WhatsApp resident after item ``after``."""
    for _ in range(10):
        items = await wa_chat(client, after)
        answers = [i for i in items if i["dir"] == "out"]
        if answers:
            return answers[0]
        after = max((i["id"] for i in items), default=after)
    raise AssertionError("the bot did not answer on WhatsApp")


async def test_the_whatsapp_pane_talks_to_the_real_channel_through_the_twilio_fake(
    tmp_path: Path,
) -> None:
    async with (
        running_sandbox(sandbox_config(tmp_path)) as url,
        httpx.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        said = await client.post("/_wa/text", json={"number": WA_RESIDENT_NUMBER, "text": "Halo"})
        assert said.status_code == 200, said.text
        notice = await wa_answer(client, said.json()["id"])
        assert "Apakah Anda setuju?" in notice["body"]
        assert [b["title"] for b in notice["buttons"]] == ["Setuju", "Tidak"]  # quick replies
        tap = {"number": WA_RESIDENT_NUMBER, "sid": notice["sid"], "id": "consent:yes"}
        tapped = await client.post("/_wa/tap", json=tap)
        assert tapped.status_code == 200, tapped.text
        [mine] = [i for i in await wa_chat(client, notice["id"]) if i["dir"] == "in"]
        assert mine["body"] == "Setuju"  # ButtonText, as WhatsApp shows the tap
        asked = await wa_answer(client, tapped.json()["id"])
        assert "kelurahan/desa" in asked["body"]
        said = await client.post(
            "/_wa/text", json={"number": WA_RESIDENT_NUMBER, "text": "Sumber Jaya"}
        )
        places = await wa_answer(client, said.json()["id"])
        assert places["list_button"] == "Pilih"  # a list picker
        # Only the sandbox's own WhatsApp user can be driven; a stale or foreign tap is refused.
        stranger = await client.post("/_wa/text", json={"number": "+6281999999999", "text": "x"})
        assert stranger.status_code == 400
        bad_tap = await client.post("/_wa/tap", json={**tap, "id": "nope"})
        assert bad_tap.status_code == 400


async def test_demo_data_is_seeded_once_and_a_restart_still_answers(tmp_path: Path) -> None:
    settings = sandbox_config(tmp_path)
    async with running_sandbox(settings) as url, httpx.AsyncClient(base_url=url) as client:
        after = await say(client, RESIDENT_ID, RESIDENT_ID, "/start")
        await next_bot_message(client, RESIDENT_ID, after)
    first = await count_rows(settings)
    assert first == {"areas": 8, "staff": 2, "groups": 1}
    assert database_path(settings) == tmp_path / "data" / "sandbox.db"
    assert not (tmp_path / "data" / "ktn.db").exists()  # the real database is left alone

    async with running_sandbox(settings) as url, httpx.AsyncClient(base_url=url) as client:
        state = (await client.get("/_sim/state")).json()
        group = next(c for c in state["chats"] if c["id"] == GROUP_ID)
        assert set(group["members"]) == {OFFICER_ID, COORDINATOR_ID}
        # The fake starts empty again but the database remembers handled updates: the first
        # message after a restart must not be mistaken for one already answered.
        after = await say(client, RESIDENT_ID, RESIDENT_ID, "/bantuan")
        help_text, _ = await next_bot_message(client, RESIDENT_ID, after)
        assert "/lapor" in help_text["text"]
    assert await count_rows(settings) == first


def test_cli_prints_the_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[http]\nport = 0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(cfg), "sandbox", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = sandbox_serves_then_stops(proc)
    assert url.startswith("http://127.0.0.1:")
    assert (tmp_path / "data" / "sandbox.db").exists()


def test_cli_reports_a_taken_port(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[http]\nport = 0\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bot", "--config", str(cfg), "sandbox", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("existing", [True, False])
def test_reset_deletes_only_the_sandbox_database(tmp_path: Path, existing: bool) -> None:
    from bot.sandbox import reset_database

    settings = sandbox_config(tmp_path)
    settings.data_dir.mkdir(parents=True)
    real = settings.data_dir / "ktn.db"
    real.write_bytes(b"real")
    if existing:
        database_path(settings).write_bytes(b"demo")
        (settings.data_dir / "sandbox.db-wal").write_bytes(b"wal")
    assert reset_database(settings) is existing
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["ktn.db"]


def test_the_sandbox_is_one_bot_whatever_the_deployment_runs(tmp_path: Path) -> None:
    from bot.config import BotSettings, TelegramSettings
    from bot.sandbox.server import sandbox_settings

    deployment = Settings(
        data_dir=tmp_path,
        telegram=TelegramSettings(
            bots=[BotSettings(key="polda_b", token_env="KTN_BOT_B", areas=["17"])]
        ),
    )
    sandboxed = sandbox_settings(deployment, "http://127.0.0.1:1")
    assert sandboxed.telegram.bots == []
    assert sandboxed.telegram_token is not None
