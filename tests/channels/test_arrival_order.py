"""bot.channels.ordering: one user's messages in arrival order, other users' alongside."""

from __future__ import annotations

import asyncio

from bot.channels.ordering import ArrivalOrder


async def test_one_users_messages_wait_for_each_other_in_arrival_order() -> None:
    order = ArrivalOrder()
    handled: list[str] = []
    first_may_finish = asyncio.Event()
    first_started = asyncio.Event()

    async def message(key: str, name: str, gate: asyncio.Event | None = None) -> None:
        async with order.turn(key):
            handled.append(f"{name} starts")
            if gate is not None:
                first_started.set()
                await gate.wait()
            handled.append(f"{name} ends")

    first = asyncio.create_task(message("siti", "1", first_may_finish))
    await first_started.wait()
    later = [asyncio.create_task(message("siti", str(n))) for n in (2, 3, 4)]
    await message("budi", "other")  # another user is not held up by Siti's first message
    assert handled == ["1 starts", "other starts", "other ends"]
    first_may_finish.set()
    await asyncio.gather(first, *later)
    assert handled[3:] == [
        "1 ends",
        "2 starts",
        "2 ends",
        "3 starts",
        "3 ends",
        "4 starts",
        "4 ends",
    ]
    assert len(order) == 0, "no lock is kept for users with nothing in hand"


async def test_a_failing_message_lets_the_next_one_through() -> None:
    order = ArrivalOrder()

    async def failing() -> None:
        async with order.turn(1):
            raise RuntimeError("boom")

    results = await asyncio.gather(failing(), failing(), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    async with order.turn(1):
        assert len(order) == 1
    assert len(order) == 0
