"""The per-message context the adapters hand to the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from handlers.config import CoreConfig
from storage.types import DEFAULT_BOT, utcnow


@dataclass(frozen=True, slots=True)
class Context:
    """Deployment settings plus this message's clock (tests inject ``now``).

    ``bot_username`` (Telegram, without "@") decides which ``/cmd@name`` commands in groups are
    ours and builds t.me links; ``bot`` names the bot in outbox rows.
    """

    config: CoreConfig
    now: datetime = field(default_factory=utcnow)
    bot_username: str | None = None
    bot: str = DEFAULT_BOT

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Context.now must be an aware datetime")
