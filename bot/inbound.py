"""The one inbound seam: every channel hands each neutral message to ``on_inbound``.

It runs the core (``handlers.core.process``), then what follows a commit: the dispatcher is woken
for new outbox rows, the scheduler syncs when a reminder or patrol rotation changed, the
handling is measured; when the message cannot be processed at all, the sender hears a short
apology in their language instead of silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.database import Database
from bot.delivery.waker import Notifier
from bot.roles.scheduler import ReminderScheduler
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.core import process
from handlers.types import Inbound, Outcome, Reply
from storage import outbox
from storage.types import DEFAULT_BOT, OutboxKind, utcnow

log = logging.getLogger(__name__)


def make_on_inbound(
    db: Database,
    core: CoreConfig,
    dispatcher: Notifier,
    bot_username: Callable[[], str | None],
    scheduler: ReminderScheduler | None = None,
    bot_key: str = DEFAULT_BOT,
) -> Callable[[Inbound], Awaitable[Outcome]]:
    """The one seam between adapters and the core: process, then wake the dispatcher (and
    update the scheduler when a reminder or patrol rotation changed). ``bot_key`` names the
    bot the messages came to."""

    async def on_inbound(inbound: Inbound) -> Outcome:
        ctx = Context(config=core, now=utcnow(), bot_username=bot_username(), bot=bot_key)
        try:
            outcome = await process(db.sessions, inbound, ctx)
        except Exception as exc:  # the user hears of it; the log gets the kind, not the content
            log.error("a %s message could not be processed: %r", inbound.channel, type(exc))
            return failure_outcome(core, inbound)
        if outcome.outbox_ids:
            dispatcher.notify()
        if scheduler is not None and scheduler.running and outcome.schedules_changed:
            await scheduler.sync()
        return outcome

    return on_inbound


def failure_outcome(core: CoreConfig, inbound: Inbound) -> Outcome:
    """'Sorry, not saved, send it again' in the sender's language, when processing failed."""
    lang = (inbound.language_code or "")[:2].lower()
    text = core.catalog.text(
        lang if lang in core.catalog.languages else core.default_language, "common.failed"
    )
    return Outcome(replies=[Reply(text)], notice=text, failed=True)


def make_on_undelivered(
    db: Database, dispatcher: Notifier, bot_key: str = DEFAULT_BOT
) -> Callable[[int, Reply], Awaitable[None]]:
    """A direct reply Telegram would not take (5xx, timeouts, long flood waits) goes durable,
    through the bot that should have sent it."""

    async def on_undelivered(chat_id: int, reply: Reply) -> None:
        async with db.sessions() as session:
            outbox.enqueue(
                session,
                channel="telegram",
                chat_id=chat_id,
                kind=OutboxKind.REPLY,
                reply=reply,
                bot=bot_key,
            )
            await session.commit()
        dispatcher.notify()

    return on_undelivered
