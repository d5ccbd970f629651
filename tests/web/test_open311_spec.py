"""Every Open311 response against GeoReport v2's field names and types, in JSON and in XML.

The tables below are the spec's response tables (open311.github.io GeoReport v2: GET Service
List, GET Service Definition, POST Service Request, GET Service Requests / Request, Errors; and
Service Discovery), each field with its type as the spec describes it. The spec's own JSON
examples write some ids as bare numbers ("service_code":001); the field is a unique identifier,
and the tables say string. Each response must have exactly these fields (keyed reads may add
the reporter fields, checked separately); the XML must parse, have the spec's element names,
and say the same as the JSON.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from handlers.open311 import REPORTER_FIELDS
from tests.support.open311 import Api, report_form


@dataclass(frozen=True)
class T:
    """A spec type: string, boolean, integer, number, datetime (W3C), enum, or a list of
    objects (``item``) or of strings (``of_text``)."""

    kind: str
    nullable: bool = False
    values: tuple[str, ...] = ()
    item: Mapping[str, T] | None = None


STRING, TEXT = T("string"), T("string", nullable=True)
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

SERVICE = {
    "service_code": STRING,
    "service_name": STRING,
    "description": STRING,
    "metadata": T("boolean"),
    "type": T("enum", values=("realtime", "batch", "blackbox")),
    "keywords": TEXT,  # "A comma separated list of tags or keywords"
    "group": STRING,
}
VALUE = {"key": STRING, "name": STRING}
ATTRIBUTE = {
    "variable": T("boolean"),
    "code": STRING,
    "datatype": T(
        "enum",
        values=("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"),
    ),
    "required": T("boolean"),
    "datatype_description": TEXT,
    "order": T("integer"),
    "description": STRING,
    "values": T("list", item=VALUE),
}
SERVICE_DEFINITION = {"service_code": STRING, "attributes": T("list", item=ATTRIBUTE)}
POST_RESPONSE = {  # service_request_id, never token (not with an id); the others "may not be"
    "service_request_id": STRING,
    "service_notice": TEXT,
    "account_id": TEXT,
}
REQUEST = {
    "service_request_id": STRING,
    "status": T("enum", values=("open", "closed")),
    "status_notes": TEXT,
    "service_name": STRING,
    "service_code": STRING,
    "description": TEXT,
    "agency_responsible": TEXT,
    "service_notice": TEXT,
    "requested_datetime": T("datetime"),
    "updated_datetime": T("datetime"),
    "expected_datetime": T("datetime", nullable=True),
    "address": TEXT,
    "address_id": TEXT,
    "zipcode": TEXT,
    "lat": T("number", nullable=True),
    "long": T("number", nullable=True),
    "media_url": TEXT,
}
ERROR = {"code": T("integer"), "description": STRING}
ENDPOINT = {
    "specification": STRING,
    "url": STRING,
    "changeset": T("datetime"),
    "type": T("enum", values=("production", "test")),
    "formats": T("formats"),
}
DISCOVERY = {
    "changeset": T("datetime"),
    "contact": STRING,
    "key_service": STRING,
    "endpoints": T("list", item=ENDPOINT),
}
# Root element and item element of each document, as the spec's XML examples show them.
LISTS = {"services": "service", "service_requests": "request", "errors": "error"}
SINGULAR = {"attributes": "attribute", "values": "value", "endpoints": "endpoint"}


def check_value(value: Any, spec: T, where: str) -> None:
    if value is None:
        assert spec.nullable, f"{where}: null where the spec wants a value"
        return
    if spec.kind in ("string", "enum", "datetime"):
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
        if spec.kind == "enum":
            assert value in spec.values, f"{where}: {value!r} not in {spec.values}"
        if spec.kind == "datetime":
            assert W3C.match(value), f"{where}: {value!r} is not a W3C date-time with zone"
    elif spec.kind == "boolean":
        assert isinstance(value, bool), f"{where}: {value!r} is not true/false"
    elif spec.kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif spec.kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    elif spec.kind == "formats":
        assert value and all(v in ("text/xml", "application/json") for v in value), where
    else:
        assert isinstance(value, list), f"{where}: not a list"
        assert spec.item is not None
        for i, item in enumerate(value):
            check_object(item, spec.item, f"{where}[{i}]")


def check_object(obj: Any, table: Mapping[str, T], where: str, extra: set[str] = set()) -> None:  # noqa: B006
    assert isinstance(obj, dict), f"{where}: not an object"
    assert set(obj) - extra == set(table), f"{where}: fields {sorted(obj)} != {sorted(table)}"
    for name, spec in table.items():
        check_value(obj[name], spec, f"{where}.{name}")


def from_xml(element: ET.Element, table: Mapping[str, T]) -> dict[str, Any]:
    """An XML object as the JSON one would be, by the spec's types."""
    out: dict[str, Any] = {}
    for child in element:
        spec = table.get(child.tag, TEXT)
        text = child.text.strip() if child.text and child.text.strip() else None
        if spec.kind == "list":
            assert spec.item is not None
            assert all(c.tag == SINGULAR[child.tag] for c in child), child.tag
            out[child.tag] = [from_xml(c, spec.item) for c in child]
        elif spec.kind == "formats":
            assert all(c.tag == "format" for c in child)
            out[child.tag] = [c.text for c in child]
        elif text is None:
            out[child.tag] = None
        elif spec.kind == "boolean":
            assert text in ("true", "false"), f"{child.tag}: {text!r}"
            out[child.tag] = text == "true"
        elif spec.kind == "integer":
            out[child.tag] = int(text)
        elif spec.kind == "number":
            out[child.tag] = float(text)
        else:
            out[child.tag] = text
    return out


