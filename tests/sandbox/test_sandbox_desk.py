"""The desk in the sandbox: "Buka dasbor" signs the demo coordinator in on the page's own
server, and /dasbor typed in the coordinator's pane gives a link to that same server."""

from __future__ import annotations

from pathlib import Path

import httpx

from bot.sandbox.demo import COORDINATOR_ID
from tests.sandbox.test_sandbox import next_bot_message, say
from tests.support.sandbox import running_sandbox, sandbox_config


async def test_buka_dasbor_signs_the_coordinator_in(tmp_path: Path) -> None:
    settings = sandbox_config(tmp_path)
    async with running_sandbox(settings) as url, httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/")
        assert 'href="/sandbox/dasbor"' in page.text and "Buka dasbor" in page.text
        opened = await client.get("/sandbox/dasbor")
        assert opened.status_code == 303
        link = opened.headers["location"]
        assert link.startswith("/dasbor/masuk/")
        assert (await client.post(link)).status_code == 303
        desk = await client.get("/dasbor/")
        assert desk.status_code == 200 and "Ibu Lurah Sri" in desk.text
        assert (await client.post(link)).status_code == 403  # once

        after = await say(client, COORDINATOR_ID, COORDINATOR_ID, "/dasbor")
        answer, _ = await next_bot_message(client, COORDINATOR_ID, after)
        assert f"{url}/dasbor/masuk/" in answer["text"]
