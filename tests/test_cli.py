"""The `ktn-bot` command line, run as an operator would run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from storage import migrate
from storage.db import is_sqlite
from tests.conftest import ROOT
from tests.support.cli import cli, sandbox_serves_then_stops, wait_for_line
from tests.support.net import free_port

SAMPLE = ROOT / "storage" / "samples" / "areas-sample.csv"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite+aiosqlite:///data/ktn.db"\n[http]\nport = 0\n')
    return path


def test_areas_import_then_invite(cfg: Path) -> None:
    first = cli(cfg, "areas", "import", str(SAMPLE))
    assert first.returncode == 0, first.stderr
    assert "8 created, 0 updated, 0 unchanged" in first.stdout
    again = cli(cfg, "areas", "import", str(SAMPLE))
    assert "0 created, 0 updated, 8 unchanged" in again.stdout

    invite = cli(cfg, "invite", "--role", "officer", "--area", "17.71.08.1004", "--expires", "3d")
    assert invite.returncode == 0, invite.stderr
    code = invite.stdout.strip().splitlines()[-1]
    assert code.isalnum() and code.isupper() and len(code) == 10
    assert "Sumber Jaya" in invite.stdout
    other = cli(cfg, "invite", "--role", "coordinator", "--area", "17.71.08")
    assert other.stdout.strip().splitlines()[-1] != code


def test_bad_csv_imports_nothing_and_names_lines(cfg: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(SAMPLE.read_text() + "17.71.08.9999,,kelurahan,17.71.08,Asia/Jakarta\n")
    result = cli(cfg, "areas", "import", str(bad))
    assert result.returncode == 1
    assert "nothing imported" in result.stderr and "line 10: name is empty" in result.stderr
    assert "Traceback" not in result.stderr
    invite = cli(cfg, "invite", "--role", "officer", "--area", "17.71.08.1004")
    assert invite.returncode == 1 and "no area with code 17.71.08.1004" in invite.stderr


def test_invite_refuses_bad_input(cfg: Path) -> None:
    cli(cfg, "areas", "import", str(SAMPLE))
    assert (
        "--expires"
        in cli(cfg, "invite", "--role", "officer", "--area", "17", "--expires", "soon").stderr
    )
    bad_role = cli(cfg, "invite", "--role", "king", "--area", "17")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_db_upgrade_and_current(cfg: Path) -> None:
    assert "schema at none: behind" in cli(cfg, "db", "current").stdout
    assert f"schema at {migrate.head_revision()}" in cli(cfg, "db", "upgrade").stdout
    assert "up to date" in cli(cfg, "db", "current").stdout


def closed_loopback_url() -> str:
    """A loopback URL nothing listens on: a channel pointed there never leaves the machine."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}"


