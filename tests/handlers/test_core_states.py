"""Table tests: every state x {expected input, unexpected input, cancel}, plus every state's
answer to an over-long message and to a stale button."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from handlers.turn import EXPECTS, FALLBACKS, PROMPTS
from handlers.types import Location, Media, MediaKind, Outcome
from storage import conversations
from tests.support.chats import FakeChat, load_areas, photo, texts

Step = Callable[[FakeChat], Awaitable[Any]]
STICKER = Media(MediaKind.STICKER, "sticker-1")
PIN = Location(-3.7956, 102.2592)


async def _to_category(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")


async def _to_duplicate(chat: FakeChat) -> None:
    neighbour = FakeChat(chat.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    await neighbour.file_report("keamanan")
    await _to_category(chat)
    await chat.send("keamanan")


async def _to_description(chat: FakeChat) -> None:
    await _to_category(chat)
    await chat.press("cat:kesehatan")


async def _to_location(chat: FakeChat) -> None:
    await _to_description(chat)
    await chat.send("Ada warga pingsan di pos ronda")


async def _to_photo(chat: FakeChat) -> None:
    await _to_location(chat)
    await chat.send("RT 03/RW 02 dekat masjid")


async def _to_anonymous(chat: FakeChat) -> None:
    await _to_photo(chat)
    await chat.press("photo:skip")


async def _to_summary(chat: FakeChat) -> None:
    await _to_anonymous(chat)
    await chat.press("anon:no")


async def _to_edit(chat: FakeChat) -> None:
    await _to_summary(chat)
    await chat.press("sum:edit")


async def _to_area(chat: FakeChat) -> None:
    await chat.send("/start")
    await chat.press("consent:yes")


async def _to_erase(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/hapusdata")


async def _to_staff_note(chat: FakeChat) -> None:
    await chat.enrol("officer")
    neighbour = FakeChat(chat.sessions, user_id=2002, name="Siti")
    await neighbour.onboard()
    filed = await neighbour.file_report("keamanan")
    await chat.send(button=f"resolve:{filed.recorded.filed['report_id']}")


async def _to_reopen_reason(chat: FakeChat) -> None:
    await chat.onboard()
    filed = await chat.file_report("keamanan")
    report_id = filed.recorded.filed["report_id"]
    officer = FakeChat(chat.sessions, user_id=2003, name="Bripka Andi", now=chat.now)
    await officer.enrol("officer")
    await officer.send(f"selesai {filed.recorded.filed['ticket']} sudah aman")
    await chat.send(button=f"notfixed:{report_id}")


REACH: dict[State, Step] = {
    State.IDLE: lambda chat: chat.onboard(),
    State.CONSENT: lambda chat: chat.send("/start 17.71.08.1004"),
    State.AREA: _to_area,
    State.CATEGORY: _to_category,
    State.DUPLICATE: _to_duplicate,
    State.DESCRIPTION: _to_description,
    State.LOCATION: _to_location,
    State.PHOTO: _to_photo,
    State.ANONYMOUS: _to_anonymous,
    State.SUMMARY: _to_summary,
    State.EDIT: _to_edit,
    State.ERASE_CONFIRM: _to_erase,
    State.STAFF_NOTE: _to_staff_note,
    State.REOPEN_REASON: _to_reopen_reason,
}


async def _pick_area(chat: FakeChat) -> Outcome:
    await chat.send("sumber")
    return await chat.send("1")


# state: (expected input, state after it, unexpected input)
TABLE: dict[State, tuple[Step, State, Step]] = {
    State.IDLE: (lambda c: c.send("1"), State.CATEGORY, lambda c: c.send(media=[STICKER])),
    State.CONSENT: (lambda c: c.send("setuju"), State.IDLE, lambda c: c.send("apa ini?")),
    State.AREA: (_pick_area, State.IDLE, lambda c: c.send(location=PIN)),
    State.CATEGORY: (
        lambda c: c.send("Keamanan"),
        State.DESCRIPTION,
        lambda c: c.send(location=PIN),
    ),
    State.DUPLICATE: (lambda c: c.send("2"), State.DESCRIPTION, lambda c: c.send(media=[STICKER])),
    State.DESCRIPTION: (
        lambda c: c.send("Ada warga pingsan"),
        State.LOCATION,
        lambda c: c.send(media=[STICKER]),
    ),
    State.LOCATION: (
        lambda c: c.send(location=PIN),
        State.PHOTO,
        lambda c: c.send(media=[STICKER]),
    ),
    State.PHOTO: (
        lambda c: c.send(media=[photo()]),
        State.ANONYMOUS,
        lambda c: c.send(location=PIN),
    ),
    State.ANONYMOUS: (lambda c: c.send("ya"), State.SUMMARY, lambda c: c.send("mungkin")),
    State.SUMMARY: (lambda c: c.send("KIRIM"), State.IDLE, lambda c: c.send("hmm")),
    State.EDIT: (lambda c: c.send("lokasi"), State.LOCATION, lambda c: c.send("semuanya")),
    State.ERASE_CONFIRM: (lambda c: c.send("ya"), State.IDLE, lambda c: c.send(media=[STICKER])),
    State.STAFF_NOTE: (
        lambda c: c.send("Sudah diamankan, pelaku diserahkan ke Polsek"),
        State.IDLE,
        lambda c: c.send(location=PIN),
    ),
    State.REOPEN_REASON: (
        lambda c: c.send("Orangnya datang lagi tadi malam"),
        State.IDLE,
        lambda c: c.send(location=PIN),
    ),
}
# --- coordinators: /umumkan ---


async def _to_broadcast_area(chat: FakeChat) -> None:
    await chat.enrol("coordinator", "17.71.08")
    await chat.send("/umumkan")


async def _to_broadcast_audience(chat: FakeChat) -> None:
    await _to_broadcast_area(chat)
    await chat.press("Kampung Melayu")


async def _to_broadcast_text(chat: FakeChat) -> None:
    await _to_broadcast_audience(chat)
    await chat.press("bc:aud:both")


async def _to_broadcast_confirm(chat: FakeChat) -> None:
    await FakeChat(chat.sessions, user_id=chat.user_id + 1, name="Warga").onboard()  # a recipient
    await _to_broadcast_text(chat)
    await chat.send("Kerja bakti Minggu pagi")


REACH.update(
    {
        State.BROADCAST_AREA: _to_broadcast_area,
        State.BROADCAST_AUDIENCE: _to_broadcast_audience,
        State.BROADCAST_TEXT: _to_broadcast_text,
        State.BROADCAST_CONFIRM: _to_broadcast_confirm,
    }
)
TABLE.update(
    {
        State.BROADCAST_AREA: (
            lambda c: c.send("1"),
            State.BROADCAST_AUDIENCE,
            lambda c: c.send(media=[STICKER]),
        ),
        State.BROADCAST_AUDIENCE: (
            lambda c: c.send("Warga"),
            State.BROADCAST_TEXT,
            lambda c: c.send(location=PIN),
        ),
        State.BROADCAST_TEXT: (
            lambda c: c.send("Posyandu Rabu pagi"),
            State.BROADCAST_CONFIRM,
            lambda c: c.send(media=[STICKER]),
        ),
        State.BROADCAST_CONFIRM: (lambda c: c.send("Kirim"), State.IDLE, lambda c: c.send("hmm")),
    }
)
# --- end coordinators ---
CANCEL_WORDS = ["/batal", "BATAL", "/cancel", "batal", "Cancel", "/batal@ktn_bot"]


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession]) -> FakeChat:
    await load_areas(sessions)
    return FakeChat(sessions)


async def _state(chat: FakeChat) -> tuple[str, dict[str, Any]]:
    async with chat.sessions() as session:
        conv = await conversations.get(session, chat.channel, chat.user_id, chat.user_id)
        assert conv is not None
        return conv.state, dict(conv.draft)


def _without_opts(draft: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in draft.items() if k != "opts"}


def test_every_state_has_prompt_expects_fallback_and_a_table_row() -> None:
    assert set(PROMPTS) == set(State)
    assert set(EXPECTS) == set(State)
    assert set(FALLBACKS) == set(State)
    assert set(TABLE) == set(State) == set(REACH)


@pytest.mark.parametrize("state", list(State))
async def test_reaching_each_state(chat: FakeChat, state: State) -> None:
    await REACH[state](chat)
    assert (await _state(chat))[0] == state.value


@pytest.mark.parametrize("state", list(State))
async def test_expected_input_moves_on(chat: FakeChat, state: State) -> None:
    await REACH[state](chat)
    expected, after, _ = TABLE[state]
    outcome = await expected(chat)
    assert outcome.recorded.state == after.value
    assert outcome.replies and not outcome.notice
    if state is State.ERASE_CONFIRM:  # erased: no conversation is kept at all
        async with chat.sessions() as session:
            assert (
                await conversations.get(session, chat.channel, chat.user_id, chat.user_id) is None
            )
        return
    assert (await _state(chat))[0] == after.value


@pytest.mark.parametrize("state", list(State))
async def test_unexpected_input_reprompts_and_loses_nothing(chat: FakeChat, state: State) -> None:
    await REACH[state](chat)
    prompt_before = chat.history[-1].replies[-1]
    _, draft_before = await _state(chat)
    _, _, unexpected = TABLE[state]
    outcome = await unexpected(chat)
    assert outcome.recorded.state == state.value
    assert len(outcome.replies) >= 2, "says what is needed, then asks again"
    assert outcome.replies[-1].options == prompt_before.options
    assert outcome.replies[-1].text.endswith(prompt_before.text.splitlines()[-1])
    state_after, draft_after = await _state(chat)
    assert state_after == state.value
    assert _without_opts(draft_after) == _without_opts(draft_before)


@pytest.mark.parametrize(
    ("state", "word"), list(zip(list(State), (CANCEL_WORDS * 3)[: len(State)], strict=True))
)
async def test_cancel_works_in_every_state(chat: FakeChat, state: State, word: str) -> None:
    await REACH[state](chat)
    outcome = await chat.send(word)
    assert outcome.recorded.state == State.IDLE.value
    said = texts(outcome)
    if state.in_report:
        assert "Laporan dibatalkan. Tidak ada yang dikirim." in said
    elif state is State.ERASE_CONFIRM:
        assert "data Anda tidak dihapus" in said
    elif state is State.IDLE:
        assert "Tidak ada yang perlu dibatalkan." in said
    else:
        assert "dibatalkan" in said
    _, draft = await _state(chat)
    assert "report" not in draft


@pytest.mark.parametrize("state", list(State))
async def test_over_long_text_states_the_limit_and_changes_nothing(
    chat: FakeChat, state: State
) -> None:
    await REACH[state](chat)
    _, draft_before = await _state(chat)
    limit = chat.config.max_text_length
    outcome = await chat.send("a" * (limit + 5))
    said = outcome.replies[0].text
    assert str(limit) in said and str(limit + 5) in said
    state_after, draft_after = await _state(chat)
    assert state_after == state.value
    assert _without_opts(draft_after) == _without_opts(draft_before)


@pytest.mark.parametrize("state", list(State))
async def test_a_stale_button_gets_a_notice_and_changes_nothing(
    chat: FakeChat, state: State
) -> None:
    await REACH[state](chat)
    before = await _state(chat)
    outcome = await chat.send(button="sum:send" if state is not State.SUMMARY else "cat:keamanan")
    assert outcome.notice == "Tombol ini sudah tidak berlaku. Silakan pakai pesan terbaru."
    assert outcome.replies == []
    assert await _state(chat) == before
