"""The twilio REST client on aiohttp, as ktn-bot uses it (imported only when WhatsApp is on)."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.channels.whatsapp.content import CONTENT_API

http_log = logging.getLogger("bot.channels.whatsapp.http")  # twilio logs every request at INFO


class TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's aiohttp client, minus its three problems: it passes ``auth=BasicAuth(...)``,
    deprecated in aiohttp 3.14, it ignores its own ``timeout``, and it sends a JSON
    request (the Content API's) as a form. Retries stay off: a retried POST can send a message
    twice; the dispatcher retries instead."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's signature
        allow_redirects: bool = False,
    ) -> Any:
        """The same request, with the Authorization header set here, a real timeout, and a JSON
        body where twilio asks for one (its synchronous client does that, the async one not)."""
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        body: object = data
        if data is not None and headers.get("Content-Type") == "application/json":
            body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return await super().request(
            method,
            url,
            params=params,
            data=body,
            headers=headers,
            auth=None,
            timeout=timeout or self.timeout,
            allow_redirects=allow_redirects,
        )


def make_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str,
    timeout: float,
    content_base_url: str = CONTENT_API,
) -> Client:
    """The twilio REST client on our HTTP client; ``api_base_url`` (messages) and
    ``content_base_url`` (the Content API's own host) decide the hosts alone (TWILIO_EDGE /
    TWILIO_REGION from the environment would rewrite them)."""
    if not http_log.isEnabledFor(logging.DEBUG):
        http_log.setLevel(logging.WARNING)
    client = Client(
        account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout, logger=http_log)
    )
    client.edge = None
    client.region = None
    client.api.base_url = api_base_url.rstrip("/")
    client.content.base_url = content_base_url.rstrip("/")
    return client
