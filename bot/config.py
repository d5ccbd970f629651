"""Typed settings: config.toml, then KTN_* environment variables on top.

Every key in the TOML file can be overridden from the environment with the ``KTN_`` prefix and
``__`` between section and key: ``KTN_DATABASE__URL``, ``KTN_HTTP__PORT``. Secrets are read from
the environment only (``KTN_TELEGRAM_TOKEN`` ...); a secret written into the file is refused.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from storage.types import DEFAULT_BOT

ENV_PREFIX = "KTN_"
ENV_CONFIG = "KTN_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
SECRET_FIELDS = (
    "telegram_token",
    "telegram_webhook_secret",
    "twilio_account_sid",
    "twilio_auth_token",
    "s3_access_key_id",
    "s3_secret_access_key",
    "media_url_secret",
    "pdp_hash_secret",
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
    sqlite_inline: bool = True  # statements on the loop's thread (storage/sqlite_inline.py)

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


DEFAULT_TOKEN_ENV = "KTN_TELEGRAM_TOKEN"  # noqa: S105 - a variable name
_BOT_KEY = re.compile(r"^[a-z0-9_]{1,32}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class BotSettings(Section):
    """One more Telegram bot (``[[telegram.bots]]``): its key, where its token is, its areas.

    The token is a secret: the file names only the environment variable that holds it. The
    areas' sub-areas are served by the same bot unless a sub-area is claimed by another one.
    """

    key: str
    token_env: str
    areas: list[str] = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _BOT_KEY.match(value):
            raise ValueError("must be 1-32 characters of a-z, 0-9 and _")
        if value == DEFAULT_BOT:
            raise ValueError(
                f"{DEFAULT_BOT!r} is the bot of {DEFAULT_TOKEN_ENV}; choose another key"
            )
        return value

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable (letters, digits, _)")
        if value.upper() == DEFAULT_TOKEN_ENV:
            raise ValueError(f"{DEFAULT_TOKEN_ENV} is the default bot's token; name another")
        return value

    @field_validator("areas")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [code.strip() for code in value]
        if any(not code for code in codes):
            raise ValueError("area codes must not be empty")
        return codes


class TelegramSettings(Section):
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    poll_timeout: int = Field(default=30, ge=0, le=60)
    bots: list[BotSettings] = Field(default_factory=list)


# Kinds of outbox messages that may need a Content Template outside WhatsApp's 24-hour window.
TEMPLATE_KINDS = (
    "alert",
    "escalation",
    "status",
    "reminder",
    "patrol",
    "broadcast",
    "recap",
    "notice",
)
_TEMPLATE_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


class WhatsAppSettings(Section):
    enabled: bool = False
    from_number: str | None = None
    public_url: str | None = None
    api_base_url: str = "https://api.twilio.com"
    # Options as buttons (quick replies, lists) inside the 24-hour window; false: numbered text.
    buttons: bool = True
    content_base_url: str = "https://content.twilio.com"  # the Content API's own host
    messages_per_second: float = Field(default=10.0, gt=0)
    templates: dict[str, str] = Field(default_factory=dict)
    delete_media_at_twilio: bool = True
    request_timeout: float = Field(default=15.0, gt=0, le=120)

    @field_validator("from_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        """Any written form of the number, as E.164 (a number without +62 is Indonesian)."""
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value.strip().removeprefix("whatsapp:"), "ID")
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise ValueError("must be a phone number, in E.164 such as +6281100000000")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    @field_validator("public_url", "api_base_url", "content_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @field_validator("templates")
    @classmethod
    def _template_sids(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, sid in value.items():
            if kind not in TEMPLATE_KINDS:
                raise ValueError(f"unknown kind {kind!r}: use {', '.join(TEMPLATE_KINDS)}")
            if not _TEMPLATE_SID.match(sid):
                raise ValueError(f"{kind}: {sid!r} is not a Content Template SID (HX + 32 hex)")
        return value


DEFAULT_MAX_BODY = 1_048_576  # far above any Telegram update (~10 KB) or Twilio form (~3 KB)


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    reuse_port: bool = False
    # The largest webhook body read: Telegram's secret is checked first, then a larger body is
    # answered 413; Twilio's signature covers the body, so a larger one cannot be genuine (403).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=16_384, le=64 * 1_048_576)


class LocaleSettings(Section):
    default: Literal["id", "en"] = "id"
    overrides: Path | None = None


Pillar = Literal["keamanan", "kesehatan", "sosial_ekonomi", "ketahanan_pangan"]


class CategorySettings(Section):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    urgent: bool = False
    escalate_after_minutes: int | None = Field(default=None, ge=1)
    # The KTN pillar (Open311 ``group``); unset: the shipped category's, else sosial_ekonomi.
    pillar: Pillar | None = None
    # Search words (Open311 ``keywords``); unset: the shipped category's, else none.
    keywords: list[str] | None = None
    # Resolving asks the officer for a photo of the result: required, optional or off.
    closure_photo: Literal["required", "optional", "off"] = "optional"

    @field_validator("keywords")
    @classmethod
    def _no_commas(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        words = [word.strip() for word in value]
        if any(not word or "," in word for word in words):
            raise ValueError("each keyword must be a non-empty word or phrase without commas")
        return words


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
    escalation_check_seconds: int = Field(default=30, ge=1)
    # How far an unclaimed report's escalation climbs: 0 to the top area, N at most N areas up.
    escalation_max_level: int = Field(default=0, ge=0, le=10)
    # A claim with no update for this long is offered back to the officers (0: never).
    claim_idle_minutes: int = Field(default=240, ge=0)
    # The most reports one person may hold claimed at once (0: no limit).
    max_open_claims: int = Field(default=5, ge=0)
    max_text_length: int = Field(default=1000, ge=50, le=3500)
    # Days after "selesai" in which the reporter may answer "Belum selesai" (0: never).
    reopen_days: int = Field(default=7, ge=0, le=365)


class SchedulerSettings(Section):
    enabled: bool = True
    timezone: str = "Asia/Jakarta"
    misfire_grace_minutes: int = Field(default=30, ge=0)
    recap_hour: int = Field(default=7, ge=0, le=23)  # coordinators' recaps
    takeover_seconds: float = Field(default=10.0, ge=1, le=300)

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
    # The window the group rate is counted over (Telegram: a minute); the core reads the
    # resulting (messages, seconds) to see when a group's queue is too long (see [surge]).
    telegram_group_window_seconds: float = Field(default=60.0, gt=0, le=3600)


class SurgeSettings(Section):
    """Alerts in a surge (README: Surges): the live report board."""

    # When a group's queue would hold a new alert longer than this, the group gets one live
    # report board (edited in place) instead of one alert per report; 0 turns the board off.
    board_after_seconds: float = Field(default=30.0, ge=0, le=3600)
    # The newest unclaimed tickets listed on the board, each with a claim button.
    board_tickets: int = Field(default=15, ge=1, le=50)


class ProblemSettings(Section):
    """Problem-oriented policing, SARA (README: Masalah (SARA))."""

    # ktn-bot proposes a problem when at least this many reports of one category come from one
    # area (a kelurahan, or an RW where reports are filed by RW) within suggest_days days.
    suggest_min_reports: int = Field(default=3, ge=2, le=100)
    suggest_days: int = Field(default=30, ge=1, le=365)
    # Reporters of a problem's reports are told (naming nobody) when the response starts and
    # when the problem is closed.
    tell_reporters: bool = True
    # An action's owner is reminded this many hours before it is due (0: at the due time).
    remind_hours_before: int = Field(default=24, ge=0, le=24 * 14)
    # How often the leader looks for due reminders, and proposes new suggestions.
    check_seconds: float = Field(default=60.0, ge=1, le=3600)
    suggest_check_seconds: float = Field(default=900.0, ge=10, le=86400)


class Open311Settings(Section):
    """The Open311 GeoReport v2 API (``/open311/v2/...``, bot/web/open311)."""

    enabled: bool = True
    # Reading reports without an api_key; off: every read of reports needs a key (its area's).
    public: bool = False
    # The one jurisdiction served; a request naming another is answered 404.
    jurisdiction_id: str = Field(default="ktn", min_length=1, max_length=100)
    # Decimal places of lat/long in reads without a key (3 ≈ 110 m; 8 = as stored).
    round_location_digits: int = Field(default=3, ge=0, le=8)
    per_key_per_minute: int = Field(default=120, ge=1, le=100_000)
    per_address_per_minute: int = Field(default=60, ge=1, le=100_000)
    # A POST repeating one of the same key within this time is the same report (a client's
    # retry), not a second one; 0 turns this off.
    resubmit_window_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # The public base URL of the API in discovery (else the URL the request came to).
    public_url: str | None = None
    contact: str = "Admin KTN di wilayah Anda"
    key_service: str = "Kunci API dibuat oleh admin KTN: ktn-bot open311 key --area KODE"

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")


class WebSettings(Section):
    """The desk (``/dasbor``, bot/web/desk): the web dashboard for coordinators and officers."""

    enabled: bool = True
    # The public base URL the sign-in links point at (else [whatsapp] public_url, else
    # http://<[http] host>:<port>).
    public_url: str | None = None
    # Map tiles ({z}/{x}/{y}); empty: the markers on a plain background (no tile requests).
    tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tiles_attribution: str = "&copy; OpenStreetMap contributors"
    login_minutes: int = Field(default=10, ge=1, le=60)  # a sign-in link is valid this long
    idle_minutes: int = Field(default=60, ge=5, le=24 * 60)  # a session unused this long ends
    # Sign-in attempts per client address per minute (a wrong or used link counts too).
    login_attempts_per_minute: int = Field(default=10, ge=1, le=10_000)
    page_size: int = Field(default=50, ge=10, le=500)
    map_limit: int = Field(default=5000, ge=100, le=100_000)  # the newest markers shown
    # The numbers of one area and period are computed once in this long (0: every view).
    numbers_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # The largest form the desk reads (sign-in, actions), in bytes; larger: a polite 413. A
    # form with a closure photo may be as large as ``[media] max_mb.photo`` plus this.
    max_form_bytes: int = Field(default=65_536, ge=4096, le=1_048_576)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")


MEDIA_KINDS = ("photo", "video", "voice", "document")  # what a report or broadcast keeps


class MediaSettings(Section):
    """Where files are kept (``bot.media``) and how large they may be."""

    backend: Literal["local", "s3"] = "local"
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    prefix: str = "media/"
    # The largest file taken, per kind, in MB (also capped by each channel's own limit:
    # Telegram lets bots download 20 MB, WhatsApp 16 MB); a kind at 0 is not accepted.
    max_mb: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(MEDIA_KINDS, 20.0))
    url_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    orphan_grace_hours: float = Field(default=24.0, gt=0)
    sweep_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("max_mb")
    @classmethod
    def _kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, mb in value.items():
            if kind not in MEDIA_KINDS:
                raise ValueError(f"unknown kind {kind!r}: use {', '.join(MEDIA_KINDS)}")
            if not 0 <= mb <= 2048:
                raise ValueError(f"{kind}: {mb} is not a size in MB from 0 to 2048")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative key prefix such as media/")
        return value

    def limit_bytes(self, kind: str) -> int:
        """The configured cap for a kind in bytes (0: not accepted, also when not listed)."""
        return int(self.max_mb.get(kind, 0) * 1024 * 1024)


class RetentionSettings(Section):
    """How long each kind of personal data is kept (README: Retention); 0 keeps it forever.
    The leader forgets what is older every hour, ``batch`` rows per transaction."""

    # Redeliveries come within 24 h (Telegram) or minutes (Twilio): two days is the least.
    processed_inbound_days: int = Field(default=7, ge=2)
    # A closed report's reporter, followers, words and exact place; the statistics stay.
    closed_report_personal_days: int = Field(default=730, ge=0)
    media_days: int = Field(default=365, ge=0)  # reports' photos, voice notes, documents
    outbox_text_days: int = Field(default=30, ge=0)  # texts of messages sent
    conversation_days: int = Field(default=30, ge=0)  # idle conversations and their drafts
    report_event_note_days: int = Field(default=365, ge=0)  # free text in reports' trails
    desk_session_days: int = Field(default=30, ge=0)  # desk sessions and sign-in links
    access_log_days: int = Field(default=730, ge=0)  # the log of privileged reads
    batch: int = Field(default=500, ge=10, le=10_000)  # rows per transaction
    pause_ms: int = Field(default=20, ge=0, le=10_000)  # between batches: others get the DB

    def days(self) -> dict[str, int]:
        """Each kind's period in days (``bot.roles.retention.KINDS`` names them)."""
        return {
            name.removesuffix("_days"): value
            for name, value in self.model_dump().items()
            if name.endswith("_days")
        }


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
    surge: SurgeSettings = Field(default_factory=SurgeSettings)
    problems: ProblemSettings = Field(default_factory=ProblemSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    open311: Open311Settings = Field(default_factory=Open311Settings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    telegram_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    twilio_account_sid: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    media_url_secret: SecretStr | None = None
    # The keyed hash of erased people's chat ids (handlers.personal): KTN_PDP_HASH_SECRET.
    pdp_hash_secret: SecretStr | None = None

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
    if loc[:2] == ("telegram", "bots") and len(loc) >= 3 and isinstance(loc[2], int):
        rest = ".".join(str(p) for p in loc[3:])
        return f"[[telegram.bots]] #{loc[2] + 1}" + (f" {rest}" if rest else "")
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
    _refuse_bot_tokens(raw, cfg_path)
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"]
            origin = _env_name(loc) if _env_name(loc) in os.environ else str(cfg_path)
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {_key_name(loc)}: {msg} (from {origin})")
        raise ConfigError(f"invalid configuration in {cfg_path}:\n" + "\n".join(lines)) from None
    problems = telegram_bot_problems(settings) + whatsapp_problems(settings)
    problems += media_problems(settings)
    if problems:
        raise ConfigError(
            f"invalid configuration in {cfg_path}:\n" + "\n".join(f"  {p}" for p in problems)
        )
    settings.config_path = cfg_path.resolve()
    return _resolve_paths(settings, cfg_path.resolve().parent)


def whatsapp_problems(settings: Settings) -> list[str]:
    """What WhatsApp still needs when ``[whatsapp] enabled = true`` (empty when ready or off)."""
    wa = settings.whatsapp
    if not wa.enabled:
        return []
    needed = "required when [whatsapp] enabled = true"
    problems = []
    if not wa.public_url:
        problems.append(f"[whatsapp] public_url: {needed} (the base URL Twilio calls)")
    if not wa.from_number:
        problems.append(f"[whatsapp] from_number: {needed}")
    for secret in ("twilio_account_sid", "twilio_auth_token"):
        if getattr(settings, secret) is None:
            problems.append(f"{ENV_PREFIX}{secret.upper()}: {needed} (environment only)")
    return problems


def media_problems(settings: Settings) -> list[str]:
    """What the media store still needs: a bucket and credentials for S3, a grace period longer
    than a signed link lives (a file sent by link must still be there when it is fetched)."""
    media = settings.media
    problems = []
    if media.orphan_grace_hours * 3600 <= media.url_ttl_seconds:
        problems.append(
            "[media] orphan_grace_hours: must be longer than url_ttl_seconds "
            "(a file sent as a link must outlive the link)"
        )
    if media.backend != "s3":
        return problems
    needed = 'required when [media] backend = "s3"'
    if not media.bucket:
        problems.append(f"[media] bucket: {needed}")
    for secret in ("s3_access_key_id", "s3_secret_access_key"):
        if getattr(settings, secret) is None:
            problems.append(f"{ENV_PREFIX}{secret.upper()}: {needed} (environment only)")
    return problems


def _refuse_bot_tokens(raw: dict[str, Any], cfg_path: Path) -> None:
    """A token written into a ``[[telegram.bots]]`` entry: refused, like every secret."""
    telegram = raw.get("telegram")
    bots = telegram.get("bots") if isinstance(telegram, dict) else None
    for i, entry in enumerate(bots if isinstance(bots, list) else []):
        if isinstance(entry, dict) and "token" in entry:
            raise ConfigError(
                f"{cfg_path}: [[telegram.bots]] #{i + 1} token is a secret and may only come "
                "from the environment; remove it and name its variable in token_env"
            )


def telegram_bot_problems(settings: Settings) -> list[str]:
    """What is wrong across ``[[telegram.bots]]``: keys, token variables or areas used twice."""
    problems = []
    keys: dict[str, int] = {}
    envs: dict[str, str] = {}
    claimed: dict[str, int] = {}
    for number, bot in enumerate(settings.telegram.bots, start=1):
        where = f"[[telegram.bots]] #{number}"
        if bot.key in keys:
            problems.append(f"{where} key: {bot.key!r} is already the key of #{keys[bot.key]}")
        keys.setdefault(bot.key, number)
        env = bot.token_env.upper()
        if env in envs:
            problems.append(
                f"{where} token_env: {bot.token_env} is already the token of {envs[env]!r}"
            )
        envs.setdefault(env, bot.key)
        for code in bot.areas:
            owner = claimed.get(code)
            if owner is not None:
                by = "twice by this bot" if owner == number else f"already by #{owner}"
                problems.append(f"{where} areas: area {code} is claimed {by}")
            claimed.setdefault(code, number)
    return problems


@dataclass(frozen=True, slots=True)
class BotToken:
    """A Telegram bot the process serves: its key (in outbox rows), token and claimed areas."""

    key: str
    token: str
    areas: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never the token
        return f"BotToken(key={self.key!r}, areas={self.areas!r})"


def telegram_bots(settings: Settings, environ: Mapping[str, str] | None = None) -> list[BotToken]:
    """Every bot to run: the default bot (``KTN_TELEGRAM_TOKEN``) if set, then
    ``[[telegram.bots]]`` with their tokens from the environment. ConfigError, one line, when a
    named variable is unset or two bots have the same token."""
    env = os.environ if environ is None else environ
    bots = []
    if settings.telegram_token is not None:
        bots.append(BotToken(DEFAULT_BOT, settings.telegram_token.get_secret_value()))
    for entry in settings.telegram.bots:
        token = (env.get(entry.token_env) or "").strip()
        if not token:
            raise ConfigError(
                f"[[telegram.bots]] key {entry.key!r}: environment variable {entry.token_env} "
                "(its token from BotFather) is not set"
            )
        bots.append(BotToken(entry.key, token, tuple(entry.areas)))
    seen: dict[str, str] = {}
    for bot in bots:
        if bot.token in seen:
            raise ConfigError(
                f"[[telegram.bots]] bots {seen[bot.token]!r} and {bot.key!r} have the same token"
            )
        seen[bot.token] = bot.key
    return bots


def bot_areas(settings: Settings) -> dict[str, str]:
    """Area code -> the key of the bot that claims it (unclaimed areas: the default bot)."""
    return {code: bot.key for bot in settings.telegram.bots for code in bot.areas}
