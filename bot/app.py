"""`ktn-bot run`: the one async process, all wiring in one place.

Start-up order: database (schema checked), web server, outbox dispatcher, channels. Shutdown is
the reverse, on SIGTERM/SIGINT: channels stop taking updates, the dispatcher finishes the sends in
hand, the web server closes, the database is disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute
from telegram.error import TelegramError

from bot.config import Settings
from bot.database import Database, connect, prepare_schema
from bot.metrics import Metrics
from bot.outbox import ChannelLimits, Dispatcher, Sender
from bot.serving import bind_socket, make_server
from bot.telegram import TelegramSender, bot_commands
from bot.telegram_channel import TelegramChannel
from bot.web import build_app
from bot.wiring import core_config_from
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.core import process
from handlers.types import Inbound, Outcome
from storage.groups import migrate_chat
from storage.types import utcnow

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A channel could not start (unreachable API, bad token); worded for the operator."""


def make_on_inbound(
    db: Database, core: CoreConfig, dispatcher: Dispatcher, bot_username: Callable[[], str | None]
) -> Callable[[Inbound], Awaitable[Outcome]]:
    """The one seam between adapters and the core: process, then wake the dispatcher."""

    async def on_inbound(inbound: Inbound) -> Outcome:
        ctx = Context(config=core, now=utcnow(), bot_username=bot_username())
        outcome = await process(db.sessions, inbound, ctx)
        if outcome.outbox_ids:
            dispatcher.notify()
        return outcome

    return on_inbound


def make_on_migrate(db: Database) -> Callable[[int, int], Awaitable[None]]:
    """Keep a group's link (and its unsent messages) when Telegram gives it a new id."""

    async def on_migrate(old: int, new: int) -> None:
        async with db.sessions() as session:
            await migrate_chat(session, "telegram", old, new)
            await session.commit()
        log.info("group chat migrated to a supergroup; stored id updated")

    return on_migrate


def telegram_limits(settings: Settings) -> ChannelLimits:
    """Telegram's flood limits as configured."""
    out = settings.outbox
    return ChannelLimits.rates(
        per_second=out.telegram_per_second,
        group_per_minute=out.telegram_group_per_minute,
        chat_per_second=out.telegram_chat_per_second,
    )


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then shut down in order."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    db = connect(settings)
    metrics = Metrics()
    tasks: list[asyncio.Task[None]] = []
    telegram: TelegramChannel | None = None
    try:
        await prepare_schema(db, settings.database.url)
        core = core_config_from(settings)
        senders: dict[str, Sender] = {}
        dispatcher = Dispatcher(
            db.sessions,
            senders,
            {"telegram": telegram_limits(settings)},
            metrics=metrics,
            max_attempts=settings.outbox.max_attempts,
            sweep_seconds=settings.outbox.sweep_seconds,
        )
        routes: list[BaseRoute] = []
        if settings.telegram_token is not None:
            holder: list[TelegramChannel] = []
            telegram = TelegramChannel(
                token=settings.telegram_token.get_secret_value(),
                base_url=settings.telegram.base_url,
                base_file_url=settings.telegram.base_file_url,
                on_inbound=make_on_inbound(db, core, dispatcher, lambda: holder[0].bot.username),
                metrics=metrics,
                mode=settings.telegram.mode,
                webhook_url=settings.telegram.webhook_url,
                webhook_secret=(
                    settings.telegram_webhook_secret.get_secret_value()
                    if settings.telegram_webhook_secret
                    else None
                ),
                poll_timeout=settings.telegram.poll_timeout,
                commands=bot_commands(core.catalog.text),
                on_migrate=make_on_migrate(db),
            )
            holder.append(telegram)
            senders["telegram"] = TelegramSender(telegram.bot)
            if settings.telegram.mode == "webhook":
                routes.append(telegram.webhook_route())
        else:
            log.warning("no KTN_TELEGRAM_TOKEN set: Telegram is off (README: Creating the bot)")

        server = make_server(build_app(db, metrics.registry, routes))
        sock = bind_socket(settings.http.host, settings.http.port)
        log.info("listening on http://%s:%d", *sock.getsockname()[:2])
        tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="http"))
        if telegram is not None:
            try:
                await telegram.start()
            except TelegramError as exc:
                raise StartupError(
                    f"cannot start the Telegram bot via {settings.telegram.base_url}: "
                    f"{exc.__class__.__name__}: {exc.message}"
                ) from None
        tasks.append(asyncio.create_task(dispatcher.run(stop), name="outbox"))
        await _until_stopped(stop, tasks)
        log.info("shutting down")
        if telegram is not None:
            await telegram.stop()
            telegram = None
        stop.set()
        server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if telegram is not None:
            with contextlib.suppress(Exception):
                await telegram.stop()
        for task in tasks:
            task.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await db.close()
    log.info("stopped")


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the stop signal, or for a component that ended on its own (then raise its error)."""
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    for task in done:
        if task is not stopping and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
