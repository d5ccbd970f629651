"""The Twilio fake, driven by the real async twilio client over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.channels.whatsapp.client import TwilioHttpClient
from bot.sandbox.twilio_fake import ManualClock, TwilioFake
from bot.web.serving import serve_asgi

# twilio 9.13's AsyncTwilioHttpClient passes auth=aiohttp.BasicAuth(...) on every request, and
# aiohttp 3.14 deprecates both BasicAuth and the auth= parameter. The project turns warnings into
# errors, so the stock client needs exactly these two silenced (bot.whatsapp_sender.TwilioHttpClient).
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

USER = "+6281234567890"
USER_WA = "whatsapp:" + USER
BOT_WA = "whatsapp:+14155238886"
TEMPLATE_SID = "HX" + "ab" * 16
PHOTO = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


@dataclass
class Call:
    """One webhook/callback the receiver got."""

    path: str
    form: dict[str, str]
    valid: bool
    headers: dict[str, str]


@dataclass
class Receiver:
    """A tiny Starlette app standing in for the bot: validates signatures, records calls."""

    token: str
    base_url: str = ""
    calls: list[Call] = field(default_factory=list)
    final: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    got_inbound: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        """Record the call; 403 when the signature does not validate."""
        async with request.form() as raw:
            form = {k: str(v) for k, v in raw.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = RequestValidator(self.token).validate(str(request.url), form, signature)
        self.calls.append(Call(request.url.path, form, valid, dict(request.headers)))
        if form.get("MessageStatus") in {"delivered", "undelivered", "failed"}:
            self.final[form["MessageSid"]].set()
        if request.url.path == "/whatsapp":
            self.got_inbound.set()
        return Response(status_code=204 if valid else 403)

    def statuses(self, sid: str) -> list[str]:
        """The MessageStatus values received for one message, in arrival order."""
        return [c.form["MessageStatus"] for c in self.calls if c.form.get("MessageSid") == sid]

    async def wait_final(self, sid: str) -> None:
        """Wait for the terminal status callback of one message."""
        await asyncio.wait_for(self.final[sid].wait(), 5)


@pytest.fixture
async def fake() -> AsyncIterator[TwilioFake]:
    """A served fake with a manual clock and one registered template."""
    f = TwilioFake(clock=ManualClock(), callback_delay=0.0)
    f.add_template(TEMPLATE_SID, "Laporan {{1}} sudah diterima petugas.")
    async with f.serve():
        yield f


@pytest.fixture
async def receiver(fake: TwilioFake) -> AsyncIterator[Receiver]:
    """The stand-in bot endpoint on 127.0.0.1."""
    rec = Receiver(fake.auth_token)
    app = Starlette(
        routes=[Route(p, rec.handle, methods=["POST"]) for p in ("/status", "/whatsapp")]
    )
    async with serve_asgi(app) as base_url:
        rec.base_url = base_url
        yield rec


def make_client(
    fake: TwilioFake, token: str | None = None, http_client: AsyncTwilioHttpClient | None = None
) -> Client:
    """The real twilio client, async, pointed at the fake."""
    client = Client(
        fake.account_sid,
        token or fake.auth_token,
        http_client=http_client or AsyncTwilioHttpClient(),
    )
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
async def client(fake: TwilioFake, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    """A real twilio Client; its aiohttp session is closed afterwards."""
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    c = make_client(fake)
    yield c
    await c.http_client.close()


async def send(client: Client, **kwargs: object) -> Any:
    """messages.create_async with the bot's sender."""
    kwargs.setdefault("to", USER_WA)
    kwargs.setdefault("from_", BOT_WA)
    return await client.messages.create_async(**kwargs)


async def test_message_is_accepted_and_recorded(fake: TwilioFake, client: Client) -> None:
    fake.inbound_text(USER, "halo")
    msg = await client.messages.create_async(to=USER_WA, from_=BOT_WA, body="Terima kasih")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (msg.status, msg.to, msg.from_, msg.body) == ("queued", USER_WA, BOT_WA, "Terima kasih")
    assert msg.date_created is not None and msg.date_created.tzinfo is not None
    [record] = await fake.wait_for_messages(to=USER, count=1, timeout=2)
    assert (record.sid, record.body, record.to, record.from_) == (
        msg.sid,
        "Terima kasih",
        USER_WA,
        BOT_WA,
    )
    delivered = await fake.wait_for_status(msg.sid, "delivered")
    assert delivered.status_history == ["queued", "sent", "delivered"]
    fetched = await client.messages(msg.sid).fetch_async()
    assert fetched.status == "delivered"


