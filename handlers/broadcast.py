"""/umumkan (/announce): a coordinator's announcement to an area and every area below it.

The flow: choose the area (own area or one below it), the audience (residents, officers' groups,
or both; an officer no group reaches, e.g. on WhatsApp, gets the groups' copy 1:1, see
``handlers.audience``), write the text (a photo with it is optional), see the preview with the
recipient count, send or cancel. Sending writes the broadcast and one outbox row per recipient
in the same transaction, each keyed ``broadcast:<id>:<recipient>``; the dispatcher paces them
within the channels' limits, WhatsApp contacts outside the 24-hour window get the ``broadcast``
template, and opted-out residents are skipped (here, and again by the WhatsApp sender at send
time); an officer's copy is a duty and goes all the same (marked ``duty`` in its row).
``/umumkan status`` shows sent / failed / pending for the latest broadcasts. Every step checks
that the contact is a coordinator/admin of the chosen area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.audience import officers_group, one_per_person
from handlers.permissions import coordinated_area_ids, may_coordinate
from handlers.render import format_time
from handlers.routing import BotRoutes
from handlers.states import State
from handlers.turn import Turn, expects, fallback, prompt
from handlers.types import Media, MediaKind, Option, Reply
from storage import broadcasts, outbox
from storage.areas import children, descendant_ids
from storage.broadcasts import Audience
from storage.drafts import BroadcastDraft
from storage.models import Area, Broadcast, Contact, GroupChat, Outbox
from storage.types import OutboxKind, Role

AREA_CHOICES = 12
STATUS_LIMIT = 5
BROADCAST_STATES = frozenset(
    {
        State.BROADCAST_AREA,
        State.BROADCAST_AUDIENCE,
        State.BROADCAST_TEXT,
        State.BROADCAST_CONFIRM,
    }
)
CANCEL = "bc:cancel"


def _draft(turn: Turn) -> BroadcastDraft:
    """The broadcast being prepared (created empty on first use)."""
    draft = turn.draft.get("broadcast")
    if not isinstance(draft, dict):
        draft = {}
        turn.draft["broadcast"] = draft
    return draft


def _cancel_option(turn: Turn) -> Option:
    return Option(turn.t("broadcast.cancel"), CANCEL)


async def begin(turn: Turn, arg: str | None) -> None:
    """/umumkan, or /umumkan status."""
    if not await coordinated_area_ids(turn.session, turn.contact):
        turn.say(turn.t("broadcast.only_coordinators"))
        await turn.reprompt_if_busy()
        return
    if arg and arg.lower() == "status":
        turn.say(await status_text(turn))
        await turn.reprompt_if_busy()
        return
    if turn.state is not State.IDLE and turn.state not in BROADCAST_STATES:
        turn.say(turn.t("broadcast.busy"))
        await turn.reprompt()
        return
    turn.draft["broadcast"] = {}
    choices = await _area_choices(turn)
    if len(choices) == 1:
        _draft(turn)["area_id"] = choices[0].id
        await turn.enter(State.BROADCAST_AUDIENCE)
        return
    await turn.enter(State.BROADCAST_AREA)


async def _area_choices(turn: Turn) -> list[Area]:
    """The coordinator's own area and the areas directly below it."""
    if turn.contact.area_id is None:
        return []
    own = await turn.session.get(Area, turn.contact.area_id)
    if own is None:
        return []
    return [own, *await children(turn.session, own.id, AREA_CHOICES)]


async def _leave(turn: Turn, key: str) -> None:
    """End the flow with a word; the draft goes."""
    turn.draft.pop("broadcast", None)
    turn.say(turn.t(key))
    await turn.enter(State.IDLE)


async def cancel(turn: Turn) -> None:
    """/batal or "Batal": nothing is sent."""
    await _leave(turn, "broadcast.cancelled")


