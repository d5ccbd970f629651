"""The Open311 API's behaviour: filing takes the chat's path (alert, routing), keys of other
areas and revoked keys are refused, reads are private unless published, anonymous reports carry
no reporter fields, a retried POST is one report, filters, rate limits and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from handlers.open311 import SPEC_REQUEST_FIELDS
from storage import open311
from storage.models import Open311Request, Outbox, Report
from storage.types import utcnow
from tests.support.chats import ALERT_GROUP, KAMPUNG_MELAYU, SUMBER_JAYA, WIYONO, texts
from tests.support.open311 import Api, report_form


async def count(api: Api, model: Any) -> int:
    async with api.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def alerts(api: Api) -> list[Outbox]:
    async with api.sessions() as session:
        rows = await session.scalars(select(Outbox).where(Outbox.kind == "alert"))
        return list(rows.all())


async def post(client: httpx.AsyncClient, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await client.post("/requests.json", data=form, **kwargs)


# --- filing ----------------------------------------------------------------------------------


async def test_a_post_files_a_report_the_way_the_chat_does(api: Api) -> None:
    async with api.client() as client:
        response = await post(client, report_form(api.key))
    assert response.status_code == 201, response.text
    [answer] = response.json()
    ticket = answer["service_request_id"]
    assert ticket.startswith("KTN-")
    assert answer["service_notice"].startswith(f"Laporan {ticket} sudah diteruskan ke petugas")
    async with api.sessions() as session:
        report = await session.scalar(select(Report))
        assert report is not None
        assert (report.ticket, report.category, report.status) == (ticket, "keamanan", "new")
        assert report.reporter_id is None and not report.anonymous and not report.urgent
        assert (report.latitude, report.longitude) == (-3.7956, 102.2592)
        assert report.escalate_at is not None  # escalation as for a chat report: 60 min
        assert (report.escalate_at - report.created_at).total_seconds() == 3600
    # The alert goes where the chat's would: Sumber Jaya's officers' group, with its buttons.
    [alert] = await alerts(api)
    assert alert.chat_id == ALERT_GROUP and alert.report_id == report.id
    text = alert.payload["reply"]["text"]
    assert "Pelapor: Budi Santoso, +6281234567890" in text
    assert "Masuk lewat: Call centre Polres Bengkulu" in text
    assert [o[1] for o in alert.payload["reply"]["options"]] == [
        f"claim:{report.id}",
        f"resolve:{report.id}",
        f"reject:{report.id}",
        f"merge:{report.id}",
        f"pmenu:{report.id}",
    ]
    assert api.woken  # the dispatcher was woken after the commit


async def test_an_officer_acts_on_an_api_report_like_on_any_other(api: Api) -> None:
    async with api.client() as client:
        ticket = (await post(client, report_form(api.key))).json()[0]["service_request_id"]
        out = await api.cast.officer.send(f"TANGANI {ticket}")
        assert f"Anda menangani {ticket}" in texts(out)
        [view] = (
            await client.get(f"/requests/{ticket}.json", headers={"X-Api-Key": api.key})
        ).json()
        assert view["status"] == "open"  # claimed is still open
        api.cast.officer.advance(minutes=30)
        await api.cast.officer.send(f"TOLAK {ticket} bukan wilayah kami")
        [view] = (
            await client.get(f"/requests/{ticket}.json", headers={"X-Api-Key": api.key})
        ).json()
    assert view["status"] == "closed" and view["status_notes"] == "bukan wilayah kami"
    assert view["updated_datetime"] == "2025-05-12T10:30:00+07:00"  # the rejection, in WIB
    assert view["requested_datetime"] == "2025-05-12T10:00:00+07:00"


async def test_urgent_and_urgent_categories_escalate_sooner(api: Api) -> None:
    async with api.client() as client:
        flagged = await post(client, report_form(api.key, **{"attribute[urgent]": "true"}))
        disaster = await post(client, report_form(api.key, service_code="bencana"))
    assert flagged.status_code == disaster.status_code == 201
    async with api.sessions() as session:
        found = (await session.scalars(select(Report).order_by(Report.id))).all()
    assert [r.urgent for r in found] == [True, True]
    assert all((r.escalate_at - r.created_at).total_seconds() == 600 for r in found)  # type: ignore[operator]
    assert all("LAPORAN MENDESAK" in a.payload["reply"]["text"] for a in await alerts(api))


async def test_a_kecamatan_key_files_in_its_villages_by_address_id(api: Api) -> None:
    _, kecamatan = await api.new_key(KAMPUNG_MELAYU, "Polsek Kampung Melayu")
    async with api.client() as client:
        response = await post(
            client, report_form(kecamatan, address_id=SUMBER_JAYA, lat=None, long=None)
        )
    assert response.status_code == 201, response.text
    [alert] = await alerts(api)
    assert alert.chat_id == ALERT_GROUP  # the village's group, not the kecamatan's


async def test_a_key_of_another_area_is_refused(api: Api) -> None:
    _, wiyono = await api.new_key(WIYONO)
    async with api.client() as client:
        filed = await post(client, report_form(api.key))
        ticket = filed.json()[0]["service_request_id"]
        into_other = await post(client, report_form(wiyono, address_id=SUMBER_JAYA))
        upwards = await post(client, report_form(api.key, address_id=KAMPUNG_MELAYU))
        read_other = await client.get(f"/requests/{ticket}.json", headers={"X-Api-Key": wiyono})
        listed = await client.get("/requests.json", headers={"X-Api-Key": wiyono})
    for refused in (into_other, upwards, read_other):
        assert refused.status_code == 403, refused.text
        assert refused.json()[0]["code"] == 403
    assert "another area" in into_other.json()[0]["description"]
    assert listed.status_code == 200 and listed.json() == []  # Wiyono's system sees Wiyono's
    assert await count(api, Report) == 1


async def test_a_revoked_key_is_refused(api: Api) -> None:
    async with api.client() as client:
        assert (await post(client, report_form(api.key))).status_code == 201
        async with api.sessions() as session:
            assert await open311.revoke_key(session, api.key_id, utcnow()) is not None
            await session.commit()
        again = await post(client, report_form(api.key, description="lagi"))
        read = await client.get("/requests.json", headers={"X-Api-Key": api.key})
    assert again.status_code == read.status_code == 403
    assert again.json() == [{"code": 403, "description": "api_key invalid or revoked"}]
    assert await count(api, Report) == 1


async def test_the_same_post_again_is_the_same_report(api: Api) -> None:
    form = report_form(api.key)
    async with api.client() as client:
        first = await post(client, form)
        again = await post(client, form)  # the client's retry after a timeout
        api.clock.advance(minutes=61)  # [open311] resubmit_window_minutes = 60
        later = await post(client, form)
    assert (first.status_code, again.status_code, later.status_code) == (201, 200, 201)
    assert first.json() == again.json()
    assert later.json()[0]["service_request_id"] != first.json()[0]["service_request_id"]
    assert await count(api, Report) == 2
    assert len(await alerts(api)) == 2  # the retry alerted nobody


async def test_two_identical_posts_at_once_are_one_report(api: Api) -> None:
    form = report_form(api.key)
    async with api.client() as client:
        answers = await asyncio.gather(*(post(client, form) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()[0]["service_request_id"] for a in answers}) == 1
    assert await count(api, Report) == 1 and len(await alerts(api)) == 1


async def test_an_idempotency_key_says_which_posts_are_one_report(api: Api) -> None:
    form = report_form(api.key)
    async with api.client() as client:
        one = await post(client, form, headers={"Idempotency-Key": "call-1001"})
        two = await post(client, form, headers={"Idempotency-Key": "call-1002"})  # intended
        retry = await post(
            client, report_form(api.key, description="x"), headers={"Idempotency-Key": "call-1001"}
        )
    assert (one.status_code, two.status_code, retry.status_code) == (201, 201, 200)
    assert retry.json()[0]["service_request_id"] == one.json()[0]["service_request_id"]
    assert await count(api, Report) == 2


async def test_the_same_post_with_another_key_is_another_report(api: Api) -> None:
    _, kecamatan = await api.new_key(KAMPUNG_MELAYU)
    async with api.client() as client:
        first = await post(client, report_form(api.key, address_id=SUMBER_JAYA))
        other = await post(client, report_form(kecamatan, address_id=SUMBER_JAYA))
    assert first.status_code == other.status_code == 201
    assert await count(api, Report) == 2


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"service_code": None}, 400, "service_code was not provided"),
        ({"service_code": "pencurian"}, 404, "service_code 'pencurian' not found"),
        ({"description": None}, 400, "description is required"),
        ({"description": "x" * 1001}, 400, "longer than 1000"),
        ({"lat": None, "long": None, "address_string": None}, 400, "a location is required"),
        ({"long": None}, 400, "lat and long must be sent together"),
        ({"lat": "utara"}, 400, "lat must be a number"),
        ({"lat": "91"}, 400, "lat must be between -90 and 90"),
        ({"phone": "12"}, 400, "phone is not a phone number"),
        ({"email": "budi"}, 400, "email is not an e-mail address"),
        ({"first_name": "B" * 129}, 400, "first_name is longer than 128"),
        ({"attribute[warna]": "merah"}, 400, "attribute[warna] is not asked"),
        ({"attribute[anonymous]": "ya"}, 400, "attribute[anonymous] must be true or false"),
        ({"address_id": "99.99"}, 400, "not a known area code"),
        ({"jurisdiction_id": "jakarta.go.id"}, 404, "jurisdiction_id 'jakarta.go.id' not found"),
    ],
)
async def test_bad_posts_are_refused_and_nothing_is_filed(
    api: Api, fields: dict[str, Any], status: int, says: str
) -> None:
    async with api.client() as client:
        response = await post(client, report_form(api.key, **fields))
    assert response.status_code == status, response.text
    [error] = response.json()
    assert error["code"] == status and says in error["description"]
    assert await count(api, Report) == 0 and await count(api, Outbox) == 0


async def test_the_configured_jurisdiction_and_an_address_alone_are_enough(api: Api) -> None:
    form = report_form(api.key, jurisdiction_id="ktn", lat=None, long=None, phone=None)
    async with api.client() as client:
        response = await post(client, form)
        not_a_form = await client.post("/requests.json", json=form, headers={"X-Api-Key": api.key})
    assert response.status_code == 201, response.text
    assert not_a_form.status_code == 400
    assert "x-www-form-urlencoded" in not_a_form.json()[0]["description"]


# --- reading and privacy ---------------------------------------------------------------------


async def test_reads_need_a_key_unless_published(api: Api) -> None:
    async with api.client() as client:
        await post(client, report_form(api.key))
        closed = await client.get("/requests.json")
        keyed = await client.get("/requests.json", headers={"X-Api-Key": api.key})
        in_query = await client.get("/requests.json", params={"api_key": api.key})
    assert closed.status_code == 403
    assert closed.json()[0]["description"].startswith("api_key required")
    assert keyed.status_code == in_query.status_code == 200 and len(keyed.json()) == 1
    api.settings = api.settings.model_copy(update={"public": True})
    async with api.client() as client:
        public = await client.get("/requests.json")
    assert public.status_code == 200 and len(public.json()) == 1


async def test_reporter_fields_only_with_a_key_and_never_for_anonymous_reports(api: Api) -> None:
    api.settings = api.settings.model_copy(update={"public": True})
    chat = await api.cast.reporter.file_report(description="Pencurian helm di parkiran")
    hidden = await api.cast.resident.file_report(description="Ada judi", anonymous=True)
    async with api.client() as client:
        named = (await post(client, report_form(api.key))).json()[0]["service_request_id"]
        secret = (
            await post(
                client,
                report_form(
                    api.key, description="Peredaran narkoba", **{"attribute[anonymous]": "true"}
                ),
            )
        ).json()[0]["service_request_id"]
        keyed = {
            v["service_request_id"]: v
            for v in (await client.get("/requests.json", headers={"X-Api-Key": api.key})).json()
        }
        public = (await client.get("/requests.json")).json()
        xml = (await client.get("/requests.xml")).text
    assert keyed[named]["first_name"] == "Budi" and keyed[named]["phone"] == "+6281234567890"
    assert keyed[named]["email"] == "budi@example.id" and keyed[named]["account_id"] == "crm-77"
    chat_ticket = str(chat.recorded.filed["ticket"])
    assert keyed[chat_ticket]["first_name"] == "Budi Santoso"
    assert keyed[chat_ticket]["phone"] == "+6281100001"
    for ticket in (secret, str(hidden.recorded.filed["ticket"])):
        assert list(keyed[ticket]) == list(SPEC_REQUEST_FIELDS), ticket  # no reporter key at all
    for view in public:
        assert list(view) == list(SPEC_REQUEST_FIELDS)
    for personal in (
        "Budi",
        "Santoso",
        "+6281234567890",
        "budi@example.id",
        "crm-77",
        "6281100001",
    ):
        assert personal not in str(public) and personal not in xml
        assert personal not in str(keyed[secret])
    # An anonymous API report keeps no name or e-mail; only what the person's news needs.
    async with api.sessions() as session:
        rows = (await session.scalars(select(Open311Request))).all()
    [kept] = [r for r in rows if r.first_name is None]
    assert (kept.last_name, kept.email, kept.phone) == (None, None, "+6281234567890")
    secret_alert = [a for a in await alerts(api) if "narkoba" in a.payload["reply"]["text"]]
    assert "Pelapor: anonim" in secret_alert[0].payload["reply"]["text"]
    assert "Budi" not in secret_alert[0].payload["reply"]["text"]
    assert "+62812" not in secret_alert[0].payload["reply"]["text"]


async def test_public_reads_round_locations_and_blank_numbers_people_typed(api: Api) -> None:
    api.settings = api.settings.model_copy(update={"public": True, "round_location_digits": 2})
    story = "Tetangga dipukuli, hubungi saya di 0812-9876-5432 atau (0736) 21234 / siti@mail.id"
    async with api.client() as client:
        await post(
            client, report_form(api.key, description=story, lat="-3.795612", long="102.259287")
        )
        [public] = (await client.get("/requests.json")).json()
        [keyed] = (await client.get("/requests.json", headers={"X-Api-Key": api.key})).json()
    assert (public["lat"], public["long"]) == (-3.8, 102.26)
    assert public["description"] == "Tetangga dipukuli, hubungi saya di […] atau […] / […]"
    assert (keyed["lat"], keyed["long"]) == (-3.795612, 102.259287)
    assert keyed["description"] == story


async def test_filters_and_the_ninety_day_window(api: Api) -> None:
    officer = api.cast.officer
    old = await api.cast.reporter.file_report(description="Pagar sekolah rusak")  # 12 May
    api.clock.advance(days=100)
    for chat in (api.cast.reporter, api.cast.resident, officer):
        chat.advance(days=100)
    done = await api.cast.resident.file_report("kesehatan", "Banyak nyamuk, takut DBD")
    await officer.send(f"SELESAI {done.recorded.filed['ticket']} sudah fogging")
    headers = {"X-Api-Key": api.key}
    async with api.client() as client:
        new = (await post(client, report_form(api.key))).json()[0]["service_request_id"]

        async def tickets(**params: str) -> list[str]:
            response = await client.get("/requests.json", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return [v["service_request_id"] for v in response.json()]

        recent = await tickets()
        assert set(recent) == {new, done.recorded.filed["ticket"]}  # the last 90 days only
        assert await tickets(status="open") == [new]
        assert await tickets(status="closed") == [done.recorded.filed["ticket"]]
        assert set(await tickets(status="open,closed")) == set(recent)
        assert await tickets(service_code="kesehatan") == [done.recorded.filed["ticket"]]
        assert await tickets(
            start_date="2025-05-01T00:00:00Z", end_date="2025-05-31T00:00:00+07:00"
        ) == [old.recorded.filed["ticket"]]
        assert await tickets(start_date="2025-05-01") == [old.recorded.filed["ticket"]]
        # service_request_id overrides every other argument.
        both = f"{old.recorded.filed['ticket']},{new.lower()}"
        assert set(await tickets(service_request_id=both, status="closed")) == {
            old.recorded.filed["ticket"],
            new,
        }
        too_long = await client.get(
            "/requests.json",
            params={"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-06-01T00:00:00Z"},
            headers=headers,
        )
        backwards = await client.get(
            "/requests.json",
            params={"start_date": "2025-06-01T00:00:00Z", "end_date": "2025-05-01T00:00:00Z"},
            headers=headers,
        )
        bad_status = await client.get(
            "/requests.json", params={"status": "pending"}, headers=headers
        )
        missing = await client.get("/requests/KTN-ZZZZZZ.json", headers=headers)
    assert too_long.status_code == backwards.status_code == bad_status.status_code == 400
    assert "90 days" in too_long.json()[0]["description"]
    assert missing.status_code == 404


# --- rate limits -----------------------------------------------------------------------------


async def test_rate_limits_per_key_and_per_address_answer_429(api: Api) -> None:
    api.settings = api.settings.model_copy(
        update={"public": True, "per_key_per_minute": 3, "per_address_per_minute": 2}
    )
    app = api.app()
    headers = {"X-Api-Key": api.key}
    async with api.client(app) as client, api.client(app, address="10.9.8.7") as elsewhere:
        assert [
            (await client.get("/services.json", headers=headers)).status_code for _ in range(3)
        ] == [200] * 3
        limited = await client.get("/requests.xml", headers=headers)
        # Without a key the address counts: two, then 429; another address is not held up.
        assert [(await client.get("/services.json")).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        assert (await elsewhere.get("/services.json")).status_code == 200
        # Guessing keys counts against the address, too.
        assert (
            await elsewhere.get("/services.json", headers={"X-Api-Key": "ktn311_guess"})
        ).status_code == 403
        assert (
            await elsewhere.get("/services.json", headers={"X-Api-Key": "ktn311_again"})
        ).status_code == 429
        api.clock.advance(seconds=20)  # 3 a minute: one more after 20 s
        assert (await client.get("/services.json", headers=headers)).status_code == 200
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "20"
    assert limited.headers["content-type"] == "text/xml; charset=utf-8"
    assert "<code>429</code>" in limited.text and "too many requests" in limited.text


async def test_a_duplicate_is_closed_naming_its_report_and_a_reopened_one_is_open(
    api: Api,
) -> None:
    officer, reporter = api.cast.officer, api.cast.reporter
    main = str((await api.cast.resident.file_report()).recorded.filed["ticket"])
    dup = str(
        (await reporter.file_report(description="Motor hilang lagi")).recorded.filed["ticket"]
    )
    again = await reporter.file_report("kesehatan", "Got mampet")
    redone = str(again.recorded.filed["ticket"])
    await officer.send(f"gabung {dup} {main}")
    await officer.send(f"selesai {redone} sudah dibersihkan")
    await reporter.send(f"belum {redone} masih mampet")
    headers = {"X-Api-Key": api.key}
    async with api.client() as client:
        listed = await client.get("/requests.json", headers=headers)
        opened = await client.get("/requests.json", params={"status": "open"}, headers=headers)
        closed = await client.get("/requests.json", params={"status": "closed"}, headers=headers)
        xml = await client.get(f"/requests/{dup}.xml", headers=headers)
    views = {v["service_request_id"]: v for v in listed.json()}
    assert (views[dup]["status"], views[dup]["status_notes"]) == (
        "closed",
        f"Duplikat dari laporan {main}; perkembangannya ada di laporan itu.",
    )
    assert (views[redone]["status"], views[redone]["status_notes"]) == ("open", None)
    assert {v["service_request_id"] for v in opened.json()} == {main, redone}
    assert [v["service_request_id"] for v in closed.json()] == [dup]
    assert "<status>closed</status>" in xml.text and f"Duplikat dari laporan {main}" in xml.text
