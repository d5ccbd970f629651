"""`ktn-bot run`: the one async process, all wiring in one place.

Start-up order: database (schema checked), the media store, web server, channels, then two
roles that each run on one worker of the deployment (a PostgreSQL advisory lock; always this
process on SQLite): the sender (the outbox dispatcher) and the leader (reminder/patrol
scheduler, whose first sweep queues what came due while down, escalation sweeps, recaps, the
media store's sweep; off with ``[scheduler] enabled = false``). Shutdown on SIGTERM/SIGINT: the
roles end (the sender finishes the sends in hand), channels stop taking updates, the web server
closes, the media store and the database are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

from starlette.routing import BaseRoute
from telegram.error import TelegramError

from bot.channels.telegram.capabilities import TELEGRAM
from bot.channels.telegram.channel import WEBHOOK_PATH, TelegramChannel
from bot.channels.telegram.files import TelegramFiles
from bot.channels.telegram.limited import LimitedRequest
from bot.channels.telegram.render import bot_commands
from bot.channels.telegram.sender import TelegramSender
from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.channels.whatsapp.channel import REPLIES as WHATSAPP_REPLIES
from bot.channels.whatsapp.channel import WhatsAppChannel, WhatsAppConfig
from bot.config import (
    MEDIA_KINDS,
    BotToken,
    ConfigError,
    Settings,
    bot_areas,
    telegram_bots,
    whatsapp_problems,
)
from bot.database import Database, connect, prepare_schema
from bot.delivery.dispatcher import BotSenders, Dispatcher, Sender
from bot.delivery.shared_limits import SharedLimiter
from bot.delivery.waker import Notifier, Waker
from bot.delivery.windows import ChannelLimits
from bot.inbound import make_on_inbound, make_on_undelivered
from bot.media.intake import Limits
from bot.media.library import MediaLibrary, make_library
from bot.media.links import MediaLinks, link_key, media_routes
from bot.metrics import Metrics
from bot.roles.duties import make_leader_duties, make_sender_job
from bot.roles.leader import SCHEDULER_LOCK, SENDER_LOCK, Leadership
from bot.roles.scheduler import ReminderScheduler
from bot.web.app import build_app
from bot.web.desk import Desk
from bot.web.open311 import Open311Api
from bot.web.serving import bind_socket, make_server
from bot.wiring import core_config_from, telegram_group_window
from handlers.commands import GROUP_MENU
from handlers.config import CoreConfig
from storage.areas import known_codes
from storage.db import is_sqlite
from storage.groups import migrate_chat
from storage.outbox import OUTBOX_CHANNEL
from storage.types import DEFAULT_BOT

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A channel could not start (unreachable API, bad token); worded for the operator."""


def make_on_migrate(db: Database) -> Callable[[int, int], Awaitable[None]]:
    """Keep a group's link (and its unsent messages) when Telegram gives it a new id."""

    async def on_migrate(old: int, new: int) -> None:
        async with db.sessions() as session:
            await migrate_chat(session, "telegram", old, new)
            await session.commit()
        log.info("group chat migrated to a supergroup; stored id updated")

    return on_migrate


def whatsapp_limits(settings: Settings) -> ChannelLimits:
    """Twilio's pace for our sender: [whatsapp] messages_per_second, no per-chat window."""
    return ChannelLimits.rates(per_second=settings.whatsapp.messages_per_second)


def whatsapp_config(settings: Settings) -> WhatsAppConfig:
    """The WhatsApp channel's settings; StartupError naming what is missing."""
    problems = whatsapp_problems(settings)
    if problems:
        raise StartupError("WhatsApp is enabled but not configured:\n  " + "\n  ".join(problems))
    wa = settings.whatsapp
    assert wa.public_url is not None
    assert wa.from_number is not None
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    return WhatsAppConfig(
        account_sid=settings.twilio_account_sid.get_secret_value(),
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=wa.from_number,
        public_url=wa.public_url,
        api_base_url=wa.api_base_url,
        buttons=wa.buttons,
        content_base_url=wa.content_base_url,
        delete_media_at_twilio=wa.delete_media_at_twilio,
        request_timeout=wa.request_timeout,
        messages_per_second=wa.messages_per_second,
        templates=dict(wa.templates),
    )