async def _allowed(turn: Turn) -> int | None:
    """The chosen area, if the contact still coordinates it; otherwise the flow ends."""
    area_id = _draft(turn).get("area_id")
    if isinstance(area_id, int) and await may_coordinate(turn.session, turn.contact, area_id):
        return area_id
    await _leave(turn, "broadcast.only_coordinators")
    return None


# --- BROADCAST_AREA --------------------------------------------------------------------------


@prompt(State.BROADCAST_AREA)
async def ask_area(turn: Turn) -> None:
    """Which area: own area (with everything below) or one below it."""
    choices = await _area_choices(turn)
    options = [Option(a.name, f"bc:area:{a.id}") for a in choices]
    turn.say(turn.t("broadcast.ask_area"), [*options, _cancel_option(turn)])


@expects(State.BROADCAST_AREA)
async def area_chosen(turn: Turn) -> bool:
    """An offered area (checked again against the contact's areas)."""
    if turn.option == CANCEL:
        await cancel(turn)
        return True
    if not (turn.option or "").startswith("bc:area:"):
        return False
    area_id = int((turn.option or "").rsplit(":", 1)[1])
    _draft(turn)["area_id"] = area_id
    if await _allowed(turn) is None:
        return True
    await turn.enter(State.BROADCAST_AUDIENCE)
    return True


# --- BROADCAST_AUDIENCE ----------------------------------------------------------------------


@prompt(State.BROADCAST_AUDIENCE)
async def ask_audience(turn: Turn) -> None:
    """Residents, the officers' groups, or both."""
    options = [
        Option(turn.t(f"broadcast.audience_{a.value}"), f"bc:aud:{a.value}") for a in Audience
    ]
    turn.say(turn.t("broadcast.ask_audience"), [*options, _cancel_option(turn)])


@expects(State.BROADCAST_AUDIENCE)
async def audience_chosen(turn: Turn) -> bool:
    """An offered audience."""
    if turn.option == CANCEL:
        await cancel(turn)
        return True
    value = (turn.option or "").removeprefix("bc:aud:")
    if value not in set(Audience):
        return False
    _draft(turn)["audience"] = value
    await turn.enter(State.BROADCAST_TEXT)
    return True


# --- BROADCAST_TEXT --------------------------------------------------------------------------


@prompt(State.BROADCAST_TEXT)
async def ask_text(turn: Turn) -> None:
    """The announcement's text; a photo (with the text as its caption) is optional."""
    turn.say(turn.t("broadcast.ask_text"), [_cancel_option(turn)])


@expects(State.BROADCAST_TEXT)
async def text_given(turn: Turn) -> bool:
    """Text (with or without a photo), or a photo alone (then the text is asked for)."""
    if turn.option == CANCEL:
        await cancel(turn)
        return True
    photos = [m for m in turn.attachments if m.kind is MediaKind.PHOTO]
    if turn.option is not None or (turn.text is None and not photos):
        return False
    draft = _draft(turn)
    if photos:
        draft["photo"] = photos[0].to_json()
    if turn.text is None:
        turn.say(turn.t("broadcast.photo_kept"))
        await turn.reprompt()
        return True
    draft["text"] = turn.text
    await turn.enter(State.BROADCAST_CONFIRM)
    return True


@fallback(State.BROADCAST_TEXT)
async def text_unclear(turn: Turn) -> None:
    """A sticker, a pin, a voice note."""
    turn.say(turn.t("broadcast.need_text"))
    await turn.reprompt()


# --- BROADCAST_CONFIRM -----------------------------------------------------------------------


def _photo(draft: BroadcastDraft) -> Media | None:
    photo = draft.get("photo")
    return Media.from_json(photo) if isinstance(photo, dict) else None


def _announcement(turn: Turn, lang: str, area: Area, text: str, *, resident: bool) -> str:
    """The message as recipients see it, in their language."""
    parts = [turn.catalog.text(lang, "broadcast.header", area=area.name), text]
    if resident:
        parts.append(turn.catalog.text(lang, "broadcast.footer"))
    return "\n\n".join(parts)


