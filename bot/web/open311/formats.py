"""Open311's two formats: JSON, and the XML it is mapped from (the "Spark" convention).

A document is a root name and its content: a list of items (``services`` of ``service``,
``service_requests`` of ``request``, ``errors`` of ``error``) or one object (``discovery``,
``service_definition``). In JSON a list is an array and an object an object; in XML the root
element holds one element per item, and a nested list is a plural element with singular
children (``attributes`` → ``attribute``). JSON null is an empty XML element; booleans are
``true`` / ``false`` in both.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

FORMATS = ("json", "xml")
MEDIA_TYPES = {"json": "application/json", "xml": "text/xml"}
# XML names of one item of each list, by the list's name.
SINGULAR = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

Document = Sequence[Mapping[str, Any]] | Mapping[str, Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), key, item)
    elif isinstance(value, list | tuple):
        child = SINGULAR[name]
        for item in value:
            _fill(ET.SubElement(element, child), child, item)
    else:
        element.text = _text(value)


def to_xml(root: str, content: Document) -> bytes:
    """The document as XML with its declaration, UTF-8."""
    element = ET.Element(root)
    _fill(element, root, content)
    ET.indent(element)
    return bytes(ET.tostring(element, encoding="utf-8", xml_declaration=True))


def to_json(content: Document) -> bytes:
    """The document as JSON, UTF-8 (not escaped to ASCII)."""
    return json.dumps(content, ensure_ascii=False).encode("utf-8")


def render(
    fmt: str,
    root: str,
    content: Document,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An HTTP response in the asked format (json or xml), UTF-8."""
    body = to_xml(root, content) if fmt == "xml" else to_json(content)
    return Response(
        body,
        status_code=status,
        media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
        headers=dict(headers or {}),
    )


def errors(
    fmt: str, status: int, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Open311's error list with one error, its code the HTTP status."""
    return render(
        fmt if fmt in FORMATS else "json",
        "errors",
        [{"code": status, "description": description}],
        status,
        headers,
    )
