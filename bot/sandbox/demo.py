"""The sandbox's cast: who sits in each of the page's panes, and the demo pin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SANDBOX_TOKEN = "123456:SANDBOX"  # noqa: S105 - the local fake's token, not a secret
BOT_USERNAME = "ktn_sandbox_bot"
BOT_NAME = "KTN Sumber Jaya"

AREA_CODE = "17.71.08.1004"  # Sumber Jaya (the packaged sample areas)
RESIDENT_ID = 900010
OFFICER_ID = 900001
COORDINATOR_ID = 900002
GROUP_ID = -100900003
GROUP_TITLE = "Bhabinkamtibmas Sumber Jaya"
DEMO_PIN = (-3.7956, 102.2592)  # near Sumber Jaya, Kota Bengkulu
WA_RESIDENT_NUMBER = "+6281200000010"  # a resident on WhatsApp (through the Twilio fake)
WA_RESIDENT_NAME = "Budi (warga WA)"
WA_BOT_NUMBER = "+14155238886"  # the deployment's WhatsApp sender at the fake


@dataclass(frozen=True)
class Person:
    """A simulated Telegram user of the demo."""

    user_id: int
    first_name: str
    role: str
    language_code: str = "id"


@dataclass(frozen=True)
class Pane:
    """One chat on the page: whose it is, and who types in it."""

    key: str
    chat_id: int
    person: Person
    note: str

    def to_json(self) -> dict[str, Any]:
        """What the page needs to draw and drive the pane."""
        return {
            "key": self.key,
            "chat_id": self.chat_id,
            "user_id": self.person.user_id,
            "who": self.person.first_name,
            "note": self.note,
        }


RESIDENT = Person(RESIDENT_ID, "Siti (warga)", "resident")
OFFICER = Person(OFFICER_ID, "Bripka Andi", "officer")
COORDINATOR = Person(COORDINATOR_ID, "Ibu Lurah Sri", "coordinator")
PEOPLE = (RESIDENT, OFFICER, COORDINATOR)
STAFF = (OFFICER, COORDINATOR)

PANES = (
    Pane("resident", RESIDENT_ID, RESIDENT, "chat pribadi dengan bot · tinggal di Sumber Jaya"),
    Pane("group", GROUP_ID, OFFICER, f"grup {GROUP_TITLE} · bhabinkamtibmas"),
    Pane("officer", OFFICER_ID, OFFICER, "chat pribadi dengan bot · catatan Selesai/Tolak"),
    Pane("coordinator", COORDINATOR_ID, COORDINATOR, "chat pribadi dengan bot · Lurah Sumber Jaya"),
)
WHATSAPP_USERS = {WA_RESIDENT_NUMBER: WA_RESIDENT_NAME}


def page_config() -> dict[str, Any]:
    """The JSON the page loads first (``GET /sandbox.json``)."""
    return {
        "bot": {"username": BOT_USERNAME, "name": BOT_NAME},
        "pin": {"latitude": DEMO_PIN[0], "longitude": DEMO_PIN[1]},
        "panes": [pane.to_json() for pane in PANES],
        "whatsapp": {
            "key": "whatsapp",
            "number": WA_RESIDENT_NUMBER,
            "who": WA_RESIDENT_NAME,
            "note": f"WhatsApp {WA_RESIDENT_NUMBER} · lewat Twilio (tiruan lokal)",
        },
    }
