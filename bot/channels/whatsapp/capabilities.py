"""What WhatsApp through Twilio can do, as the core and this package decide by it.

Imports nothing of twilio: the wiring reads this in a Telegram-only deployment too.
"""

from __future__ import annotations

from handlers.capabilities import MB, Capabilities
from handlers.types import MediaKind

_MEDIA = (MediaKind.PHOTO, MediaKind.VOICE, MediaKind.VIDEO, MediaKind.DOCUMENT)

WHATSAPP = Capabilities(
    edits_messages=False,  # a sent WhatsApp message cannot be changed
    group_chats=False,  # Twilio's WhatsApp API reaches no group chats
    max_buttons=0,  # options go out as numbered lines (render.numbered), answered by typing
    button_label_limit=None,
    text_limit=1600,  # Twilio's limit for one body
    caption_limit=1600,  # a medium goes with the first body
    receives={kind: 16 * MB for kind in (*_MEDIA, MediaKind.STICKER)},  # 16 MB per medium
    sends={kind: 16 * MB for kind in _MEDIA},  # from a public URL Twilio fetches itself
    sends_documents=False,  # Twilio sends media from a URL, not a file the bot made
    template_window_hours=24,  # after 24 hours without a message from the user: templates only
    several_bots=False,  # one sender number
)