def media_limits(settings: Settings) -> dict[str, int]:
    """``[media] max_mb`` in bytes per kind (0: not accepted)."""
    return {kind: settings.media.limit_bytes(kind) for kind in MEDIA_KINDS}


def media_links(settings: Settings) -> MediaLinks | None:
    """The signer of the links Twilio fetches outbound files from (WhatsApp only): keyed by
    ``KTN_MEDIA_URL_SECRET``, else by a key derived from ``KTN_TWILIO_AUTH_TOKEN``."""
    wa = settings.whatsapp
    if not wa.enabled or wa.public_url is None:
        return None
    secret = settings.media_url_secret
    token = settings.twilio_auth_token
    key = link_key(
        secret.get_secret_value() if secret else None,
        token.get_secret_value() if token else None,
    )
    if key is None:
        return None
    return MediaLinks(key, wa.public_url, settings.media.url_ttl_seconds)


def make_scheduler(
    settings: Settings,
    db: Database,
    core: CoreConfig,
    dispatcher: Notifier,
    metrics: Metrics | None = None,
) -> ReminderScheduler | None:
    """The reminder/patrol scheduler, or None when ``[scheduler] enabled`` is false; the
    reminders and areas that fail are counted in ``metrics``."""
    if not settings.scheduler.enabled:
        log.info("scheduler disabled in this process ([scheduler] enabled = false)")
        return None
    return ReminderScheduler(
        db.sessions,
        core,
        misfire_grace=timedelta(minutes=settings.scheduler.misfire_grace_minutes),
        default_tz=settings.scheduler.timezone,
        notify=dispatcher.notify,
        on_failure=metrics.item_failed if metrics is not None else None,
    )


# A chat whose flood window is full for longer than this gets its rows back in the queue (due
# when it has room) rather than held by the sender: a group's queue stays visible to the core.
HOLD_SECONDS = 2.0


def telegram_limits(settings: Settings) -> ChannelLimits:
    """Telegram's flood limits as configured."""
    out = settings.outbox
    limits = ChannelLimits.rates(
        per_second=out.telegram_per_second,
        chat_per_second=out.telegram_chat_per_second,
    )
    return dataclasses.replace(limits, group_window=telegram_group_window(settings))


def shared_limits(db: Database, settings: Settings, token: str) -> LimitedRequest:
    """PTB requests that count every send against the deployment-wide limits (PostgreSQL)."""
    limiter = SharedLimiter(db.engine, telegram_limits(settings))
    return LimitedRequest(
        limiter,
        token.split(":", 1)[0],
        connection_pool_size=128,
        pool_timeout=30,  # a busy worker waits for a connection rather than drop a reply
        read_timeout=15,
        write_timeout=15,
    )


def webhook_path(bot_key: str) -> str:
    """Where Telegram posts a bot's updates: /telegram/webhook for the default bot (as before
    several bots), /telegram/webhook/<key> for the others."""
    return WEBHOOK_PATH if bot_key == DEFAULT_BOT else f"{WEBHOOK_PATH}/{bot_key}"


def webhook_url(settings: Settings, bot_key: str) -> str | None:
    """The public URL a bot registers with setWebhook: ``[telegram] webhook_url`` for the
    default bot, that URL plus ``/<key>`` for the others."""
    base = settings.telegram.webhook_url
    if base is None or bot_key == DEFAULT_BOT:
        return base
    return f"{base.rstrip('/')}/{bot_key}"