async def test_repeated_media_urls_and_template_variables_reach_the_fake(
    fake: TwilioFake, client: Client
) -> None:
    fake.inbound_text(USER, "halo")
    urls = ["https://example.org/a.jpg", "https://example.org/b.jpg"]
    media = await send(client, body="foto", media_url=urls)
    tpl = await send(client, content_sid=TEMPLATE_SID, content_variables=json.dumps({"1": "#42"}))
    assert media.sid.startswith("MM") and media.num_media == "2"
    assert fake.message(media.sid).media_urls == urls
    record = fake.message(tpl.sid)
    assert record.content_variables == {"1": "#42"}
    assert record.body == "Laporan #42 sudah diterima petugas."


async def test_wrong_token_is_401(fake: TwilioFake) -> None:
    bad = make_client(fake, token="wrong-token")
    try:
        with pytest.raises(TwilioRestException) as info:
            await send(bad, body="x")
    finally:
        await bad.http_client.close()
    assert (info.value.status, info.value.code) == (401, 20003)
    assert fake.messages == [] and fake.counters["auth_failures"] == 1


async def test_body_over_1600_chars_is_21617(fake: TwilioFake, client: Client) -> None:
    fake.inbound_text(USER, "halo")
    with pytest.raises(TwilioRestException) as info:
        await send(client, body="x" * 1601)
    assert (info.value.status, info.value.code) == (400, 21617)
    assert (await send(client, body="x" * 1600)).sid.startswith("SM")
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": USER}, 21211),
        ({"from_": "+14155238886"}, 21212),
        ({"from_": "whatsapp:+6280000000000"}, 63007),
        ({"body": None}, 21619),
        ({"body": None, "content_sid": "HX" + "00" * 16}, 21655),
        ({"body": None, "content_sid": TEMPLATE_SID, "content_variables": "not json"}, 21656),
    ],
)
async def test_invalid_requests_get_twilio_error_codes(
    fake: TwilioFake, client: Client, kwargs: dict[str, object], code: int
) -> None:
    args: dict[str, object] = {"body": "halo", **kwargs}
    with pytest.raises(TwilioRestException) as info:
        await send(client, **{k: v for k, v in args.items() if v is not None})
    assert (info.value.status, info.value.code) == (400, code)
    assert fake.messages == []


async def test_free_form_outside_window_fails_later_but_template_is_delivered(
    fake: TwilioFake, client: Client, receiver: Receiver
) -> None:
    assert isinstance(fake.clock, ManualClock)
    fake.inbound_text(USER, "lapor banjir")
    fake.clock.advance(25 * 3600)
    callback = receiver.base_url + "/status"
    free = await send(client, body="Update laporan", status_callback=callback)
    tpl = await send(
        client,
        content_sid=TEMPLATE_SID,
        content_variables=json.dumps({"1": "#7"}),
        status_callback=callback,
    )
    assert free.status == "queued"  # accepted with 201 like Twilio
    await receiver.wait_final(free.sid)
    await receiver.wait_final(tpl.sid)
    last_free = [c.form for c in receiver.calls if c.form["MessageSid"] == free.sid][-1]
    assert (last_free["MessageStatus"], last_free["ErrorCode"]) == ("undelivered", "63016")
    assert receiver.statuses(tpl.sid) == ["sent", "delivered"]
    assert fake.message(free.sid).error_code == 63016


async def test_status_callbacks_are_signed_and_in_order(
    fake: TwilioFake, client: Client, receiver: Receiver
) -> None:
    fake.read_receipts = True
    fake.inbound_text(USER, "halo")
    msg = await send(client, body="ok", status_callback=receiver.base_url + "/status")
    await receiver.wait_final(msg.sid)
    await fake.drain()
    assert receiver.statuses(msg.sid) == ["sent", "delivered", "read"]
    assert all(c.valid for c in receiver.calls)
    first = receiver.calls[0].form
    assert (first["AccountSid"], first["From"], first["To"]) == (fake.account_sid, BOT_WA, USER_WA)
    assert "ErrorCode" not in first


