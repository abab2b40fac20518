"""The per-socket delivery rule: whatever order and however many times the broker brings a
conversation's messages, and from whatever cursor a client reconnects, the socket gets every
message after its cursor exactly once and in order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mobimart.social.live import Deliver, Delivery, Fill, Skip


def run(
    delivery: Delivery, arrivals: list[tuple[int, int]], committed: int
) -> dict[int, list[int]]:
    """Drive the rule as the socket does: the database holds 1..`committed` of every
    conversation (a seq arriving live is committed, and so is everything below it)."""
    sent: dict[int, list[int]] = {}
    for conversation, seq in arrivals:
        decision = delivery.decide(conversation, seq)
        if isinstance(decision, Deliver):
            sent.setdefault(conversation, []).append(seq)
            delivery.delivered(conversation, seq)
        elif isinstance(decision, Fill):
            assert decision.upto <= committed
            for filled in range(decision.after + 1, decision.upto + 1):
                sent.setdefault(conversation, []).append(filled)
                delivery.delivered(conversation, filled)
        else:
            assert isinstance(decision, Skip)
    return sent


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int]:
    """Two conversations' messages 1..n, shuffled, some twice (two channels, a replay),
    some never (a dropped pub/sub message)."""
    n = draw(st.integers(1, 30))
    events = [(c, s) for c in (1, 2) for s in range(1, n + 1)]
    events += draw(st.lists(st.sampled_from(events), max_size=20))
    kept = draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    chosen = [e for e, keep in zip(events, kept, strict=True) if keep]
    return draw(st.permutations(chosen)), n


@given(arrivals())
def test_each_message_once_in_order_up_to_the_newest_seen(case: tuple[list[Any], int]) -> None:
    events, n = case
    sent = run(Delivery(), events, n)
    for conversation in (1, 2):
        newest = max((s for c, s in events if c == conversation), default=0)
        assert sent.get(conversation, []) == list(range(1, newest + 1))


@given(arrivals(), st.integers(0, 30))
def test_a_cursor_resumes_after_itself(case: tuple[list[Any], int], cursor: int) -> None:
    events, n = case
    delivery = Delivery()
    delivery.restart(1, cursor)
    sent = run(delivery, events, n)
    newest = max((s for c, s in events if c == 1), default=0)
    assert sent.get(1, []) == list(range(cursor + 1, newest + 1))


def test_decisions() -> None:
    delivery = Delivery({7: 3})
    assert delivery.decide(7, 3) == Skip()
    assert delivery.decide(7, 4) == Deliver()
    assert delivery.decide(7, 6) == Fill(3, 6)
    # A conversation unknown at connect time is new: its first message is 1.
    assert delivery.decide(8, 1) == Deliver()
    assert delivery.decide(8, 3) == Fill(0, 3)
    delivery.delivered(7, 2)  # never moves back
    assert delivery.position(7) == 3
    delivery.restart(7, 1)  # a hello does
    assert delivery.position(7) == 1
