"""Taking in the files people send: the limits per kind, and the download into the store.

Each channel's ``prepare`` step (run by the inbound seam before the core, unless the message was
handled already) calls ``take_media`` with its own way of fetching a file. A file is taken when
its kind is accepted and it fits the smaller of the channel's limit for that kind
(``Capabilities.receives``: Telegram lets bots download 20 MB, WhatsApp carries 16 MB) and the
deployment's (``[media] max_mb``). A declared size over the limit is refused before anything is
downloaded; a stream is cut as soon as it passes the limit. A file not taken carries its
``MediaProblem`` to the core, which answers politely; nothing of it is stored.

A taken file's ``Media.ref`` becomes the store's ``sha256:<hex>``, held until the seam releases it
after the core's commit (``bot.media.library``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from bot.media.library import MediaLibrary
from bot.media.store import Blob, Source, TooLarge
from handlers.capabilities import Capabilities
from handlers.types import ChatKind, Inbound, Media, MediaKind, MediaProblem

log = logging.getLogger(__name__)

# What a report or a broadcast keeps; stickers are never downloaded (the core answers them).
TAKEN_KINDS = (MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.VOICE, MediaKind.DOCUMENT)

Fetch = Callable[[Media, int], Awaitable[Source]]
OnStored = Callable[[Media, Blob], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest file taken per kind, in bytes; a kind that is missing is not accepted."""

    sizes: Mapping[MediaKind, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", MappingProxyType(dict(self.sizes)))

    @classmethod
    def of(cls, caps: Capabilities, configured: Mapping[str, int] | None = None) -> Limits:
        """The channel's declared limits, capped by the deployment's (bytes per kind name;
        0 or missing: not accepted; None: the channel's limits alone)."""
        sizes = {}
        for kind in TAKEN_KINDS:
            channel = caps.receives.get(kind, 0)
            cap = channel if configured is None else configured.get(kind.value, 0)
            if channel > 0 and cap > 0:
                sizes[kind] = min(channel, cap)
        return cls(sizes)

    def limit(self, kind: MediaKind) -> int | None:
        """The largest file of this kind taken, or None when the kind is not accepted."""
        return self.sizes.get(kind)


async def take_media(
    inbound: Inbound,
    library: MediaLibrary,
    limits: Limits,
    fetch: Fetch,
    *,
    seconds: float | None = None,
    on_stored: OnStored | None = None,
    keep_origin: bool = False,
) -> Inbound:
    """The message with its files in the store (or marked with why not); private chats only
    (a group's files are never kept). All files at once; each within ``seconds``.
    ``keep_origin``: the channel's ref is its own deletable copy (a Twilio media URL), kept as
    ``Media.origin`` so that erasing the sender deletes it there too."""
    if inbound.chat_kind is not ChatKind.PRIVATE or not inbound.media:
        return inbound

    async def take(item: Media) -> Media:
        if item.kind is MediaKind.STICKER:
            return item
        limit = limits.limit(item.kind)
        if limit is None:
            return replace(item, problem=MediaProblem.NOT_ACCEPTED)
        if item.size is not None and item.size > limit:
            return replace(item, problem=MediaProblem.TOO_LARGE, limit=limit)
        try:
            async with asyncio.timeout(seconds):
                blob = await library.put(await fetch(item, limit), item.content_type, limit=limit)
        except TooLarge:
            return replace(item, problem=MediaProblem.TOO_LARGE, limit=limit)
        except TimeoutError:
            log.warning("a file of %s not received within %s s", inbound.message_id, seconds)
            return replace(item, problem=MediaProblem.UNAVAILABLE)
        except Exception as exc:  # network, the channel's API, the store: the user may resend
            log.warning("a file of %s not received: %s", inbound.message_id, type(exc).__name__)
            return replace(item, problem=MediaProblem.UNAVAILABLE)
        origin = item.ref if keep_origin else None
        stored = replace(item, ref=blob.ref, size=blob.size, origin=origin)
        if on_stored is not None:
            await on_stored(item, blob)
        return stored

    taken = await asyncio.gather(*(take(item) for item in inbound.media))
    return replace(inbound, media=tuple(taken))


def held(before: Inbound, after: Inbound) -> list[str]:
    """The files ``take_media`` stored for a message (one hold each): its refs that changed."""
    return [
        new.ref
        for old, new in zip(before.media, after.media, strict=False)
        if new.ref != old.ref and new.stored
    ]