def whatsapp_env() -> dict[str, str]:
    """A WhatsApp channel that starts without calling Twilio (it only sends when there is news)."""
    twilio = closed_loopback_url()
    return {
        **os.environ,
        "KTN_WHATSAPP__ENABLED": "true",
        "KTN_WHATSAPP__FROM_NUMBER": "+6281100000000",
        "KTN_WHATSAPP__PUBLIC_URL": "http://127.0.0.1:8080",
        "KTN_WHATSAPP__API_BASE_URL": twilio,
        "KTN_WHATSAPP__CONTENT_BASE_URL": twilio,
        "KTN_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "KTN_TWILIO_AUTH_TOKEN": "test-token",
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_stops_cleanly(cfg: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(cfg), "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=whatsapp_env(),
    )
    try:
        line = wait_for_line(proc.stderr, "listening on http://")
        url = line.strip().split("listening on ")[1]
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200
        body = health.json()
        assert (body["status"], body["database"]) == ("ok", "ok")
        assert isinstance(body["leader"], bool)  # whether this worker runs the schedules
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert (cfg.parent / "data" / "ktn.db").exists()  # SQLite schema applied by `run` itself


def test_run_with_no_channel_serves_the_sandbox(cfg: Path) -> None:
    """The Quick start's first command: no token, WhatsApp off -> the sandbox, saying why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTN_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(cfg), "run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    said_why = proc.stdout.readline()
    sandbox_serves_then_stops(proc)
    assert "no channel to serve, so this is the sandbox" in said_why
    assert (cfg.parent / "data" / "sandbox.db").exists()
    assert not (cfg.parent / "data" / "ktn.db").exists(), "the real database is left alone"


def test_run_reports_port_in_use(cfg: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(cfg, "run", env={**whatsapp_env(), "KTN_HTTP__PORT": str(port)})
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_postgres_schema_behind(db_url: str, cfg: Path) -> None:
    """On PostgreSQL `run` never migrates by itself: the operator upgrades after a backup."""
    if is_sqlite(db_url):
        pytest.skip("PostgreSQL only: .ci/run runs this with KTN_TEST_DATABASE_URL")
    result = cli(cfg, "run", env={**whatsapp_env(), "KTN_DATABASE__URL": db_url})
    assert result.returncode == 1
    assert "run `ktn-bot db upgrade` first" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli(cfg, "db", "upgrade", env={"KTN_DATABASE__URL": db_url}).returncode == 0
    assert "up to date" in cli(cfg, "db", "current", env={"KTN_DATABASE__URL": db_url}).stdout


def test_run_explains_an_unreachable_telegram(cfg: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the block ends
    result = cli(
        cfg,
        "run",
        env={
            "KTN_TELEGRAM_TOKEN": "123:abc",
            "KTN_TELEGRAM__BASE_URL": f"http://127.0.0.1:{port}/bot",
        },
    )
    assert result.returncode == 1
    assert f"cannot start the Telegram bot via http://127.0.0.1:{port}/bot" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_workers_need_a_channel(db_url: str, cfg: Path) -> None:
    """Several workers of the sandbox make no sense: without a channel, --workers says so."""
    if is_sqlite(db_url):
        pytest.skip("PostgreSQL only: .ci/run runs this with KTN_TEST_DATABASE_URL")
    env = {"KTN_DATABASE__URL": db_url, "KTN_HTTP__PORT": "8099"}
    result = cli(cfg, "run", "--workers", "2", env=env)
    assert result.returncode == 1
    assert "--workers needs a channel" in result.stderr


def test_run_workers_needs_postgresql(cfg: Path) -> None:
    result = cli(cfg, "run", "--workers", "2")
    assert result.returncode == 1
    assert "--workers needs PostgreSQL" in result.stderr


def test_run_workers_share_one_port_and_stop_on_sigterm(migrated_url: str, cfg: Path) -> None:
    """`run --workers 2`: two processes answer on one port; SIGTERM stops both cleanly."""
    if is_sqlite(migrated_url):
        pytest.skip("PostgreSQL only: .ci/run runs this with KTN_TEST_DATABASE_URL")
    port = free_port()
    env = {**whatsapp_env(), "KTN_DATABASE__URL": migrated_url, "KTN_HTTP__PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(cfg), "run", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        wait_for_line(proc.stderr, "listening on http://")
        wait_for_line(proc.stderr, "listening on http://")  # the second worker
        pids = set()
        for _ in range(50):  # each request on a new connection: the kernel spreads them
            body = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
            assert body["database"] == "ok"
            pids.add(body["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_open311_keys_are_made_listed_and_revoked(cfg: Path) -> None:
    cli(cfg, "areas", "import", str(SAMPLE))
    made = cli(cfg, "open311", "key", "--area", "17.71.08.1004", "--label", "Call centre Polres")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("ktn311_") and len(key) > 40
    assert "Open311 key 1 for Sumber Jaya (17.71.08.1004)" in made.stdout
    stored = b"".join(
        path.read_bytes() for path in (cfg.parent / "data").iterdir() if path.name.startswith("ktn")
    )
    assert key.encode() not in stored  # only its hash is kept
    [header, row] = cli(cfg, "open311", "keys").stdout.strip().splitlines()
    assert header.split("\t")[-1] == "revoked (UTC)"
    assert row.split("\t")[:3] == ["1", "17.71.08.1004 Sumber Jaya", "Call centre Polres"]
    assert row.split("\t")[-1] == "-" and key not in row
    revoked = cli(cfg, "open311", "revoke", "1")
    assert revoked.returncode == 0 and "Open311 key 1 revoked at" in revoked.stdout
    [_, row] = cli(cfg, "open311", "keys").stdout.strip().splitlines()
    assert row.split("\t")[-1].startswith("20")  # the time it was revoked
    missing = cli(cfg, "open311", "revoke", "7")
    assert missing.returncode == 1 and "no Open311 key with id 7" in missing.stderr
    bad_area = cli(cfg, "open311", "key", "--area", "99")
    assert bad_area.returncode == 1 and "no area with code 99" in bad_area.stderr