def make_telegram(
    *,
    settings: Settings,
    db: Database,
    core: CoreConfig,
    waker: Notifier,
    dispatcher: Notifier,
    reminders: ReminderScheduler | None,
    metrics: Metrics,
    bot: BotToken,
    shared: bool,
    media: MediaLibrary | None = None,
) -> TelegramChannel:
    """One bot's PTB Application: its own polling or webhook, updates tagged with its key."""
    holder: list[TelegramChannel] = []
    files = (
        None
        if media is None
        else TelegramFiles(media, bot.key, Limits.of(TELEGRAM, media_limits(settings)))
    )
    channel = TelegramChannel(
        token=bot.token,
        bot_key=bot.key,
        request=shared_limits(db, settings, bot.token) if shared else None,
        base_url=settings.telegram.base_url,
        base_file_url=settings.telegram.base_file_url,
        on_inbound=make_on_inbound(
            db.sessions,
            core,
            waker,
            metrics=metrics,
            scheduler=reminders,
            bot_key=bot.key,
            bot_username=lambda: holder[0].bot.username,
            media=media,
        ),
        metrics=metrics,
        mode=settings.telegram.mode,
        webhook_url=webhook_url(settings, bot.key),
        webhook_secret=(
            settings.telegram_webhook_secret.get_secret_value()
            if settings.telegram_webhook_secret
            else None
        ),
        poll_timeout=settings.telegram.poll_timeout,
        commands=bot_commands(core.catalog.text),
        group_commands=bot_commands(core.catalog.text, GROUP_MENU),
        on_migrate=make_on_migrate(db),
        on_undelivered=make_on_undelivered(db, dispatcher, bot.key),
        max_body=settings.http.max_body_bytes,
        files=files,
    )
    holder.append(channel)
    return channel


async def check_bot_areas(db: Database, settings: Settings) -> None:
    """Warn about area codes in ``[[telegram.bots]]`` that are not in the database (a typo, or
    areas not imported yet): nobody is routed by them."""
    claimed = bot_areas(settings)
    if not claimed:
        return
    async with db.sessions() as session:
        known = await known_codes(session, claimed)
    for code in sorted(set(claimed) - known):
        log.warning("[[telegram.bots]] %s claims area %s: not imported", claimed[code], code)


