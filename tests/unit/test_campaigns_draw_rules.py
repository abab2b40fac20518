"""Lucky draws' pure rules: the roll, prize bands, eligibility, and that the published
formula recomputes every result."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import subprocess
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.campaigns import draw_rules as rules
from mobimart.campaigns.draw_rules import Refusal

seeds = st.binary(min_size=32, max_size=32).map(bytes.hex)
ids = st.integers(min_value=1, max_value=2**31 - 1)
# Up to 8 prizes of up to 125,000 ppm: never more than 1,000,000 together, with no filtering.
chances = st.lists(st.integers(min_value=1, max_value=125_000), min_size=1, max_size=8) | st.just(
    [rules.ROLLS]
)
NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)


def test_a_new_seed_is_32_random_bytes_in_hex() -> None:
    a, b = rules.new_seed(), rules.new_seed()
    assert len(a) == 64
    assert int(a, 16) >= 0
    assert a != b
    assert rules.seed_hash(a) == hashlib.sha256(a.encode()).hexdigest()


@given(seeds, ids, ids)
def test_roll_is_the_published_formula_and_deterministic(seed: str, draw: int, entry: int) -> None:
    mac = hmac.new(seed.encode(), f"{draw}:{entry}".encode(), hashlib.sha256).hexdigest()
    value = rules.roll(seed, draw, entry)
    assert value == int(mac, 16) % 1_000_000 == rules.roll(seed, draw, entry)
    assert 0 <= value < rules.ROLLS


def test_openssl_recomputes_the_roll() -> None:
    """The verify page's openssl recipe gives the same roll."""
    seed = "ab" * 32
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", seed],
        input=b"7:42",
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert int(out.split()[-1], 16) % 1_000_000 == rules.roll(seed, 7, 42)


