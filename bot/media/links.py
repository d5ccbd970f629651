"""Short-lived signed links to stored files: how Twilio fetches what the bot sends on WhatsApp.

Twilio sends media only from a URL it fetches itself. The bot gives it
``<[whatsapp] public_url>/media/<token>`` (with ``/<filename>`` for a document, so the recipient
sees its name), where the token carries the file's SHA-256 and an expiry time, signed with
HMAC-SHA256. ``GET /media/<token>`` answers 403 for a forged, damaged or expired token before
anything else is read, 404 when the file is no longer stored, else the bytes with their
content type. The URL holds no personal data: a content hash and a time.

The key is ``KTN_MEDIA_URL_SECRET`` when set, else derived from ``KTN_TWILIO_AUTH_TOKEN``
(HMAC of a fixed label: the token itself never signs anything but Twilio's own requests).
Every worker of a deployment derives the same key, so any of them can serve a link another
one made.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import struct
import time
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bot.media.library import MediaLibrary
from bot.media.store import PREFIX, digest_of

log = logging.getLogger(__name__)

PATH = "/media"
_LABEL = b"ktn-bot media link v1\x00"
_DERIVE = b"ktn-bot media links"
_LENGTH = 32 + 8 + 32  # digest, expiry, signature
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{96}$")  # 72 bytes in unpadded URL-safe base64

wall_clock: Callable[[], float] = time.time  # tests move it to see a link expire


def _now() -> float:
    return wall_clock()


def link_key(media_url_secret: str | None, twilio_auth_token: str | None) -> bytes | None:
    """The signing key: the configured secret, else one derived from Twilio's auth token."""
    if media_url_secret:
        return media_url_secret.encode()
    if twilio_auth_token:
        return hmac.new(twilio_auth_token.encode(), _DERIVE, hashlib.sha256).digest()
    return None


class MediaLinks:
    """Makes and checks signed links under one public base URL."""

    def __init__(
        self,
        key: bytes,
        public_url: str,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = _now,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the media link key must be at least 16 bytes")
        self._key = key
        self.base = public_url.rstrip("/") + PATH
        self.ttl = ttl_seconds
        self.clock = clock

    def __repr__(self) -> str:  # never the key
        return f"MediaLinks(base={self.base!r}, ttl={self.ttl})"

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _LABEL + payload, hashlib.sha256).digest()

    def token(self, ref: str) -> str:
        """A token for the file, valid for ``ttl_seconds`` from now."""
        expires = int(self.clock() + self.ttl)
        payload = bytes.fromhex(digest_of(ref)) + struct.pack(">Q", expires)
        raw = payload + self._sign(payload)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def url(self, ref: str, filename: str | None = None) -> str:
        """The public URL Twilio fetches; ``filename`` (letters, digits, ``._-``) is shown as
        the document's name."""
        url = f"{self.base}/{self.token(ref)}"
        if filename and _SAFE_NAME.match(filename):
            url += "/" + quote(filename)
        return url

    def verify(self, token: str) -> str | None:
        """The file a token names, or None when it is forged, damaged or expired."""
        if not _TOKEN.match(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token)
        except (binascii.Error, ValueError):
            return None
        payload, signature = raw[:40], raw[40:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        (expires,) = struct.unpack(">Q", payload[32:])
        if expires < self.clock():
            return None
        return PREFIX + payload[:32].hex()


def media_routes(library: MediaLibrary, links: MediaLinks) -> list[Route]:
    """``GET``/``HEAD /media/<token>`` and ``/media/<token>/<filename>``."""

    async def serve(request: Request) -> Response:
        ref = links.verify(request.path_params["token"])
        if ref is None:
            return Response(status_code=403)
        blob = await library.stat(ref)
        if blob is None or not await library.store.exists(ref):
            return Response(status_code=404)
        headers = {
            "Content-Length": str(blob.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            # The type is what the sender's app declared: whatever it is, nothing in it runs.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        name = request.path_params.get("name")
        if isinstance(name, str) and _SAFE_NAME.match(name):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        content_type = blob.content_type or "application/octet-stream"
        if request.method == "HEAD":
            return Response(headers=headers, media_type=content_type)
        return StreamingResponse(library.open(ref), headers=headers, media_type=content_type)

    return [
        Route(PATH + "/{token}", serve, methods=["GET"]),
        Route(PATH + "/{token}/{name}", serve, methods=["GET"]),
    ]