async def test_callbacks_can_be_duplicated_and_out_of_order(
    fake: TwilioFake, client: Client, receiver: Receiver
) -> None:
    fake.auto_deliver = False
    fake.inbound_text(USER, "halo")
    msg = await send(client, body="ok", status_callback=receiver.base_url + "/status")
    assert receiver.calls == [] and fake.message(msg.sid).status == "queued"
    deliveries = await fake.deliver_status_callbacks(duplicate=True, out_of_order=True)
    assert [d.status_code for d in deliveries] == [204] * 4
    assert receiver.statuses(msg.sid) == ["delivered", "delivered", "sent", "sent"]
    tokens = [c.headers["i-twilio-idempotency-token"] for c in receiver.calls]
    assert tokens[0] == tokens[1] != tokens[2] == tokens[3]
    assert fake.message(msg.sid).status_history == ["queued", "sent", "delivered"]


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503), (429, 20429)])
async def test_injected_faults_raise_then_recover(
    fake: TwilioFake, client: Client, status: int, code: int
) -> None:
    fake.inbound_text(USER, "halo")
    fake.fail_next(status=status, times=2)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            await send(client, body="x")
        assert (info.value.status, info.value.code) == (status, code)
    assert (await send(client, body="x")).sid
    assert len(fake.messages) == 1 and fake.counters[f"fault_{status}"] == 2


async def test_timeout_fault_hangs_but_the_message_is_accepted(
    fake: TwilioFake, client: Client
) -> None:
    fake.inbound_text(USER, "halo")
    fake.fail_next("timeout")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # the twilio async client has no timeout of its own
            await send(client, body="x")
    assert await send(client, body="x")
    assert len(fake.messages) == 2 and fake.duplicate_count() == 1
    assert fake.messages[0].fault == "timeout" and fake.counters["fault_timeout"] == 1


async def test_fault_rate_is_reproducible_with_a_seed(fake: TwilioFake, client: Client) -> None:
    fake.inbound_text(USER, "halo")

    async def outcome_pattern() -> list[bool]:
        """Which of 20 sends succeeded."""
        fake.set_fault_rate(0.4, seed=7, kinds=("5xx", "429"))
        pattern = []
        for i in range(20):
            try:
                await send(client, body=f"m{i}")
                pattern.append(True)
            except TwilioRestException:
                pattern.append(False)
        return pattern

    first, second = await outcome_pattern(), await outcome_pattern()
    assert first == second and 0 < first.count(False) < 20
    faults = sum(fake.counters[f"fault_{k}"] for k in ("500", "503", "429"))
    assert faults == 2 * first.count(False) and len(fake.messages) == 2 * first.count(True)


async def test_rate_cap_answers_429_and_rate_is_measurable(
    fake: TwilioFake, client: Client
) -> None:
    fake.inbound_text(USER, "halo")
    fake.max_rate = 3
    results: list[tuple[int, int | None]] = []
    for i in range(5):
        try:
            await send(client, body=f"m{i}")
            results.append((201, None))
        except TwilioRestException as exc:
            results.append((exc.status, exc.code))
    assert results == [(201, None)] * 3 + [(429, 20429)] * 2
    assert fake.achieved_rate() > 0 and fake.counters["rate_limited"] == 2


async def test_media_needs_auth_and_can_be_deleted(fake: TwilioFake) -> None:
    form = fake.inbound_media(USER, PHOTO, "image/jpeg", caption="banjir di RT 3")
    assert (form["MessageType"], form["NumMedia"], form["Body"]) == ("image", "1", "banjir di RT 3")
    url, auth = form["MediaUrl0"], (fake.account_sid, fake.auth_token)
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, auth=(fake.account_sid, "nope"))).status_code == 401
        got = await http.get(url, auth=auth)
        assert (got.content, got.headers["content-type"]) == (PHOTO, "image/jpeg")
        assert (await http.delete(url)).status_code == 401
        assert (await http.delete(url, auth=auth)).status_code == 204
        assert fake.deleted_media == [url.rsplit("/", 1)[1]]
        assert (await http.get(url, auth=auth)).status_code == 404


