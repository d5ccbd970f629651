"""First contact: welcome, the privacy notice (UU PDP 27/2022) and choosing the village; a
report asked for before them waits until they are done (``begin_report``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.permissions import role_of
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from handlers.types import Option
from storage import contacts
from storage.areas import VILLAGE_LEVELS, get_by_code, search_villages
from storage.models import Area
from storage.reports import areas_by_id

MAX_MATCHES = 6


async def begin(turn: Turn, *, after: str | None = None, area_code: str | None = None) -> None:
    """Welcome someone who has not consented yet and show the privacy notice."""
    if after is not None:
        turn.draft["after"] = after
    if area_code is not None:
        turn.draft["area_code"] = area_code
    turn.say(turn.t("welcome.body"))
    await turn.enter(State.CONSENT)


async def begin_report(turn: Turn, *, urgent: bool) -> None:
    """/lapor or /darurat: consent and village first when missing, then the report flow."""
    wanted = "emergency" if urgent else "report"
    if urgent and (not turn.consented or turn.contact.area_id is None):
        wanted = "emergency_after_onboarding"
    if turn.state.in_report:
        if urgent and not turn.report.get("urgent"):
            turn.report["urgent"] = turn.report["forced_urgent"] = True
            turn.say(turn.t("report.marked_urgent"))
        elif not urgent:
            turn.say(turn.t("report.in_progress"))
        await turn.reprompt()
        return
    if not turn.consented:
        await begin(turn, after=wanted)
        return
    if turn.state is State.AREA or turn.contact.area_id is None:
        turn.draft["after"] = wanted
        await turn.enter(State.AREA)
        return
    turn.draft.pop("return", None)
    await turn.continue_with(wanted)


async def staff_area_locked(turn: Turn) -> bool:
    """Staff serve their invite's area; only a new invite moves them. Says so; True if staff."""
    if not role_of(turn.contact).is_staff:
        return False
    area = await turn.session.get(Area, turn.contact.area_id) if turn.contact.area_id else None
    label = await area_label(turn.session, area) if area else "-"
    turn.say(turn.t("area.staff_fixed", area=label))
    return True


async def settle(turn: Turn) -> None:
    """After consent: make sure the village is known, then do what the user came for."""
    if turn.contact.area_id is None and role_of(turn.contact).is_staff:
        turn.draft.pop("area_code", None)
        await staff_area_locked(turn)
        await turn.enter(State.IDLE)
        return
    if turn.contact.area_id is None:
        code = turn.draft.pop("area_code", None)
        if isinstance(code, str) and code:
            area = await village_by_code(turn.session, code)
            if area is None:
                turn.say(turn.t("area.code_unknown", code=code))
                await turn.enter(State.AREA)
                return
            turn.contact.area_id = area.id
            turn.say(turn.t("area.set", area=await area_label(turn.session, area)))
        else:
            await turn.enter(State.AREA)
            return
    turn.draft.pop("area_code", None)
    turn.draft.pop("area_matches", None)
    if await turn.continue_with(turn.draft.pop("after", None)):
        return
    turn.say(turn.t("onboarding.ready"))
    await turn.enter(State.IDLE)


def start_payload(area_code: str) -> str:
    """The deep-link payload for an area code: t.me/<bot>?start=17_71_08_1004.

    Telegram allows only A-Z, a-z, 0-9, "_" and "-" in a start parameter, so dots become "_".
    """
    return area_code.replace(".", "_")


def code_from_payload(payload: str) -> str:
    """Back from a deep-link payload (or a typed code with "-" or "_") to the area code."""
    return payload.strip().replace("_", ".").replace("-", ".")


async def village_by_code(session: AsyncSession, code: str) -> Area | None:
    """The kelurahan/desa with this code (an area of another level does not count)."""
    area = await get_by_code(session, code)
    if area is None and code_from_payload(code) != code.strip():
        area = await get_by_code(session, code_from_payload(code))
    if area is None or area.level not in VILLAGE_LEVELS:
        return None
    return area


