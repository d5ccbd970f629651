"""The desk's forms read within bounds, and a closure photo checked before it is kept.

Every desk POST (the sign-in button, the actions, the closure photo) is read through
``bot.web.app.read_body``, the webhooks' bounded reader: a declared or streamed body over the
limit stops the read (``BodyTooLarge``; the desk answers a polite 413) and nothing of it is
parsed. What was read is then parsed by Starlette from those bytes alone, with a few fields
and at most one file. A photo is taken only as JPEG or PNG, recognised by its first bytes
(never by the name or the type the browser claims): what every channel sends as a photo.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message

from bot.web.app import read_body

MAX_FIELDS = 20  # csrf, action, note, officer, photo: a few; a form with more is no desk form
MAX_FILES = 1
PHOTO_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def is_multipart(request: Request) -> bool:
    """Whether the body is a multipart form (one that may carry a photo)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def bounded(request: Request, limit: int) -> Request:
    """The same request with its body read at most ``limit`` bytes far (``BodyTooLarge``
    beyond), replayed from memory so that ``form()`` parses only what was read."""
    body = await read_body(request, limit)
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def photo_type(head: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from a file's first bytes; None for anything else."""
    for magic, content_type in PHOTO_TYPES:
        if head.startswith(magic):
            return content_type
    return None


def megabytes(size: int, lang: str) -> str:
    """'20', '0.25' (English) or '0,25' (Bahasa Indonesia): a size limit in MB as people read it."""
    mb = size / (1024 * 1024)
    shown = f"{mb:.0f}" if mb >= 10 else f"{mb:.2g}"
    return shown.replace(".", ",") if lang == "id" else shown