async def test_inbound_signatures_validate_and_forgeries_do_not(
    fake: TwilioFake, receiver: Receiver
) -> None:
    url = receiver.base_url + "/whatsapp"
    form = fake.inbound_text(USER, "Ada pohon tumbang", profile_name="Siti")
    validator = RequestValidator(fake.auth_token)
    assert validator.validate(url, form, fake.sign(url, form))
    assert not validator.validate(url, {**form, "Body": "edited"}, fake.sign(url, form))
    assert (await fake.post_inbound(url, form)).status_code == 204
    assert (await fake.post_inbound(url, form, signature="forged")).status_code == 403
    assert (await fake.post_inbound(url, form, signature=None)).status_code == 403
    assert [c.valid for c in receiver.calls] == [True, False, False]
    got = receiver.calls[0].form
    assert (got["From"], got["WaId"], got["ProfileName"]) == (USER_WA, USER[1:], "Siti")
    assert got["MessageSid"] == got["SmsSid"] and got["MessageSid"].startswith("SM")


async def test_location_inbound_has_empty_body_and_coordinates(
    fake: TwilioFake, receiver: Receiver
) -> None:
    form = fake.inbound_location(USER, -6.2088, 106.8456, address="Jl. Melati 5", label="Posko")
    response = await fake.post_inbound(receiver.base_url + "/whatsapp", form)
    await asyncio.wait_for(receiver.got_inbound.wait(), 5)
    assert response.status_code == 204
    got = receiver.calls[0].form
    assert got["Body"] == "" and got["MessageType"] == "location"
    assert (got["Latitude"], got["Longitude"]) == ("-6.2088", "106.8456")
    assert (got["Address"], got["Label"]) == ("Jl. Melati 5", "Posko")


async def test_button_press_and_redelivery_keep_the_same_message_sid(
    fake: TwilioFake, receiver: Receiver
) -> None:
    url = receiver.base_url + "/whatsapp"
    form = fake.inbound_button(USER, "claim:42", "Ambil laporan")
    await fake.post_inbound(url, form)
    await fake.redeliver(url, form)
    first, second = receiver.calls
    assert first.form == second.form and first.form["ButtonPayload"] == "claim:42"
    assert first.form["MessageType"] == "button" and first.form["Body"] == "Ambil laporan"
    token = "i-twilio-idempotency-token"
    assert first.headers[token] == second.headers[token]
    assert fake.in_window(USER)


async def test_stock_client_ignores_its_timeout(fake: TwilioFake) -> None:
    fake.inbound_text(USER, "halo")
    fake.hang_seconds = 0.6
    fake.fail_next("timeout")
    stock = make_client(fake, http_client=AsyncTwilioHttpClient(timeout=0.1))
    try:
        msg = await send(stock, body="x")  # answered after the 0.6 s hang: no timeout fired
    finally:
        await stock.http_client.close()
    assert msg.sid == fake.messages[0].sid