async def area_label(session: AsyncSession, area: Area) -> str:
    """'Sumber Jaya (Kampung Melayu, Kota Bengkulu)'."""
    labels = await area_labels(session, [area])
    return labels[area.id]


async def area_labels(session: AsyncSession, areas: list[Area]) -> dict[int, str]:
    """Village names with their kecamatan and kota/kabupaten, in two queries at most."""
    parents = await areas_by_id(session, {a.parent_id for a in areas if a.parent_id is not None})
    grand = await areas_by_id(session, {p.parent_id for p in parents.values() if p.parent_id})
    labels: dict[int, str] = {}
    for area in areas:
        chain = []
        parent = parents.get(area.parent_id or 0)
        if parent is not None:
            chain.append(parent.name)
            top = grand.get(parent.parent_id or 0)
            if top is not None:
                chain.append(top.name)
        labels[area.id] = f"{area.name} ({', '.join(chain)})" if chain else area.name
    return labels


# --- CONSENT -------------------------------------------------------------------------------


@prompt(State.CONSENT)
async def ask_consent(turn: Turn) -> None:
    """Show the privacy notice with Setuju / Tidak."""
    turn.say(
        turn.t("consent.body"),
        [
            Option(turn.t("consent.agree"), "consent:yes"),
            Option(turn.t("consent.decline"), "consent:no"),
        ],
    )


@expects(State.CONSENT)
async def consent_answered(turn: Turn) -> bool:
    """Setuju: keep name and phone and go on; Tidak: keep nothing but the chat id."""
    if turn.option == "consent:yes":
        contacts.give_consent(
            turn.contact, display_name=turn.msg.display_name, phone=turn.msg.phone, now=turn.now
        )
        turn.say(turn.t("consent.thanks"))
        await settle(turn)
        return True
    if turn.option == "consent:no":
        contacts.forget_personal_fields(turn.contact)
        turn.draft = {}
        turn.state = State.IDLE
        turn.say(turn.t("consent.declined"))
        return True
    return False


@fallback(State.CONSENT)
async def consent_unclear(turn: Turn) -> None:
    """Anything but an answer: say that a choice is needed and show the notice again."""
    turn.say(turn.t("consent.need_answer"))
    await turn.reprompt()


# --- AREA ----------------------------------------------------------------------------------


@prompt(State.AREA)
async def ask_area(turn: Turn) -> None:
    """Ask for the village name, or show the matches found so far."""
    matches = [(str(label), str(data)) for label, data in turn.draft.get("area_matches") or ()]
    if matches:
        turn.say(turn.t("area.pick"), [Option(label, data) for label, data in matches])
    else:
        turn.say(turn.t("area.ask"))


@expects(State.AREA)
async def area_given(turn: Turn) -> bool:
    """A match was picked, or a name was typed to search."""
    if await staff_area_locked(turn):
        turn.draft.pop("area_matches", None)
        await turn.enter(State.IDLE)
        return True
    if turn.option is not None and turn.option.startswith("area:"):
        area = await turn.session.get(Area, int(turn.option.removeprefix("area:")))
        if area is None or area.level not in VILLAGE_LEVELS:
            turn.draft.pop("area_matches", None)
            turn.say(turn.t("area.gone"))
            await turn.reprompt()
            return True
        turn.contact.area_id = area.id
        turn.say(turn.t("area.set", area=await area_label(turn.session, area)))
        await settle(turn)
        return True
    if turn.text is None or turn.msg.media or turn.location is not None:
        return False
    query = " ".join(turn.text.split())
    if len(query) < 3:
        turn.say(turn.t("area.too_short"))
        return True
    found = await search_villages(turn.session, query, limit=MAX_MATCHES)
    if not found:
        turn.draft.pop("area_matches", None)
        turn.say(turn.t("area.none", query=query))
        return True
    labels = await area_labels(turn.session, found)
    turn.draft["area_matches"] = [[labels[a.id], f"area:{a.id}"] for a in found]
    await turn.reprompt()
    return True


@fallback(State.AREA)
async def area_unclear(turn: Turn) -> None:
    """A sticker, a pin or a photo: say a village name is needed."""
    turn.say(turn.t("area.need_name"))
    await turn.reprompt()