async def start_telegram(settings: Settings, channels: list[TelegramChannel]) -> None:
    """Start every bot; StartupError naming the bot that could not start."""
    for channel in channels:
        try:
            await channel.start()
        except TelegramError as exc:
            which = "" if channel.bot_key == DEFAULT_BOT else f" {channel.bot_key!r}"
            # PTB's InvalidToken quotes the token: never print a secret.
            reason = exc.message.replace(channel.bot.token, "<token>")
            raise StartupError(
                f"cannot start the Telegram bot{which} via {settings.telegram.base_url}: "
                f"{exc.__class__.__name__}: {reason}"
            ) from None


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
    telegrams: list[TelegramChannel] = []
    whatsapp: WhatsAppChannel | None = None
    media: MediaLibrary | None = None
    sock: socket.socket | None = None
    try:
        wa_config = whatsapp_config(settings) if settings.whatsapp.enabled else None
        try:
            bots = telegram_bots(settings)
        except ConfigError as exc:
            raise StartupError(str(exc)) from None
        await prepare_schema(db, settings.database.url)
        await check_bot_areas(db, settings)
        media = make_library(settings, db.sessions)
        try:
            await media.start()
        except Exception as exc:  # an unreachable bucket, a folder that cannot be made
            raise StartupError(
                f"cannot open the media store ([media] backend = {settings.media.backend!r}): "
                f"{exc.__class__.__name__}"
            ) from None
        core = core_config_from(settings)
        senders: dict[str, Sender] = {}
        limits = {"telegram": telegram_limits(settings)}
        dispatcher = Dispatcher(
            db.sessions,
            senders,
            limits,
            metrics=metrics,
            max_attempts=settings.outbox.max_attempts,
            sweep_seconds=settings.outbox.sweep_seconds,
            hold_seconds=HOLD_SECONDS,
        )
        shared = not is_sqlite(settings.database.url)  # several workers may share this database
        waker = Waker(db.engine, dispatcher, shared)
        check = settings.scheduler.takeover_seconds / 2
        sender = Leadership(
            settings.database.url,
            SENDER_LOCK,
            "sender",
            check_seconds=check,
            listeners={OUTBOX_CHANNEL: dispatcher.notify},
        )
        leader = Leadership(
            settings.database.url,
            SCHEDULER_LOCK,
            "scheduler",
            enabled=settings.scheduler.enabled,
            check_seconds=check,
            on_change=lambda leading: metrics.leader.set(int(leading)),
            yield_to=sender,
        )
        routes: list[BaseRoute] = []
        reminders = make_scheduler(settings, db, core, waker, metrics)
        by_bot = BotSenders()
        for bot in bots:  # one PTB Application per bot token, all in this process
            channel = make_telegram(
                settings=settings,
                db=db,
                core=core,
                waker=waker,
                dispatcher=dispatcher,
                reminders=reminders,
                metrics=metrics,
                bot=bot,
                shared=shared,
                media=media,
            )
            telegrams.append(channel)
            by_bot.by_bot[bot.key] = TelegramSender(channel.bot, db.sessions, channel.files)
            if settings.telegram.mode == "webhook":
                routes.append(channel.webhook_route(webhook_path(bot.key)))
        if telegrams:
            senders["telegram"] = by_bot
            if settings.telegram_token is None:
                log.info(
                    "no KTN_TELEGRAM_TOKEN: areas no [[telegram.bots]] entry claims have no bot"
                )
        else:
            log.warning("no KTN_TELEGRAM_TOKEN set: Telegram is off (README: Creating the bot)")
        if wa_config is not None:
            links = media_links(settings)
            whatsapp = WhatsAppChannel(
                wa_config,
                db.sessions,
                core,
                on_inbound=make_on_inbound(
                    db.sessions,
                    core,
                    waker,
                    metrics=metrics,
                    scheduler=reminders,
                    queued=WHATSAPP_REPLIES,
                    media=media,
                ),
                metrics=metrics,
                max_body=settings.http.max_body_bytes,
                media=media,
                links=links,
                limits=Limits.of(WHATSAPP, media_limits(settings)),
            )
            if links is not None:
                routes.extend(media_routes(media, links))
            await whatsapp.start()
            senders["whatsapp"] = whatsapp.sender
            limits["whatsapp"] = whatsapp_limits(settings)
            routes.extend(whatsapp.routes())

        if settings.open311.enabled:
            routes.extend(
                Open311Api(
                    db.sessions,
                    core,
                    settings.open311,
                    notify=waker.notify,
                    news_by_phone=settings.whatsapp.enabled,
                    max_body=settings.http.max_body_bytes,
                ).routes()
            )
        if settings.web.enabled:  # the desk (/dasbor): coordinators' and officers' web dashboard
            desk = Desk(
                db.sessions,
                core,
                settings.web,
                notify=waker.notify,
                media=media,
                photo_limit=settings.media.limit_bytes("photo"),  # a closure photo's largest
            )
            routes.extend(desk.routes())
        server = make_server(
            build_app(db, metrics.registry, routes, roles={"leader": leader, "sender": sender})
        )
        sock = bind_socket(
            settings.http.host, settings.http.port, reuse_port=settings.http.reuse_port
        )
        log.info("listening on http://%s:%d", *sock.getsockname()[:2])
        tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="http"))
        await start_telegram(settings, telegrams)
        sender_job = make_sender_job(db, dispatcher, shared, settings.scheduler.takeover_seconds)
        tasks.append(asyncio.create_task(sender.run(stop, sender_job), name="outbox"))
        duties = make_leader_duties(settings, db, core, waker, metrics, reminders, media)
        tasks.append(asyncio.create_task(leader.run(stop, duties), name="scheduler"))
        await _until_stopped(stop, tasks)
        log.info("shutting down")
        stop.set()
        # The sender finishes the sends in hand (every message of a reply) while the bot can
        # still send; rows committed from here on wait for the next sender.
        await asyncio.gather(*(t for t in tasks if t.get_name() != "http"), return_exceptions=True)
        while telegrams:
            await telegrams.pop().stop()
        server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        if whatsapp is not None:  # after the dispatcher: it sends through this channel
            await whatsapp.close()
            whatsapp = None
    finally:
        for channel in telegrams:
            with contextlib.suppress(Exception):
                await channel.stop()
        for task in tasks:
            task.cancel()
        # A failed start-up (a bot that cannot start) must not leave the listening socket open.
        await asyncio.gather(*tasks, return_exceptions=True)
        if sock is not None:
            sock.close()
        if whatsapp is not None:
            with contextlib.suppress(Exception):
                await whatsapp.close()
        if media is not None:  # after every channel and the dispatcher: they read from it
            with contextlib.suppress(Exception):
                await media.close()
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