@settings(max_examples=5, deadline=None)
@given(seeds, ids)
def test_rolls_are_uniform(seed: str, draw: int) -> None:
    """20,000 rolls in 10 buckets: chi-square with 9 degrees of freedom stays under 50
    (p = 1e-7, so this fails once in ten million honest runs, not by bad luck in CI)."""
    values = [rules.roll(seed, draw, entry) for entry in range(1, 20_001)]
    buckets = Counter(v * 10 // rules.ROLLS for v in values)
    expected = len(values) / 10
    chi2 = sum((buckets[b] - expected) ** 2 / expected for b in range(10))
    assert chi2 < 50, buckets
    assert len(set(values)) > 19_000  # about 200 repeats expected among a million possible


def test_rolls_depend_on_seed_draw_and_entry() -> None:
    seed, other = "11" * 32, "12" * 32
    entries = range(1, 1001)
    by_draw = sum(rules.roll(seed, 1, e) != rules.roll(seed, 2, e) for e in entries)
    by_seed = sum(rules.roll(seed, 1, e) != rules.roll(other, 1, e) for e in entries)
    assert by_draw >= 995
    assert by_seed >= 995


@given(chances)
def test_bands_partition_the_rolls_in_order(cs: list[int]) -> None:
    table = rules.bands(list(enumerate(cs, start=10)))
    assert table[0].start == 0
    for left, right in itertools.pairwise(table):
        assert left.end == right.start
    assert [b.end - b.start for b in table] == cs
    assert table[-1].end == sum(cs) <= rules.ROLLS


@given(chances, st.integers(min_value=0, max_value=rules.ROLLS - 1))
def test_every_roll_falls_in_at_most_one_band(cs: list[int], value: int) -> None:
    table = rules.bands(list(enumerate(cs, start=1)))
    found = rules.band_of(table, value)
    inside = [b for b in table if b.start <= value < b.end]
    assert (found is None) == (not inside)
    assert found is None or [found] == inside
    assert (found is None) == (value >= sum(cs))


@given(st.integers(max_value=0) | st.integers(min_value=rules.ROLLS + 1))
def test_a_chance_out_of_range_is_refused(chance: int) -> None:
    with pytest.raises(ValueError, match="1 to 1,000,000"):
        rules.bands([(1, chance)])


@given(st.lists(st.integers(min_value=1, max_value=rules.ROLLS), min_size=2, max_size=5))
def test_chances_above_a_million_together_are_refused(cs: list[int]) -> None:
    if sum(cs) > rules.ROLLS:
        with pytest.raises(ValueError, match="at most 1,000,000"):
            rules.bands(list(enumerate(cs)))
    else:
        assert len(rules.bands(list(enumerate(cs)))) == len(cs)


def test_a_certain_prize_takes_every_roll() -> None:
    table = rules.bands([(5, rules.ROLLS)])
    assert all(rules.band_of(table, v) == table[0] for v in (0, 1, 500_000, 999_999))


@settings(max_examples=50)
@given(seeds, ids, chances, st.lists(ids, min_size=1, max_size=30, unique=True))
def test_recomputing_from_the_revealed_seed_reproduces_every_result(
    seed: str, draw: int, cs: list[int], entries: list[int]
) -> None:
    """What the service records at entry time (roll and band) is exactly what anyone gets
    from the seed, the draw id and the entry id, with nothing else."""
    table = rules.bands(list(enumerate(cs, start=1)))
    recorded = {}
    for entry in entries:
        value = rules.roll(seed, draw, entry)
        band = rules.band_of(table, value)
        recorded[entry] = (value, band.prize_id if band else None)
    public_hash = rules.seed_hash(seed)
    # ... later, the seed is revealed:
    assert hashlib.sha256(seed.encode()).hexdigest() == public_hash
    for entry, (value, prize) in recorded.items():
        mac = hmac.new(seed.encode(), f"{draw}:{entry}".encode(), hashlib.sha256)
        again = int(mac.hexdigest(), 16) % 1_000_000
        start = 0
        won = None
        for prize_id, chance in enumerate(cs, start=1):
            if start <= again < start + chance:
                won = prize_id
            start += chance
        assert (again, won) == (value, prize)


def test_the_seed_is_revealed_at_closing() -> None:
    assert not rules.revealed(NOW, NOW - dt.timedelta(seconds=1))
    assert rules.revealed(NOW, NOW)


# --- eligibility -----------------------------------------------------------------------------


def test_rules_are_read_and_checked() -> None:
    read = rules.parse_rules({"per_day": 1, "must_follow": True, "min_order_minor": 5000})
    assert read == rules.Rules(per_day=True, must_follow=True, min_order_minor=5000)
    assert rules.parse_rules(read.as_json()) == read
    assert rules.parse_rules({}) == rules.Rules()
    for bad in (
        {"per_day": 2},
        {"per_day": True},
        {"zone": "Mars/Olympus"},
        {"must_follow": "yes"},
        {"min_order_minor": -1},
        {"order_days": 0},
        {"colour": "red"},
    ):
        with pytest.raises(ValueError, match=r"`|Unknown"):
            rules.parse_rules(bad)


def test_once_a_day_is_the_local_date_in_the_draws_zone() -> None:
    daily = rules.Rules(per_day=True)  # Asia/Shanghai, UTC+8
    late_utc = dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 on the 2nd in Beijing
    assert rules.period(daily, late_utc) == "2026-12-02"
    assert rules.period(daily, late_utc - dt.timedelta(hours=1)) == "2026-12-01"
    assert rules.period(rules.Rules(per_day=True, zone="UTC"), late_utc) == "2026-12-01"
    assert rules.period(rules.Rules(), late_utc) == rules.ONCE
    assert len(rules.period(daily, late_utc)) <= 10  # DrawEntry.period's width


def _why(r: rules.Rules, **facts: object) -> Refusal | None:
    args: dict[str, object] = {
        "now": NOW,
        "opens_at": NOW - dt.timedelta(hours=1),
        "closes_at": NOW + dt.timedelta(hours=1),
        "follows": False,
        "best_order_minor": 0,
    } | facts
    return rules.refusal(r, **args)  # type: ignore[arg-type]


def test_eligibility() -> None:
    assert _why(rules.Rules()) is None
    assert _why(rules.Rules(), opens_at=NOW + dt.timedelta(seconds=1)) is Refusal.not_open
    assert _why(rules.Rules(), closes_at=NOW) is Refusal.closed
    follower = rules.Rules(must_follow=True)
    assert _why(follower) is Refusal.must_follow
    assert _why(follower, follows=True) is None
    buyer = rules.Rules(min_order_minor=5000)
    assert _why(buyer, best_order_minor=4999) is Refusal.min_order
    assert _why(buyer, best_order_minor=5000) is None
