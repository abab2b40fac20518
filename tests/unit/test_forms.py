"""web.forms: the one link checker (campaign links, QR codes, automations) and the one
`datetime-local` reader (campaign schedules, draws)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.errors import DomainError
from mobimart.web.forms import MAX_LINK, parse_local, safe_link

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "url",
    [
        "/c/tea",
        "/products/12?src=qr",
        "/shops/3#offers",
        "https://mall.example/x",
        "https://mall.example:8443/x?a=1&b=2",
        "https://商场.example/路径",
    ],
)
def test_paths_and_https_addresses_are_links(url: str) -> None:
    assert safe_link(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        # The forms the review found accepted by one checker or another.
        "https://mobimart.example@evil.example/",  # reads as ours, goes to evil.example
        "https://user:pw@evil.example/",
        "https://mall.example/a\tb",  # a tab hides the rest of the address in a preview
        "https://mall.example/\nSet-Cookie:x",
        "https://mall.example/\rx",
        "https://a b.example/",
        "/a b",
        "/shops/\x00",
        "https://mall.example/\x7fx",
        "https://mall.example/\x85x",  # a C1 control
        "https://mall.example/\u202egpj.exe",  # right-to-left override
        "https://mall.example/\u200bx",  # zero width space
        "https://mall.example/\u3000x",  # ideographic space
        # Other places than this site or https.
        "http://mall.example/",  # rewritable on the shop's Wi-Fi
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,hi",
        "//evil.example/",  # protocol-relative: another site
        "/\\evil.example",  # browsers read a backslash as a slash
        "https:\\\\evil.example",
        "https:/evil.example",
        "https:///evil.example",
        "https://",
        "https://mall.example:port/",
        "https://[::1/",
        "mall.example/x",
        "",
        "   ",
        "/" + "a" * MAX_LINK,  # longer than the columns that keep it
    ],
)
def test_other_addresses_are_refused(url: str) -> None:
    with pytest.raises(DomainError) as refused:
        safe_link(url)
    assert refused.value.code == "invalid_link"
    assert refused.value.status == 422


@given(st.text(max_size=80))
def test_an_accepted_link_stays_on_this_site_or_goes_to_a_named_https_host(url: str) -> None:
    try:
        accepted = safe_link(url)
    except DomainError:
        return
    assert len(accepted) <= MAX_LINK
    assert not any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in accepted)
    if accepted.startswith("/"):
        assert not accepted.startswith("//")
    else:
        assert accepted.lower().startswith("https://")
        assert "@" not in accepted.split("/")[2]


@given(st.from_regex(r"/[a-z0-9/_.?=&-]{0,40}", fullmatch=True))
def test_a_site_path_is_kept_as_written(path: str) -> None:
    if not path.startswith("//"):
        assert safe_link(path) == path


def test_a_local_time_is_read_in_its_zone() -> None:
    error = DomainError("invalid", "Pick a time.", 422)
    assert parse_local("2026-12-12T09:30", SHANGHAI, error=error) == dt.datetime(
        2026, 12, 12, 1, 30, tzinfo=dt.UTC
    )
    # an explicit offset wins over the zone
    assert parse_local("2026-12-12T09:30+00:00", SHANGHAI, error=error) == dt.datetime(
        2026, 12, 12, 9, 30, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "tomorrow",
        "2026-13-01T00:00",
        "0001-01-01T00:00",  # before year 1 once moved to UTC: OverflowError
        "0001-01-01T07:59",
    ],
)
def test_a_bad_or_out_of_range_time_is_the_given_error(value: str) -> None:
    error = DomainError("invalid", "Pick a time.", 422)
    with pytest.raises(DomainError) as refused:
        parse_local(value, SHANGHAI, error=error)
    assert refused.value is error


def test_the_far_end_of_the_calendar_is_read() -> None:
    error = DomainError("invalid", "Pick a time.", 422)
    assert parse_local("9999-12-31T23:59", SHANGHAI, error=error).year == 9999