async def test_header_auth_client_has_no_deprecations_and_times_out(fake: TwilioFake) -> None:
    fake.inbound_text(USER, "halo")
    client = make_client(fake, http_client=TwilioHttpClient(timeout=0.3))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert (await send(client, body="x")).sid.startswith("SM")
        fake.fail_next("timeout")
        with pytest.raises(TimeoutError):
            await send(client, body="y")
    finally:
        await client.http_client.close()
    assert [w for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert [m.body for m in fake.messages] == ["x", "y"]


# --- the Content API: buttons and lists in session ---------------------------------------------

CONSENT_QR = {
    "twilio/quick-reply": {
        "body": "{{1}}",
        "actions": [
            {"type": "QUICK_REPLY", "title": "Setuju", "id": "consent:yes"},
            {"type": "QUICK_REPLY", "title": "Tidak", "id": "consent:no"},
        ],
    }
}
CATEGORY_LIST = {
    "twilio/list-picker": {
        "body": "{{1}}",
        "button": "Pilih",
        "items": [
            {"item": "Keamanan", "id": "cat:keamanan"},
            {"item": "Kesehatan", "id": "cat:kesehatan", "description": "Sakit, wabah"},
        ],
    }
}


@pytest.fixture
async def content_client(fake: TwilioFake) -> AsyncIterator[Client]:
    """The real twilio client on the bot's HTTP client (which sends the Content API's JSON as
    JSON), both hosts pointed at the fake."""
    c = make_client(fake, http_client=TwilioHttpClient(timeout=1.0))
    c.content.base_url = fake.base_url
    yield c
    await c.http_client.close()


async def create(client: Client, types: dict[str, Any], **extra: Any) -> Any:
    """POST /v1/Content through the twilio SDK with exactly this body."""
    from twilio.rest.content.v1.content import ContentList

    definition = {"friendly_name": "ktn", "language": "id", "types": types, **extra}

    class Exact(ContentList.ContentCreateRequest):  # type: ignore[misc]
        def to_dict(self) -> dict[str, Any]:
            return definition

    return await client.content.v1.contents.create_async(Exact(definition))


async def test_a_quick_reply_is_created_fetched_sent_and_tapped(
    fake: TwilioFake, content_client: Client, receiver: Receiver
) -> None:
    created = await create(content_client, CONSENT_QR, variables={"1": "contoh"})
    assert re.fullmatch(r"HX[0-9a-f]{32}", created.sid)
    fetched = await content_client.content.v1.contents(created.sid).fetch_async()
    assert fetched.types == CONSENT_QR and fetched.variables == {"1": "contoh"}
    fake.inbound_text(USER, "halo")
    sent = await send(
        content_client,
        content_sid=created.sid,
        content_variables=json.dumps({"1": "Apakah Anda setuju?"}),
    )
    message = fake.message(sent.sid)
    assert message.body == "Apakah Anda setuju?"
    assert message.shown == "Apakah Anda setuju?\n\n[Setuju] [Tidak]"
    assert (message.content_type, message.list_button) == ("twilio/quick-reply", None)

    form = fake.tap(message, "Tidak", profile_name="Siti")
    assert (form["ButtonPayload"], form["ButtonText"], form["Body"]) == (
        "consent:no",
        "Tidak",
        "Tidak",
    )
    assert (form["From"], form["OriginalRepliedMessageSid"]) == (USER_WA, message.sid)
    assert fake.tap(message, 1)["ButtonPayload"] == "consent:yes"
    assert (await fake.post_inbound(receiver.base_url + "/whatsapp", form)).status_code == 204
    assert receiver.calls[0].valid and receiver.calls[0].form["ButtonPayload"] == "consent:no"
    with pytest.raises(ValueError, match="no button"):
        fake.tap(message, "Mungkin")


async def test_a_list_picker_shows_its_items_and_a_pick_sends_the_item_id(
    fake: TwilioFake, content_client: Client
) -> None:
    created = await create(content_client, CATEGORY_LIST)
    fake.inbound_text(USER, "lapor")
    sent = await send(
        content_client, content_sid=created.sid, content_variables='{"1": "Tentang apa?"}'
    )
    message = fake.message(sent.sid)
    assert message.shown == ("Tentang apa?\n\n[≡ Pilih]\n- Keamanan\n- Kesehatan (Sakit, wabah)")
    form = fake.tap(message, 2)
    assert (form["ButtonPayload"], form["ButtonText"]) == ("cat:kesehatan", "Kesehatan")
    assert form["MessageType"] == "interactive"


async def test_the_sdk_model_with_its_nulls_is_accepted(
    fake: TwilioFake, content_client: Client
) -> None:
    """twilio's own ContentCreateRequest writes every type it knows (unset ones as null) and
    each action's type and each item's description as null when not given."""
    from twilio.rest.content.v1.content import ContentList

    request = ContentList.ContentCreateRequest(
        {"friendly_name": "sdk", "language": "en", "types": CATEGORY_LIST}
    )
    assert request.to_dict()["types"]["twilio/text"] is None
    created = await content_client.content.v1.contents.create_async(request)
    assert fake.contents[created.sid].types.keys() == {"twilio/list-picker"}


def quick_reply(*titles: str, ids: list[str] | None = None, body: str = "{{1}}") -> dict[str, Any]:
    ids = ids or [f"b:{i}" for i in range(len(titles))]
    actions = [
        {"type": "QUICK_REPLY", "title": t, "id": i} for t, i in zip(titles, ids, strict=True)
    ]
    return {"twilio/quick-reply": {"body": body, "actions": actions}}


def list_picker(
    *items: str, button: str = "Pilih", description: str | None = None, item_id: str = ""
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {"item": item, "id": item_id or f"i:{n}"} for n, item in enumerate(items)
    ]
    if description is not None:
        rows[0]["description"] = description
    return {"twilio/list-picker": {"body": "{{1}}", "button": button, "items": rows}}


@pytest.mark.parametrize(
    ("types", "complaint"),
    [
        (quick_reply("A", "B", "C", "D"), "at most 3 buttons"),
        (quick_reply("x" * 21), "title exceeds 20"),
        (quick_reply("Ya", "Ya"), "title must be unique"),
        (quick_reply("Ya", "Tidak", ids=["same", "same"]), "id must be unique"),
        (quick_reply("Ya", ids=["x" * 257]), "id exceeds 256"),
        (quick_reply(), "1 to 3 buttons"),
        (quick_reply("Ya", body="x" * 1025), "body exceeds 1024"),
        (list_picker(*[f"Desa {i}" for i in range(11)]), "1 to 10 items"),
        (list_picker(), "1 to 10 items"),
        (list_picker("x" * 25), "item exceeds 24"),
        (list_picker("Ya", description="x" * 73), "description exceeds 72"),
        (list_picker("Ya", item_id="x" * 201), "id exceeds 200"),
        (list_picker("Ya", "Tidak", item_id="same"), "id must be unique"),
        (list_picker("Ya", button="x" * 21), "button exceeds 20"),
        (list_picker("Ya", button=""), "button is required"),
        ({"twilio/carousel": {"body": "x"}}, "not supported"),
        ({"twilio/quick-reply": None}, "one content type"),
    ],
)
async def test_twilios_limits_are_enforced(
    fake: TwilioFake, content_client: Client, types: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(TwilioRestException) as info:
        await create(content_client, types)
    assert (info.value.status, info.value.code) == (400, 400)
    assert complaint in info.value.msg
    assert fake.contents == {} and fake.counters["content_requests"] == 1


async def test_a_refusal_is_twilios_error_json_and_auth_is_checked(fake: TwilioFake) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, trust_env=False) as http:
        auth = (fake.account_sid, fake.auth_token)
        bad = await http.post(
            "/v1/Content", json={"language": "id", "types": quick_reply("A" * 30)}, auth=auth
        )
        assert bad.status_code == 400
        body = bad.json()
        assert body.keys() == {"code", "message", "more_info", "status"}
        assert (body["code"], body["status"]) == (400, 400)
        assert body["more_info"] == "https://www.twilio.com/docs/errors/400"
        assert (await http.post("/v1/Content", content=b"not json", auth=auth)).status_code == 400
        wrong = await http.post("/v1/Content", json={}, auth=(fake.account_sid, "wrong"))
        assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)
        missing = await http.get("/v1/Content/HX" + "00" * 16, auth=auth)
        assert (missing.status_code, missing.json()["code"]) == (404, 20404)


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_the_content_api_fails_on_cue_then_recovers(
    fake: TwilioFake, content_client: Client, status: int
) -> None:
    fake.fail_content(status)  # type: ignore[arg-type]
    with pytest.raises(TwilioRestException) as info:
        await create(content_client, CONSENT_QR)
    assert info.value.status == status
    assert fake.counters[f"content_fault_{status}"] == 1
    assert (await create(content_client, CONSENT_QR)).sid in fake.contents


async def test_session_content_needs_the_window_and_a_body_within_1024(
    fake: TwilioFake, content_client: Client
) -> None:
    created = await create(content_client, CONSENT_QR)
    late = await send(content_client, content_sid=created.sid, content_variables='{"1": "x"}')
    await fake.deliver_status_callbacks()
    assert (fake.message(late.sid).status, fake.message(late.sid).error_code) == (
        "undelivered",
        63016,
    ), "a quick reply is no approved template: outside the window it is not delivered"
    fake.inbound_text(USER, "halo")
    long = json.dumps({"1": "x" * 1025})
    refused = await send(content_client, content_sid=created.sid, content_variables=long)
    ok = await send(content_client, content_sid=created.sid, content_variables='{"1": "x"}')
    await fake.deliver_status_callbacks()
    assert (fake.message(refused.sid).status, fake.message(refused.sid).error_code) == (
        "failed",
        63005,
    )
    assert fake.message(ok.sid).status == "delivered"