@prompt(State.BROADCAST_CONFIRM)
async def show_preview(turn: Turn) -> None:
    """The message as residents will see it, the recipient count, and Kirim / Ubah / Batal."""
    draft = _draft(turn)
    area_id = await _allowed(turn)
    if area_id is None:
        return
    area = await turn.session.get(Area, area_id)
    assert area is not None
    audience = Audience(draft.get("audience") or Audience.RESIDENTS)
    count = len(await recipients(turn, area, audience))
    text = _announcement(turn, turn.lang, area, str(draft.get("text", "")), resident=True)
    turn.say(text, media=_photo(draft))
    turn.say(
        turn.t(
            "broadcast.preview",
            count=count,
            area=area.name,
            audience=turn.t(f"broadcast.audience_{audience.value}"),
        ),
        [
            Option(turn.t("broadcast.send"), "bc:send"),
            Option(turn.t("broadcast.edit"), "bc:edit"),
            _cancel_option(turn),
        ],
    )


async def _target_ids(turn: Turn, area_id: int) -> list[int]:
    """The chosen area and everything below it."""
    return await descendant_ids(turn.session, area_id)


@expects(State.BROADCAST_CONFIRM)
async def confirmed(turn: Turn) -> bool:
    """Kirim sends, Ubah asks for the text again, Batal drops it."""
    if turn.option == CANCEL:
        await cancel(turn)
        return True
    if turn.option == "bc:edit":
        await turn.enter(State.BROADCAST_TEXT)
        return True
    if turn.option != "bc:send":
        return False
    await send(turn)
    return True


@fallback(State.BROADCAST_AREA)
@fallback(State.BROADCAST_AUDIENCE)
@fallback(State.BROADCAST_CONFIRM)
async def option_unclear(turn: Turn) -> None:
    """Anything but an offered option (area, audience, or send/change/cancel)."""
    turn.say(turn.t("broadcast.choose_option"))
    await turn.reprompt()


