"""A local fake of Twilio's Messaging and Content APIs for WhatsApp, for tests, benchmarks and the
sandbox.

``TwilioFake`` (``fake.py``) speaks real HTTP to the real ``twilio`` client (point
``client.api.base_url`` and ``client.content.base_url`` at it; ``fake.app`` can be mounted, or
served with ``fake.serve()``), and simulates WhatsApp users: it builds and signs inbound webhooks
exactly as Twilio sends them, and taps the buttons of a message a user got.

``WhatsAppSim`` (``sim.py``) is the sandbox page's side: a small JSON API (``/_wa/...``) through
which the page's WhatsApp pane types, shares a pin, sends a photo and taps buttons (each a signed
webhook posted to the running bot), and reads what the fake received for that number.
"""

from bot.sandbox.twilio_fake.fake import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SENDER,
    FakeButton,
    FakeMessage,
    ManualClock,
    StatusEvent,
    TwilioFake,
)
from bot.sandbox.twilio_fake.sim import WhatsAppSim

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_SENDER",
    "FakeButton",
    "FakeMessage",
    "ManualClock",
    "StatusEvent",
    "TwilioFake",
    "WhatsAppSim",
]
