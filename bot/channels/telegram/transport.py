"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

PTB lets a bot bring its own networking backend (``telegram.request.BaseRequest``). Measured on
this machine (bench/bench.py, P1): a Bot API call through PTB's default ``HTTPXRequest`` costs
~3.5 ms of CPU with 50 calls in flight, most of it in httpcore's pool bookkeeping; the same call
through this class costs ~0.5 ms. The bot makes one or two calls per resident message, so the
transport was most of its CPU. PTB still builds every request and parses every answer (errors,
``retry_after``, migrations); this class only moves the bytes.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import urllib.parse
import urllib.request
from typing import Any

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+")


class AiohttpRequest(BaseRequest):
    """A pooled aiohttp session behind PTB's request interface (one per Bot)."""

    def __init__(
        self,
        connection_pool_size: int = 64,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds a long poll's own timeout to it)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (again after a shutdown, or on another event loop)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # As httpx did: certifi's CA bundle, and a proxy named by the environment (read once
            # per origin, see _env_proxy: aiohttp's trust_env reads ~/.netrc and the environment
            # again in a worker thread for every request, a third of the bot's CPU under load).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=_tls()),
                headers={"User-Agent": self.USER_AGENT},
            )
            self._loop = loop
            self._proxies.clear()

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; PTB's TimedOut / NetworkError for what went wrong on the way."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        # aiohttp bounds the wait for a pooled connection plus connecting (``connect``) and each
        # read; a write has no timeout of its own, so a request is bounded by the sum. Not an
        # upload: a large file on a slow link may take longer and is still making progress.
        parts = (read, write, connect, pool)
        timeout = aiohttp.ClientTimeout(
            total=None if files or None in parts else sum(p for p in parts if p is not None),
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        target = urllib.parse.urlsplit(url)
        origin = target.scheme, target.netloc
        if origin not in self._proxies:
            self._proxies[origin] = _env_proxy(target.scheme, target.hostname)
        try:
            async with self._session.request(
                method,
                url,
                data=_body(request_data),
                timeout=timeout,
                proxy=self._proxies[origin],
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # a connect timeout's text holds the URL, and so the token
            raise TimedOut(f"Timed out: {_without_token(err)}" if str(err) else None) from None
        except aiohttp.ClientError as err:  # its URL holds the token: not in the text, no cause
            raise NetworkError(f"aiohttp.{type(err).__name__}: {_without_token(err)}") from None


def _env_proxy(scheme: str, host: str | None) -> str | None:
    """The HTTP proxy the environment names for a scheme and host (``HTTPS_PROXY``/
    ``HTTP_PROXY``, ``NO_PROXY``; credentials in its URL are sent as ``Proxy-Authorization``),
    as httpx and aiohttp's ``trust_env`` read them; none when it names none or bypasses the
    host."""
    named = urllib.request.getproxies().get(scheme)
    if not named or host is None or urllib.request.proxy_bypass(host):
        return None
    return named


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context with certifi's CA bundle (slim images may have no system certificates),
    shared by every transport of the process: each would otherwise parse the bundle again."""
    return ssl.create_default_context(cafile=certifi.where())


def _without_token(err: Exception) -> str:
    """An error's text with any Bot API token in it masked."""
    return _TOKEN_IN_PATH.sub("/bot<token>", str(err))


def _given(value: object, default: float | None) -> float | None:
    """A timeout given for this call, or the default when PTB passed none."""
    if isinstance(value, DefaultValue):
        return default
    return value  # type: ignore[return-value]


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as PTB prepared them; multipart when there are files to upload."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    if not request_data.contains_files:
        return fields
    form = aiohttp.FormData(fields, quote_fields=False)  # file names as they are, as httpx
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
