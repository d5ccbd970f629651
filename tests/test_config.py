"""Settings: defaults, environment overrides, and errors that name the key and the file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, bot_areas, load_settings, telegram_bots
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
    assert settings.whatsapp.content_base_url == "https://content.twilio.com"
    assert settings.whatsapp.buttons is True
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
        ("whatsapp", "buttons"),
        ("whatsapp", "content_base_url"),
        ("http", "host"),
        ("http", "port"),
        ("locale", "default"),
        ("media", "backend"),
        ("media", "bucket"),
        ("media", "endpoint_url"),
        ("media", "region"),
        ("media", "prefix"),
        ("media", "max_mb"),
        ("media", "url_ttl_seconds"),
        ("media", "orphan_grace_hours"),
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


TWO_BOTS = """
[[telegram.bots]]
key = "polda_bengkulu"
token_env = "KTN_BOT_BENGKULU"
areas = ["17"]

[[telegram.bots]]
key = "polda_lampung"
token_env = "KTN_BOT_LAMPUNG"
areas = ["18.09", "18.71"]
"""


def test_several_bots_name_their_token_variables_and_areas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTN_TELEGRAM_TOKEN", "100:default")
    monkeypatch.setenv("KTN_BOT_BENGKULU", "200:bengkulu")
    monkeypatch.setenv("KTN_BOT_LAMPUNG", " 300:lampung\n")
    settings = load_settings(write(tmp_path, TWO_BOTS))
    assert [b.key for b in settings.telegram.bots] == ["polda_bengkulu", "polda_lampung"]
    assert bot_areas(settings) == {
        "17": "polda_bengkulu",
        "18.09": "polda_lampung",
        "18.71": "polda_lampung",
    }
    bots = telegram_bots(settings)
    assert [(b.key, b.token, b.areas) for b in bots] == [
        ("default", "100:default", ()),
        ("polda_bengkulu", "200:bengkulu", ("17",)),
        ("polda_lampung", "300:lampung", ("18.09", "18.71")),
    ]
    assert "200:bengkulu" not in repr(bots)


def test_without_the_default_token_only_the_named_bots_run(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, TWO_BOTS))
    env = {"KTN_BOT_BENGKULU": "200:b", "KTN_BOT_LAMPUNG": "300:l"}
    assert [b.key for b in telegram_bots(settings, env)] == ["polda_bengkulu", "polda_lampung"]


def test_an_existing_single_bot_config_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTN_TELEGRAM_TOKEN", "100:default")
    settings = load_settings(write(tmp_path, '[telegram]\nmode = "polling"\n'))
    assert settings.telegram.bots == []
    assert bot_areas(settings) == {}
    assert [(b.key, b.token) for b in telegram_bots(settings)] == [("default", "100:default")]


def test_a_bots_token_variable_that_is_not_set_is_one_line(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, TWO_BOTS))
    with pytest.raises(ConfigError) as info:
        telegram_bots(settings, {"KTN_BOT_BENGKULU": "200:b"})
    message = str(info.value)
    assert "\n" not in message
    assert "'polda_lampung'" in message and "KTN_BOT_LAMPUNG" in message


def test_two_bots_with_the_same_token_are_refused(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, TWO_BOTS))
    with pytest.raises(ConfigError, match="'polda_bengkulu' and 'polda_lampung'.*same token"):
        telegram_bots(settings, {"KTN_BOT_BENGKULU": "200:x", "KTN_BOT_LAMPUNG": "200:x"})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[[telegram.bots]]\nkey = "polda_bengkulu"\ntoken_env = "KTN_BOT_X"\nareas = ["16"]\n',
            "#3 key: 'polda_bengkulu' is already the key of #1",
        ),
        (
            '[[telegram.bots]]\nkey = "polri"\ntoken_env = "KTN_BOT_X"\nareas = ["18.71"]\n',
            "#3 areas: area 18.71 is claimed already by #2",
        ),
        (
            '[[telegram.bots]]\nkey = "polri"\ntoken_env = "KTN_BOT_LAMPUNG"\nareas = ["16"]\n',
            "#3 token_env: KTN_BOT_LAMPUNG is already the token of 'polda_lampung'",
        ),
        (
            '[[telegram.bots]]\nkey = "default"\ntoken_env = "KTN_BOT_X"\nareas = ["16"]\n',
            "#3 key: 'default' is the bot of KTN_TELEGRAM_TOKEN",
        ),
        (
            '[[telegram.bots]]\nkey = "Polda-Riau"\ntoken_env = "KTN_BOT_X"\nareas = ["14"]\n',
            "#3 key: must be 1-32 characters of a-z, 0-9 and _",
        ),
        (
            '[[telegram.bots]]\nkey = "polri"\ntoken_env = "KTN_TELEGRAM_TOKEN"\nareas = ["14"]\n',
            "#3 token_env: KTN_TELEGRAM_TOKEN is the default bot's token",
        ),
        (
            '[[telegram.bots]]\nkey = "polri"\ntoken_env = "KTN_BOT_X"\nareas = []\n',
            "#3 areas: List should have at least 1 item",
        ),
        (
            '[[telegram.bots]]\nkey = "polri"\nareas = ["14"]\n',
            "#3 token_env: Field required",
        ),
    ],
)
def test_bad_bot_entries_are_named_one_line_each(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, TWO_BOTS + extra))
    problems = str(info.value).splitlines()[1:]
    assert len(problems) == 1, problems
    assert f"[[telegram.bots]] {expected}" in problems[0]


def test_a_bot_token_in_the_file_is_refused(tmp_path: Path) -> None:
    text = TWO_BOTS + '[[telegram.bots]]\nkey = "x"\ntoken = "400:secret"\nareas = ["14"]\n'
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert "#3 token is a secret" in str(info.value) and "token_env" in str(info.value)
    assert "400:secret" not in str(info.value)


def test_bots_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "KTN_TELEGRAM__BOTS", '[{"key": "polri", "token_env": "KTN_BOT_P", "areas": ["17"]}]'
    )
    settings = load_settings(write(tmp_path, ""))
    assert bot_areas(settings) == {"17": "polri"}


def test_categories_have_a_pillar_and_keywords_by_default_or_as_configured(
    tmp_path: Path,
) -> None:
    from bot.wiring import core_config_from

    core = core_config_from(load_settings(ROOT / "config.toml"))
    pillars = {c.key: c.pillar for c in core.categories}
    assert pillars == {
        "keamanan": "keamanan",
        "kesehatan": "kesehatan",
        "sosial_ekonomi": "sosial_ekonomi",
        "ketahanan_pangan": "ketahanan_pangan",
        "bencana": "keamanan",
        "lainnya": "sosial_ekonomi",
    }
    assert "banjir" in core.category("bencana").keywords  # type: ignore[union-attr]
    own = write(
        tmp_path,
        '[reports]\ncategories = [{ key = "bencana" }, { key = "gizi", pillar = "kesehatan",'
        ' keywords = ["stunting", "gizi buruk"] }, { key = "parkir" }]\n',
    )
    core = core_config_from(load_settings(own))
    assert [(c.key, c.pillar, c.keywords) for c in core.categories] == [
        ("bencana", "keamanan", ("banjir", "longsor", "kebakaran", "gempa", "darurat")),
        ("gizi", "kesehatan", ("stunting", "gizi buruk")),
        ("parkir", "sosial_ekonomi", ()),
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('{ key = "a", pillar = "olahraga" }', "[reports] categories.0.pillar"),
        ('{ key = "a", keywords = ["x,y"] }', "without commas"),
    ],
)
def test_a_bad_pillar_or_keyword_is_refused(tmp_path: Path, entry: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(write(tmp_path, f"[reports]\ncategories = [{entry}]\n"))


def test_open311_settings_have_private_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    o311 = settings.open311
    assert (o311.enabled, o311.public, o311.round_location_digits) == (True, False, 3)
    assert (o311.per_key_per_minute, o311.per_address_per_minute) == (120, 60)
    with pytest.raises(ConfigError, match=r"\[open311\] round_location_digits"):
        load_settings(write(tmp_path, "[open311]\nround_location_digits = 12\n"))


def test_media_defaults_keep_files_on_disk_within_the_channels_limits(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.media.backend == "local"
    assert settings.media.limit_bytes("photo") == 20 * 1024 * 1024
    assert settings.media.limit_bytes("sticker") == 0  # not a kind that is kept


@pytest.mark.parametrize("secret", ["s3_access_key_id", "s3_secret_access_key", "media_url_secret"])
def test_media_secrets_in_the_file_are_refused(tmp_path: Path, secret: str) -> None:
    path = write(tmp_path, f'{secret} = "abc"\n')
    with pytest.raises(ConfigError, match=f"{secret}.*environment.*KTN_{secret.upper()}"):
        load_settings(path)


def test_an_s3_store_needs_a_bucket_and_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[media]\nbackend = "s3"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "[media] bucket: required" in message
    assert "KTN_S3_ACCESS_KEY_ID: required" in message
    assert "KTN_S3_SECRET_ACCESS_KEY: required" in message

    monkeypatch.setenv("KTN_S3_ACCESS_KEY_ID", "AKIA-test")
    monkeypatch.setenv("KTN_S3_SECRET_ACCESS_KEY", "very-secret")
    settings = load_settings(write(tmp_path, '[media]\nbackend = "s3"\nbucket = "ktn"\n'))
    assert settings.media.bucket == "ktn" and "very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_mb = { sticker = 1 }", "unknown kind 'sticker'"),
        ("max_mb = { photo = -1 }", "is not a size in MB"),
        ('endpoint_url = "s3.example.id"', "must be an http(s):// URL"),
        ('prefix = "../elsewhere/"', "relative key prefix"),
        ("url_ttl_seconds = 7200\norphan_grace_hours = 1", "longer than url_ttl_seconds"),
    ],
)
def test_bad_media_settings_are_named(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(write(tmp_path, f"[media]\n{text}\n"))


def test_the_erasure_hash_key_comes_from_the_environment_or_is_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config import Settings
    from bot.wiring import PDP_SECRET_FILE, pdp_hash_key

    monkeypatch.delenv("KTN_PDP_HASH_SECRET", raising=False)
    made = pdp_hash_key(Settings(data_dir=tmp_path / "data"))
    kept = tmp_path / "data" / PDP_SECRET_FILE
    assert len(made) == 32 and kept.stat().st_mode & 0o777 == 0o600
    assert pdp_hash_key(Settings(data_dir=tmp_path / "data")) == made, "the same after a restart"
    monkeypatch.setenv("KTN_PDP_HASH_SECRET", "rahasia-deployment")
    assert pdp_hash_key(Settings(data_dir=tmp_path / "data")) == b"rahasia-deployment"
