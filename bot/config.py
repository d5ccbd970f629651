"""Typed settings: config.toml, then KTN_* environment variables on top.

Every key in the TOML file can be overridden from the environment with the ``KTN_`` prefix and
``__`` between section and key: ``KTN_DATABASE__URL``, ``KTN_HTTP__PORT``. Secrets are read from
the environment only (``KTN_TELEGRAM_TOKEN`` ...); a secret written into the file is refused.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "KTN_"
ENV_CONFIG = "KTN_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
SECRET_FIELDS = (
    "telegram_token",
    "telegram_webhook_secret",
    "twilio_account_sid",
    "twilio_auth_token",
)


class ConfigError(Exception):
    """A configuration problem, worded for the operator (key and file named)."""


class Section(BaseModel):
    """A config section: unknown keys are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///data/ktn.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=200)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not (
            value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(an async driver is required)"
            )
        return value


class TelegramSettings(Section):
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    poll_timeout: int = Field(default=30, ge=0, le=60)


class WhatsAppSettings(Section):
    enabled: bool = False
    from_number: str | None = None
    public_url: str | None = None
    api_base_url: str = "https://api.twilio.com"
    messages_per_second: float = Field(default=10.0, gt=0)
    templates: dict[str, str] = Field(default_factory=dict)
    delete_media_at_twilio: bool = True


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LocaleSettings(Section):
    default: Literal["id", "en"] = "id"
    overrides: Path | None = None


class CategorySettings(Section):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    urgent: bool = False
    escalate_after_minutes: int | None = Field(default=None, ge=1)


def _default_categories() -> list[CategorySettings]:
    keys = ["keamanan", "kesehatan", "sosial_ekonomi", "ketahanan_pangan", "bencana", "lainnya"]
    return [CategorySettings(key=k, urgent=(k == "bencana")) for k in keys]


class EmergencySettings(Section):
    numbers: dict[str, str] = Field(
        default_factory=lambda: {
            "polisi": "110",
            "darurat": "112",
            "pemadam": "113",
            "ambulans": "119",
        }
    )
    polsek: dict[str, str] = Field(default_factory=dict)


class ReportSettings(Section):
    categories: list[CategorySettings] = Field(default_factory=_default_categories)
    draft_idle_minutes: int = Field(default=60, ge=1)
    duplicate_window_hours: int = Field(default=6, ge=0)
    escalate_after_minutes: int = Field(default=60, ge=1)
    urgent_escalate_after_minutes: int = Field(default=10, ge=1)
    max_text_length: int = Field(default=1000, ge=50, le=3500)


class SchedulerSettings(Section):
    enabled: bool = True
    timezone: str = "Asia/Jakarta"
    misfire_grace_minutes: int = Field(default=30, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class OutboxSettings(Section):
    max_attempts: int = Field(default=8, ge=1)
    sweep_seconds: float = Field(default=5.0, gt=0)
    telegram_per_second: float = Field(default=30.0, gt=0)
    telegram_group_per_minute: float = Field(default=20.0, gt=0)
    telegram_chat_per_second: float = Field(default=1.0, gt=0)


class Settings(BaseSettings):
    """All of ktn-bot's settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    locale: LocaleSettings = Field(default_factory=LocaleSettings)
    emergency: EmergencySettings = Field(default_factory=EmergencySettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)

    telegram_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    twilio_account_sid: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None

    config_path: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the file's values (passed in as init kwargs)."""
        return (env_settings, init_settings)


def _locate(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_CONFIG)
    return Path(env) if env else DEFAULT_CONFIG


def _key_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 2:
        return f"[{parts[0]}] {'.'.join(parts[1:])}"
    return parts[0] if parts else "(root)"


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p) for p in loc).upper()


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths (data folder, SQLite file, overrides) are relative to the config file."""
    if not settings.data_dir.is_absolute():
        settings.data_dir = (base / settings.data_dir).resolve()
    url = settings.database.url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        rest = url[len(prefix) :]
        if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
            settings.database.url = prefix + str((base / rest).resolve())
    if settings.locale.overrides is not None and not settings.locale.overrides.is_absolute():
        settings.locale.overrides = (base / settings.locale.overrides).resolve()
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the config file and the environment; raise ConfigError naming the key and the file."""
    cfg_path = _locate(path)
    try:
        raw: dict[str, Any] = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {cfg_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read: {exc.strerror}") from exc

    for secret in SECRET_FIELDS:
        if secret in raw:
            raise ConfigError(
                f"{cfg_path}: key {secret} is a secret and may only come from the environment "
                f"({ENV_PREFIX}{secret.upper()}); remove it from the file"
            )
    raw.pop("config_path", None)
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"]
            origin = _env_name(loc) if _env_name(loc) in os.environ else str(cfg_path)
            lines.append(f"  {_key_name(loc)}: {err['msg']} (from {origin})")
        raise ConfigError(f"invalid configuration in {cfg_path}:\n" + "\n".join(lines)) from None
    settings.config_path = cfg_path.resolve()
    return _resolve_paths(settings, cfg_path.resolve().parent)