async def send(turn: Turn) -> None:
    """Write the broadcast and one outbox row per recipient (the caller commits them together)."""
    area_id = await _allowed(turn)
    if area_id is None:
        return
    draft = _draft(turn)
    area = await turn.session.get(Area, area_id)
    assert area is not None
    audience = Audience(draft.get("audience") or Audience.RESIDENTS)
    text = str(draft.get("text", ""))
    photo = _photo(draft)
    if not await recipients(turn, area, audience):  # nobody to send to: say so, send nothing
        turn.say(
            turn.t(
                "broadcast.no_recipients",
                area=area.name,
                audience=turn.t(f"broadcast.audience_{audience.value}"),
            )
        )
        await turn.enter(State.BROADCAST_AUDIENCE)
        return
    item = Broadcast(
        area_id=area_id,
        created_by_id=turn.contact.id,
        audience=audience.value,
        text=text,
        media_ref=photo.ref if photo else None,
        recipients=0,
        created_at=turn.now,
    )
    turn.session.add(item)
    await turn.session.flush()
    rows = await enqueue_recipients(turn, item, area, photo)
    item.recipients = len(rows)
    turn.outbox.extend(rows)
    turn.outcome.recorded.broadcast = {"id": item.id, "recipients": len(rows)}
    turn.draft.pop("broadcast", None)
    turn.say(turn.t("broadcast.sent", count=len(rows), id=item.id))
    await turn.enter(State.IDLE)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One copy of a broadcast: a group chat, or a person 1:1 (a resident, or an officer no
    group reaches, who reads the officers' version)."""

    channel: str
    chat_id: int
    lang: str
    who: str  # "g<group id>" or "c<contact id>": the row's key
    bot: str
    contact_id: int | None = None
    resident: bool = False


async def recipients(turn: Turn, area: Area, audience: Audience) -> list[Recipient]:
    """Everyone the broadcast reaches, once each (``handlers.audience``): the residents of the
    area and below (consented, not opted out), and/or their officers' groups with, 1:1, every
    officer no group reaches. The preview counts exactly these."""
    area_ids = await _target_ids(turn, area.id)
    routes = BotRoutes(turn.session, turn.config)
    default = turn.config.default_language
    groups: list[GroupChat] = []
    staff: list[Contact] = []
    via_groups: list[Contact] = []
    residents: list[Contact] = []
    if audience.groups:
        reach = await officers_group(turn.session, turn.config, area_ids)
        groups, staff, via_groups = reach.groups, reach.people, reach.via_groups
    if audience.residents:
        residents = await broadcasts.residents_in(turn.session, area_ids)
    people = one_per_person([*staff, *residents], reached=via_groups)
    found = [
        Recipient(g.channel, g.chat_id, default, f"g{g.id}", await routes.group(g)) for g in groups
    ]
    for person in people:
        found.append(
            Recipient(
                person.channel,
                person.external_id,
                person.language or default,
                f"c{person.id}",
                await routes.contact(person),
                person.id,
                resident=person.role == Role.RESIDENT.value,
            )
        )
    return found


async def enqueue_recipients(
    turn: Turn, item: Broadcast, area: Area, photo: Media | None
) -> list[Outbox]:
    """One outbox row per recipient, keyed so nobody can get it twice. Residents read it with
    the BERHENTI footer; groups and officers without one (a staff duty: BERHENTI does not stop
    it, see README)."""
    replies: dict[tuple[str, bool], Reply] = {}
    rows: list[Outbox] = []
    for to in await recipients(turn, area, Audience(item.audience)):
        if (to.lang, to.resident) not in replies:
            text = _announcement(turn, to.lang, area, item.text, resident=to.resident)
            replies[to.lang, to.resident] = Reply(text, media=photo)
        row = _row(turn, item, to, replies[to.lang, to.resident])
        row.contact_id = to.contact_id
        rows.append(row)
    return rows


def _row(turn: Turn, item: Broadcast, to: Recipient, reply: Reply) -> Outbox:
    photo = reply.media
    caps = turn.config.capabilities(to.channel)
    if photo is not None and not caps.can_send(photo.kind, photo.size):
        reply = Reply(reply.text)  # a photo over what this channel sends: the words still go
    extra: dict[str, Any] = {"lang": to.lang, "broadcast": item.id}
    if to.contact_id is not None and not to.resident:
        extra["duty"] = True  # a staff member's copy: not subject to BERHENTI
    row = outbox.enqueue(
        turn.session,
        channel=to.channel,
        chat_id=to.chat_id,
        kind=OutboxKind.BROADCAST.value,
        reply=reply,
        dedupe_key=f"broadcast:{item.id}:{to.who}",
        extra=extra,
        bot=to.bot,
    )
    row.broadcast_id = item.id
    return row


# --- /umumkan status -------------------------------------------------------------------------


async def status_text(turn: Turn) -> str:
    """Sent / failed / pending of the latest broadcasts to the coordinator's areas."""
    area_ids = await coordinated_area_ids(turn.session, turn.contact)
    found = await broadcasts.recent(turn.session, area_ids, STATUS_LIMIT)
    if not found:
        return turn.t("broadcast.status_none")
    areas = {
        a.id: a for a in [await turn.session.get(Area, p.broadcast.area_id) for p in found] if a
    }
    zone = next(iter(areas.values())).timezone if areas else None
    lines = [turn.t("broadcast.status_title")]
    for progress in found:
        item = progress.broadcast
        area = areas.get(item.area_id)
        lines.append(
            turn.t(
                "broadcast.status_line",
                id=item.id,
                time=format_time(item.created_at, zone),
                area=area.name if area else "-",
                audience=turn.t(f"broadcast.audience_{item.audience}"),
                excerpt=_excerpt(item.text),
                sent=progress.sent,
                failed=progress.failed,
                pending=progress.pending,
            )
        )
    return "\n".join(lines)


def _excerpt(text: str, limit: int = 40) -> str:
    """The first words of the announcement."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
