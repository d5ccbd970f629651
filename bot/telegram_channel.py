"""One Telegram bot in the process: PTB Application, polling or webhook, updates to the core."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, BotCommand, BotCommandScopeDefault, Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from bot.metrics import Metrics
from bot.telegram import (
    PerUserProcessor,
    answer_callback,
    coalesce,
    retry_seconds,
    send_reply,
    to_inbound,
)
from handlers.types import Inbound, Outcome, Reply

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_REPLY_WAIT = 10.0  # seconds a direct reply may wait for Telegram's flood control
OnInbound = Callable[[Inbound], Awaitable[Outcome]]
OnMigrate = Callable[[int, int], Awaitable[None]]


class TelegramChannel:
    """Receives updates (polling or webhook), hands them to the core, sends the replies."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        base_file_url: str,
        on_inbound: OnInbound,
        metrics: Metrics,
        mode: str = "polling",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout: int = 30,
        commands: Mapping[str, list[BotCommand]] | None = None,
        bot_key: str = "default",
        on_migrate: OnMigrate | None = None,
    ) -> None:
        self.mode = mode
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_timeout = poll_timeout
        self.commands = commands or {}
        self.bot_key = bot_key
        self._on_inbound = on_inbound
        self._on_migrate = on_migrate
        self._metrics = metrics
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .request(HTTPXRequest(connection_pool_size=64, read_timeout=15, write_timeout=15))
            .get_updates_request(HTTPXRequest(read_timeout=poll_timeout + 10))
            .concurrent_updates(PerUserProcessor(256))
        )
        if mode == "webhook":
            builder = builder.updater(None)
        self.application: Application = builder.build()  # type: ignore[type-arg]
        self.application.add_handler(TypeHandler(Update, self._handle))
        self.application.add_error_handler(self._on_error)

    @property
    def bot(self) -> Bot:
        """The PTB Bot (for the outbox sender)."""
        bot: Bot = self.application.bot
        return bot

    async def start(self) -> None:
        """Connect, register the command menu, then poll or set the webhook."""
        app = self.application
        await app.initialize()
        await self._set_commands()
        await app.start()
        if self.mode == "webhook":
            if self.webhook_url:
                await app.bot.set_webhook(
                    self.webhook_url,
                    secret_token=self.webhook_secret,
                    allowed_updates=Update.ALL_TYPES,
                )
        else:
            assert app.updater is not None
            await app.bot.delete_webhook()
            await app.updater.start_polling(
                poll_interval=0.0,
                timeout=self.poll_timeout,
                allowed_updates=Update.ALL_TYPES,
            )
        log.info("telegram bot @%s started (%s)", app.bot.username, self.mode)

    async def stop(self) -> None:
        """Stop polling, finish the updates in hand, close connections."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    def webhook_route(self, path: str = "/telegram/webhook") -> Route:
        """The Starlette route Telegram posts updates to (403 without the right secret)."""
        return Route(path, self._webhook, methods=["POST"])

    async def _webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        expected = self.webhook_secret or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return Response(status_code=403)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except Exception:  # any malformed body: refuse it, keep serving
            log.info("malformed webhook body refused")
            return Response(status_code=400)
        await self.application.update_queue.put(update)
        return Response()

    async def _set_commands(self) -> None:
        bot = self.application.bot
        for lang, commands in self.commands.items():
            with contextlib.suppress(TelegramError):
                await bot.set_my_commands(
                    commands, scope=BotCommandScopeDefault(), language_code=lang
                )
        if "id" in self.commands:
            with contextlib.suppress(TelegramError):
                await bot.set_my_commands(self.commands["id"])

    async def _handle(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Translate, let the core decide, send its replies, answer a pressed button."""
        message = update.message
        if message is not None and message.migrate_to_chat_id is not None:
            if self._on_migrate is not None:  # the group became a supergroup with a new id
                await self._on_migrate(message.chat.id, message.migrate_to_chat_id)
            return
        inbound = to_inbound(update, self.bot_key)
        if inbound is None:
            return
        started = time.perf_counter()
        outcome = await self._on_inbound(inbound)
        for reply in coalesce(outcome.replies):
            await self._send_patiently(inbound.chat_id, reply)
        if update.callback_query is not None:
            await answer_callback(update.callback_query, outcome.notice)
        elapsed = time.perf_counter() - started
        self._metrics.handling_seconds.labels("telegram").observe(elapsed)
        self._metrics.updates.labels("telegram", "duplicate" if outcome.duplicate else "ok").inc()

    async def _send_patiently(self, chat_id: int, reply: Reply) -> None:
        """Send a direct reply; on a flood-control answer wait as told (a few times at most)."""
        for attempt in range(4):
            try:
                await send_reply(self.application.bot, chat_id, reply)
                return
            except RetryAfter as exc:
                self._metrics.rate_limited.labels("telegram").inc()
                delay = retry_seconds(exc)
                if attempt == 3 or delay > MAX_REPLY_WAIT:
                    raise
                await asyncio.sleep(delay)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log failures without message content (it may hold personal data)."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error(
            "handling update %s failed: %s",
            update_id,
            context.error.__class__.__name__ if context.error else "unknown",
            exc_info=context.error,
        )
        self._metrics.updates.labels("telegram", "error").inc()
