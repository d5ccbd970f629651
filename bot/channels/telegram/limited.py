"""Telegram's HTTP transport with the deployment-wide flood limits (several workers on
PostgreSQL): every send method takes its slots in ``bot.delivery.shared_limits`` first."""

from __future__ import annotations

import logging
from typing import Any

from telegram.request import RequestData

from bot.channels.telegram.transport import AiohttpRequest
from bot.delivery.shared_limits import SharedLimiter

log = logging.getLogger(__name__)


SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "sendlocation",
        "senddocument",
        "sendvoice",
        "sendaudio",
        "sendvideo",
        "sendmediagroup",
    }
)


class LimitedRequest(AiohttpRequest):
    """ktn-bot's PTB request that takes deployment-wide slots before every send method."""

    def __init__(self, limiter: SharedLimiter, bot: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limiter = limiter
        self.bot = bot

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        """Send, holding the slots of this bot (and group) while the request is in flight."""
        api_method = url.rsplit("/", 1)[-1].lower()
        chat_id = _chat_id(request_data)
        if api_method not in SEND_METHODS or chat_id is None:
            return await super().do_request(url, method, request_data, *args, **kwargs)
        slots = await self.limiter.acquire(self.limiter.scopes(self.bot, chat_id))
        try:
            return await super().do_request(url, method, request_data, *args, **kwargs)
        finally:
            await self.limiter.release(slots)


def _chat_id(request_data: RequestData | None) -> int | None:
    """The numeric chat id a request is addressed to (None for @usernames or none)."""
    if request_data is None:
        return None
    value = request_data.parameters.get("chat_id")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
