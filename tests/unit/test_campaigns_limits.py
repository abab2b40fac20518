"""Sending limits: SMS parts (GSM-7 160/153, UCS-2 70/67), quiet hours in the recipient's zone,
the weekly cap and consent at a moment."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.campaigns import limits
from mobimart.campaigns.limits import Cap, QuietHours, sms_size

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- SMS parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "{", "GSM-7", 161, 2),
        ("Ça coûte 5€", "UCS-2", 11, 1),  # û is not in GSM 03.38: the whole text is UCS-2
        ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "GSM-7", 31, 1),
        ("好" * 70, "UCS-2", 70, 1),
        ("好" * 71, "UCS-2", 71, 2),
        ("好" * 134, "UCS-2", 134, 2),
        ("好" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: a surrogate pair, two units
        ("😀" * 36, "UCS-2", 72, 2),
        ("好€" * 35, "UCS-2", 70, 1),  # in UCS-2 the euro sign is one unit
    ],
)
def test_sms_size(text: str, encoding: str, units: int, parts: int) -> None:
    assert sms_size(text) == limits.SmsSize(encoding, units, parts)


def test_two_unit_characters_are_not_split_across_parts() -> None:
    # 152 septets, then an escape pair that does not fit in part one's last septet.
    gsm = "a" * 152 + "€" + "a" * 152
    assert sms_size(gsm).units == 306
    assert sms_size(gsm).parts == 3
    ucs = "好" * 66 + "😀" + "好" * 66  # the emoji would straddle units 67 and 68
    assert sms_size(ucs).units == 134
    assert sms_size(ucs).parts == 3


def test_is_gsm7() -> None:
    assert limits.is_gsm7("Hello [world] ~ |^ €")
    assert not limits.is_gsm7("ç")  # only capital Ç is in the alphabet
    assert not limits.is_gsm7("你好")
    assert not limits.is_gsm7("`")


@given(st.text(max_size=700))
def test_parts_hold_the_message(text: str) -> None:
    size = sms_size(text)
    single, part = (160, 153) if size.encoding == "GSM-7" else (70, 67)
    if size.units <= single:
        assert size.parts == 1
    else:
        # Enough room for every unit, and at most one part more than brim-full packing.
        assert size.parts * part >= size.units
        assert size.parts <= -(-size.units // part) + size.units // part


# --- quiet hours -------------------------------------------------------------------------------


def _local(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (dt.time(20, 59, 59), False),
        (dt.time(21, 0), True),  # the start is quiet
        (dt.time(23, 59, 59), True),
        (dt.time(0, 0), True),
        (dt.time(7, 59, 59), True),
        (dt.time(8, 0), False),  # the end is not
        (dt.time(12, 0), False),
    ],
)
def test_default_window_crosses_midnight(local: dt.time, quiet: bool) -> None:
    assert QuietHours.parse("21:00-08:00").contains(local) is quiet


def test_daytime_window_and_none() -> None:
    lunch = QuietHours.parse("12:00 - 13:30")
    assert lunch.contains(dt.time(12, 0))
    assert lunch.contains(dt.time(13, 29))
    assert not lunch.contains(dt.time(13, 30))
    assert not lunch.contains(dt.time(11, 59))
    never = QuietHours.parse("00:00-00:00")
    assert not any(never.contains(dt.time(h)) for h in range(24))


@pytest.mark.parametrize("spec", ["21:00", "9pm-8am", "25:00-08:00", "", "21:00-08:00-09:00"])
def test_bad_quiet_hours_are_explained(spec: str) -> None:
    with pytest.raises(ValueError, match="Quiet hours look like 21:00-08:00"):
        QuietHours.parse(spec)


def test_next_allowed_defers_to_the_end_of_the_window_in_the_recipients_zone() -> None:
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet.next_allowed(_local(20, 59, 59), SHANGHAI) is None
    # In the evening the window ends tomorrow morning; after midnight, this morning.
    assert quiet.next_allowed(_local(21, 0), SHANGHAI) == _local(8, day=2)
    assert quiet.next_allowed(_local(23, 30), SHANGHAI) == _local(8, day=2)
    assert quiet.next_allowed(_local(3, 0, day=2), SHANGHAI) == _local(8, day=2)
    assert quiet.next_allowed(_local(7, 59, 59, day=2), SHANGHAI) == _local(8, day=2)
    assert quiet.next_allowed(_local(8, 0, day=2), SHANGHAI) is None
    # 13:00 UTC is 21:00 in Shanghai but 13:00 in London: quiet for one, not the other.
    at = dt.datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert quiet.next_allowed(at, SHANGHAI) is not None
    assert quiet.next_allowed(at, ZoneInfo("Europe/London")) is None


def test_next_allowed_across_a_daylight_saving_change() -> None:
    new_york = ZoneInfo("America/New_York")
    quiet = QuietHours.parse("21:00-08:00")
    # 2026-03-08: clocks go forward at 02:00; 22:00 EST on the 7th ends at 08:00 EDT.
    evening = dt.datetime(2026, 3, 7, 22, 0, tzinfo=new_york).astimezone(UTC)
    assert quiet.next_allowed(evening, new_york) == dt.datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+8613812345678", "Asia/Shanghai"),
        ("+12125550123", "America/New_York"),
        ("+442079460123", "Europe/London"),
        ("not a number", "Asia/Shanghai"),
    ],
)
def test_zone_for_number(number: str, zone: str) -> None:
    assert limits.zone_for_number(number) == ZoneInfo(zone)


# --- caps and consent ---------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_cap_counts_only_the_window() -> None:
    cap = Cap(3, dt.timedelta(days=7))
    week_ago = NOW - dt.timedelta(days=7)
    assert cap.allows([], NOW)
    assert cap.allows([NOW, NOW - dt.timedelta(days=1)], NOW)
    assert not cap.allows([NOW, NOW - dt.timedelta(days=1), NOW - dt.timedelta(days=6)], NOW)
    # Exactly a week ago has left the window.
    assert cap.allows([NOW, NOW - dt.timedelta(days=1), week_ago], NOW)
    assert not cap.allows([NOW, NOW, week_ago + dt.timedelta(seconds=1)], NOW)


def test_consented_takes_the_newest_row_at_or_before_the_moment() -> None:
    t = [NOW + dt.timedelta(minutes=m) for m in range(4)]
    assert not limits.consented([], NOW)
    history = [(t[0], True), (t[2], False)]
    assert not limits.consented(history, t[0] - dt.timedelta(seconds=1))  # before any
    assert limits.consented(history, t[0])
    assert limits.consented(history, t[1])
    assert not limits.consented(history, t[2])  # an opt-out counts from its moment
    assert not limits.consented(history, t[3])
    assert limits.consented([*history, (t[3], True)], t[3])
    # Rows may come in any order; at the same moment the later one wins.
    assert not limits.consented([(t[2], False), (t[0], True)], t[3])
    assert not limits.consented([(t[1], True), (t[1], False)], t[1])


@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), max_size=12), st.integers(0, 25))
def test_consented_matches_the_last_change_before(steps: list[tuple[int, bool]], at: int) -> None:
    history = [
        (NOW + dt.timedelta(minutes=m), granted) for m, granted in sorted(steps, key=lambda s: s[0])
    ]
    before = [granted for when, granted in history if when <= NOW + dt.timedelta(minutes=at)]
    assert limits.consented(history, NOW + dt.timedelta(minutes=at)) == (
        before[-1] if before else False
    )
