"""Settings -> the core's configuration (the only place the two meet)."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from types import MappingProxyType

from bot.channels.telegram.capabilities import TELEGRAM
from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.config import Settings, bot_areas
from handlers.capabilities import Capabilities
from handlers.config import (
    Category,
    CoreConfig,
    ProblemRules,
    default_keywords,
    default_pillar,
)
from handlers.i18n import Catalog
from storage.types import Channel

# Every channel's capabilities, whether or not this deployment runs it: its contacts, groups
# and outbox rows stay in the database when a channel is switched off.
CHANNELS: Mapping[str, Capabilities] = MappingProxyType(
    {Channel.TELEGRAM.value: TELEGRAM, Channel.WHATSAPP.value: WHATSAPP}
)


def telegram_group_window(settings: Settings) -> tuple[int, float]:
    """Telegram's per-group limit as configured: (messages, seconds), e.g. (20, 60.0)."""
    out = settings.outbox
    seconds = out.telegram_group_window_seconds
    return (max(1, round(out.telegram_group_per_minute * seconds / 60.0)), seconds)


def channels_from(settings: Settings) -> Mapping[str, Capabilities]:
    """Every channel's capabilities, Telegram's group limit as this deployment configured it
    (what the dispatcher paces by is what the core plans with)."""
    telegram = dataclasses.replace(TELEGRAM, group_window=telegram_group_window(settings))
    return MappingProxyType({**CHANNELS, Channel.TELEGRAM.value: telegram})


def core_config_from(settings: Settings) -> CoreConfig:
    """The conversation core's view of the deployment settings."""
    reports = settings.reports
    return CoreConfig(
        catalog=Catalog.load(settings.locale.overrides),
        categories=tuple(
            Category(
                c.key,
                urgent=c.urgent,
                escalate_after_minutes=c.escalate_after_minutes,
                pillar=c.pillar or default_pillar(c.key),
                keywords=tuple(c.keywords) if c.keywords is not None else default_keywords(c.key),
                closure_photo=c.closure_photo,
            )
            for c in reports.categories
        ),
        emergency_numbers=dict(settings.emergency.numbers),
        polsek_numbers=dict(settings.emergency.polsek),
        draft_idle_minutes=reports.draft_idle_minutes,
        duplicate_window_hours=reports.duplicate_window_hours,
        escalate_after_minutes=reports.escalate_after_minutes,
        urgent_escalate_after_minutes=reports.urgent_escalate_after_minutes,
        escalation_max_level=reports.escalation_max_level,
        claim_idle_minutes=reports.claim_idle_minutes,
        max_open_claims=reports.max_open_claims,
        max_text_length=reports.max_text_length,
        reopen_days=reports.reopen_days,
        default_language=settings.locale.default,
        bot_areas=bot_areas(settings),
        channels=channels_from(settings),
        desk_url=desk_url(settings),
        desk_login_minutes=settings.web.login_minutes,
        board_after_seconds=settings.surge.board_after_seconds or None,
        board_tickets=settings.surge.board_tickets,
        problems=ProblemRules(
            suggest_min_reports=settings.problems.suggest_min_reports,
            suggest_days=settings.problems.suggest_days,
            tell_reporters=settings.problems.tell_reporters,
            remind_hours_before=settings.problems.remind_hours_before,
        ),
        pdp_hash_key=pdp_hash_key(settings),
    )


PDP_SECRET_FILE = "pdp_hash_secret"  # noqa: S105 - a file name, not a secret


def pdp_hash_key(settings: Settings) -> bytes:
    """The secret of the keyed hash that remembers erased people: ``KTN_PDP_HASH_SECRET``, or
    else a random one made once and kept in the data folder (``pdp_hash_secret``, readable by
    the owner only). Several machines sharing one database need the variable: each would make
    its own file, and one machine's hashes would mean nothing to the others."""
    if settings.pdp_hash_secret is not None:
        return settings.pdp_hash_secret.get_secret_value().encode()
    path = settings.data_dir / PDP_SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_hex(32)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(made + "\n")
    except FileExistsError:  # another process of this deployment made it first: theirs
        return bytes.fromhex(path.read_text().strip())
    return bytes.fromhex(made)


def desk_url(settings: Settings) -> str | None:
    """Where the desk's sign-in links point: ``[web] public_url``, else ``[whatsapp]
    public_url``, else this server's own address; None when the desk is off."""
    if not settings.web.enabled:
        return None
    if settings.web.public_url:
        return settings.web.public_url
    if settings.whatsapp.public_url:
        return settings.whatsapp.public_url.rstrip("/")
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard listen: link to loopback
        host = "127.0.0.1"
    return f"http://{host}:{settings.http.port}"