def blank_is_null(value: Any) -> Any:
    """An empty XML element reads as null: compare JSON's "" the same way."""
    if value == "":
        return None
    if isinstance(value, dict):
        return {k: blank_is_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [blank_is_null(v) for v in value]
    return value


async def both(
    client: httpx.AsyncClient, method: str, path: str, status: int, **kwargs: Any
) -> tuple[Any, ET.Element]:
    """The same request as .json and .xml: both answer ``status`` with the spec's headers."""
    answers = {}
    for fmt in ("json", "xml"):
        response = await client.request(method, f"{path}.{fmt}", **kwargs)
        assert response.status_code == status, (fmt, response.text)
        kind = "application/json" if fmt == "json" else "text/xml"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        answers[fmt] = response
    body = answers["xml"].content
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>") or body.startswith(
        b'<?xml version="1.0" encoding="utf-8"?>'
    )
    return answers["json"].json(), ET.fromstring(body)


def same_list(data: Any, root: ET.Element, name: str, table: Mapping[str, T]) -> None:
    assert root.tag == name and all(child.tag == LISTS[name] for child in root)
    assert blank_is_null([from_xml(child, table) for child in root]) == blank_is_null(data)


async def test_discovery(api: Api) -> None:
    async with api.client() as client:
        data, root = await both(client, "GET", "/discovery", 200)
    check_object(data, DISCOVERY, "discovery")
    assert data["endpoints"][0]["url"] == "http://ktn.test/open311/v2"
    assert data["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert root.tag == "discovery"
    assert blank_is_null(from_xml(root, DISCOVERY)) == blank_is_null(data)


async def test_services_and_their_definitions(api: Api) -> None:
    async with api.client() as client:
        data, root = await both(client, "GET", "/services", 200)
        assert isinstance(data, list)
        for i, service in enumerate(data):
            check_object(service, SERVICE, f"services[{i}]")
        same_list(data, root, "services", SERVICE)
        by_code = {s["service_code"]: s for s in data}
        assert list(by_code) == [c.key for c in api.cast.reporter.config.categories]
        assert by_code["keamanan"]["group"] == "Keamanan"
        assert by_code["sosial_ekonomi"]["group"] == "Sosial-Ekonomi"
        assert by_code["bencana"]["group"] == "Keamanan"  # disasters: the security pillar
        assert by_code["ketahanan_pangan"]["group"] == "Ketahanan Pangan"
        assert "banjir" in by_code["bencana"]["keywords"].split(", ")

        for service in data:
            definition, root = await both(
                client, "GET", f"/services/{service['service_code']}", 200
            )
            check_object(definition, SERVICE_DEFINITION, service["service_code"])
            assert root.tag == "service_definition"
            assert blank_is_null(from_xml(root, SERVICE_DEFINITION)) == blank_is_null(definition)
            codes = [a["code"] for a in definition["attributes"]]
            assert service["metadata"] is bool(codes)
            orders = [a["order"] for a in definition["attributes"]]
            assert orders == sorted(set(orders)) and min(orders) >= 1
            # An urgent category is urgent by itself: it does not ask.
            assert ("urgent" in codes) is (service["service_code"] != "bencana")

        errors, root = await both(client, "GET", "/services/banjir_bandang", 404)
    check_object(errors[0], ERROR, "error")
    assert errors[0]["code"] == 404 and "banjir_bandang" in errors[0]["description"]
    same_list(errors, root, "errors", ERROR)


async def test_post_and_read_back_in_both_formats(api: Api) -> None:
    # A chat report, one resolved with a note, and reports filed through the API.
    chat = await api.cast.reporter.file_report(description="Lampu jalan mati, rawan maling")
    closed = str(chat.recorded.filed["ticket"])
    await api.cast.officer.send(f"SELESAI {closed} lampu sudah diganti")
    async with api.client() as client:
        created = {}
        for fmt in ("json", "xml"):
            response = await client.post(
                f"/requests.{fmt}", data=report_form(api.key, description=f"Motor hilang ({fmt})")
            )
            assert response.status_code == 201, response.text
            assert response.headers["content-type"].startswith(
                "application/json" if fmt == "json" else "text/xml"
            )
            created[fmt] = response
        posted = created["json"].json()
        check_object(posted[0], POST_RESPONSE, "POST response")
        assert posted[0]["account_id"] == "crm-77"
        root = ET.fromstring(created["xml"].content)
        assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
        as_xml = from_xml(root[0], POST_RESPONSE)
        assert set(as_xml) == set(POST_RESPONSE) and as_xml["service_request_id"].startswith("KTN-")

        headers = {"X-Api-Key": api.key}
        listed, root = await both(client, "GET", "/requests", 200, headers=headers)
        assert len(listed) == 3
        for i, item in enumerate(listed):
            check_object(item, REQUEST, f"requests[{i}]", extra=set(REPORTER_FIELDS))
        same_list(
            listed, root, "service_requests", {**REQUEST, **dict.fromkeys(REPORTER_FIELDS, TEXT)}
        )

        one, root = await both(
            client, "GET", f"/requests/{posted[0]['service_request_id']}", 200, headers=headers
        )
        assert len(one) == 1
        check_object(one[0], REQUEST, "request", extra=set(REPORTER_FIELDS))
        same_list(
            one, root, "service_requests", {**REQUEST, **dict.fromkeys(REPORTER_FIELDS, TEXT)}
        )

        resolved, _ = await both(client, "GET", f"/requests/{closed}", 200, headers=headers)
    assert resolved[0]["status"] == "closed"
    assert resolved[0]["status_notes"] == "lampu sudah diganti"
    assert resolved[0]["agency_responsible"] == "Sumber Jaya"
    assert resolved[0]["address_id"] == "17.71.08.1004"
    # The report's trail: created at 03:00 UTC, resolved a moment later (both WIB, +07:00).
    assert resolved[0]["requested_datetime"].endswith("+07:00")
    assert resolved[0]["updated_datetime"] >= resolved[0]["requested_datetime"]


async def test_public_reads_have_exactly_the_spec_fields(api: Api) -> None:
    api.settings = api.settings.model_copy(update={"public": True})
    async with api.client() as client:
        response = await client.post("/requests.json", data=report_form(api.key))
        assert response.status_code == 201
        listed, root = await both(client, "GET", "/requests", 200)
    assert len(listed) == 1
    check_object(listed[0], REQUEST, "public request")  # no extra field at all
    same_list(listed, root, "service_requests", REQUEST)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/services", {"params": {"jurisdiction_id": "jakarta.go.id"}}, 404),
        ("GET", "/requests", {}, 403),  # public reads are off by default
        ("GET", "/requests/KTN-ZZZZZZ", {"headers": {"X-Api-Key": "ktn311_wrong"}}, 403),
        ("POST", "/requests", {"data": {"service_code": "keamanan", "lat": "1", "long": "2"}}, 403),
        ("GET", "/tokens/123", {}, 404),
        ("GET", "/requests", {"params": {"start_date": "kemarin"}, "headers": None}, 400),
    ],
)
async def test_errors_are_the_spec_list_in_both_formats(
    api: Api, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    if "headers" in kwargs and kwargs["headers"] is None:
        kwargs = {**kwargs, "headers": {"X-Api-Key": api.key}}
    async with api.client() as client:
        data, root = await both(client, method, path, status, **kwargs)
    assert isinstance(data, list) and len(data) == 1
    check_object(data[0], ERROR, "error")
    assert data[0]["code"] == status
    same_list(data, root, "errors", ERROR)


async def test_unknown_format_and_path_answer_the_spec_error(api: Api) -> None:
    async with api.client() as client:
        wrong_format = await client.get("/services.csv")
        unknown = await client.get("/nothing/here.json")
    for response in (wrong_format, unknown):
        assert response.status_code == 404
        check_object(response.json()[0], ERROR, "error")
