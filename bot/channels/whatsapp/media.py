"""Files the bot sends on WhatsApp: Twilio fetches each from a short-lived signed link.

A stored file (a resident's photo from Telegram in an officer's alert, a broadcast's photo) is
linked as it is; a document the bot made (an export) is put into the media store first (it is
then kept for ``[media] orphan_grace_hours``, longer than the link lives). A file over what
WhatsApp carries, or no longer stored, is left out: the words still go.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.channels.whatsapp.render import public_media_url
from bot.media.library import MediaLibrary
from bot.media.links import MediaLinks
from handlers.types import MediaKind, Reply


class MediaUrls:
    """A reply's file as the URL Twilio fetches (``WhatsAppSender``'s ``media_url``)."""

    def __init__(
        self, library: MediaLibrary, links: MediaLinks, private_prefixes: Sequence[str] = ()
    ) -> None:
        self.library = library
        self.links = links
        self.private_prefixes = tuple(private_prefixes)

    async def __call__(self, reply: Reply, owner_id: int | None = None) -> str | None:
        """The URL of the reply's document or medium, or None; ``owner_id``: the document is
        the person's own data (/dataku), deleted when they are erased."""
        document = reply.document
        if document is not None:
            if not WHATSAPP.can_send(MediaKind.DOCUMENT, len(document.data)):
                return None
            blob = await self.library.put(
                document.data, document.content_type, hold=False, owner_id=owner_id
            )
            return self.links.url(blob.ref, document.filename)
        media = reply.media
        if media is None:
            return None
        if not media.stored:
            return public_media_url(media, self.private_prefixes)
        if not WHATSAPP.can_send(media.kind, media.size):
            return None
        if await self.library.stat(media.ref) is None:
            return None
        return self.links.url(media.ref)
