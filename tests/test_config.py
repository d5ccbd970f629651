"""Settings: defaults, environment overrides, and errors that name the key and the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_a_working_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTN_CONFIG", raising=False)
    settings = load_settings(ROOT / "config.toml")
    assert settings.database.url == f"sqlite+aiosqlite:///{ROOT / 'data' / 'ktn.db'}"
    assert settings.locale.default == "id"
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.telegram.mode == "polling"
    assert settings.whatsapp.api_base_url == "https://api.twilio.com"
    assert settings.whatsapp.enabled is False
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert [c.key for c in settings.reports.categories][:2] == ["keamanan", "kesehatan"]


def test_every_documented_key_exists(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    for section, key in [
        ("database", "url"),
        ("telegram", "base_url"),
        ("telegram", "mode"),
        ("telegram", "webhook_url"),
        ("whatsapp", "enabled"),
        ("whatsapp", "from_number"),
        ("whatsapp", "public_url"),
        ("whatsapp", "api_base_url"),
        ("http", "host"),
        ("http", "port"),
        ("locale", "default"),
    ]:
        assert hasattr(getattr(settings, section), key), f"[{section}] {key}"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[http]\nport = 8080\n[telegram]\nmode = "polling"\n')
    monkeypatch.setenv("KTN_HTTP__PORT", "9001")
    monkeypatch.setenv("KTN_TELEGRAM__MODE", "webhook")
    monkeypatch.setenv("KTN_DATABASE__URL", "postgresql+asyncpg://u@db:5432/ktn")
    settings = load_settings(path)
    assert settings.http.port == 9001
    assert settings.telegram.mode == "webhook"
    assert settings.database.url == "postgresql+asyncpg://u@db:5432/ktn"


def test_secrets_come_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTN_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setenv("KTN_TWILIO_AUTH_TOKEN", "tw-secret")
    settings = load_settings(write(tmp_path, ""))
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123:abc"
    assert "123:abc" not in repr(settings)
    assert "tw-secret" not in repr(settings)


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'telegram_token = "123:abc"\n')
    with pytest.raises(ConfigError, match="telegram_token.*environment.*KTN_TELEGRAM_TOKEN"):
        load_settings(path)


def test_bad_value_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\nmode = "carrier-pigeon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "[telegram] mode" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_env_value_names_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTN_HTTP__PORT", "eighty")
    with pytest.raises(ConfigError, match=r"\[http\] port.*KTN_HTTP__PORT"):
        load_settings(write(tmp_path, ""))


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[http\] prot"):
        load_settings(write(tmp_path, "[http]\nprot = 1\n"))


def test_sync_database_driver_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[database\] url.*async driver"):
        load_settings(write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n'))


def test_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[scheduler\] timezone"):
        load_settings(write(tmp_path, '[scheduler]\ntimezone = "Asia/Atlantis"\n'))


def test_missing_file_and_broken_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[http\nport = 1\n"))


def test_ktn_config_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTN_CONFIG", str(write(tmp_path, "[http]\nport = 7777\n")))
    assert load_settings().http.port == 7777


def test_relative_sqlite_path_is_relative_to_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[database]\nurl = "sqlite+aiosqlite:///db/x.db"\n'))
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'db' / 'x.db'}"


def test_cli_reports_config_error_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 99999\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(path), "db", "current"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "[http] port" in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr
