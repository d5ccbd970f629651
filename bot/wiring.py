"""Settings -> the core's configuration (the only place the two meet)."""

from __future__ import annotations

from bot.config import Settings, bot_areas
from handlers.config import Category, CoreConfig
from handlers.i18n import Catalog


def core_config_from(settings: Settings) -> CoreConfig:
    """The conversation core's view of the deployment settings."""
    reports = settings.reports
    return CoreConfig(
        catalog=Catalog.load(settings.locale.overrides),
        categories=tuple(
            Category(c.key, urgent=c.urgent, escalate_after_minutes=c.escalate_after_minutes)
            for c in reports.categories
        ),
        emergency_numbers=dict(settings.emergency.numbers),
        polsek_numbers=dict(settings.emergency.polsek),
        draft_idle_minutes=reports.draft_idle_minutes,
        duplicate_window_hours=reports.duplicate_window_hours,
        escalate_after_minutes=reports.escalate_after_minutes,
        urgent_escalate_after_minutes=reports.urgent_escalate_after_minutes,
        max_text_length=reports.max_text_length,
        default_language=settings.locale.default,
        bot_areas=bot_areas(settings),
    )
