"""Open311 GeoReport v2: government systems read and file KTN reports (``/open311/v2``)."""

from bot.web.open311.api import PREFIX, Open311Api

__all__ = ["PREFIX", "Open311Api"]
