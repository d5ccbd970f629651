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
    # Inside the 24-hour window options go as buttons (content.py): up to 3 quick replies, or a
    # list of up to 10; more, or outside the window, as numbered lines answered by typing.
    max_buttons=10,
    button_label_limit=24,  # a list item's title (a quick reply takes 20); longer: shortened
    text_limit=1600,  # Twilio's limit for one body
    caption_limit=1600,  # a medium goes with the first body
    receives={kind: 16 * MB for kind in (*_MEDIA, MediaKind.STICKER)},  # 16 MB per medium
    sends={kind: 16 * MB for kind in _MEDIA},  # from a public URL Twilio fetches itself
    sends_documents=True,  # a MediaUrl: a short-lived signed link into the media store
    template_window_hours=24,  # after 24 hours without a message from the user: templates only
    several_bots=False,  # one sender number
)
