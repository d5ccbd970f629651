"""The headers every desk response carries: nothing cached, no referrer, no framing, no
sniffing (pages add their Content-Security-Policy, ``Desk._csp``)."""

from __future__ import annotations

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
