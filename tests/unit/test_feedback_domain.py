"""Merchant feedback, pure: complaint words, weekly rating buckets, chat waits, what to fix."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from mobimart.social import feedback_domain as fd

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday in ISO week 2026-W49


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def test_chinese_complaints_are_segmented_into_words() -> None:
    assert fd.terms("尺码偏小，质量一般") == ["尺码", "偏小", "质量", "一般"]
    words = fd.terms("颜色和图片不符，物流太慢了，客服态度差")
    assert {"颜色", "图片", "不符", "物流", "客服", "态度"} <= set(words)
    # One-character words (和, 了, 差) carry no topic on their own.
    assert all(len(w) >= 2 for w in words)


def test_stop_words_numbers_and_punctuation_are_dropped() -> None:
    assert fd.terms("Size runs SMALL!! The zip doesn't work, 3 times.") == [
        "size",
        "runs",
        "small",
        "zip",
        "work",
        "times",
    ]
    assert fd.terms("感觉这个东西非常一般 2 件 100%") == ["一般"]
    assert fd.terms("...!!! 123 ，。") == []


def test_mixed_text_splits_latin_from_chinese() -> None:
    assert fd.terms("good质量差 très mauvais") == ["good", "质量", "très", "mauvais"]


def test_a_word_counts_once_per_review() -> None:
    counted = fd.complaint_terms(
        [
            (3, "尺码偏小，尺码真的偏小，尺码！"),
            (2, "尺码不对，物流慢"),
            (1, "Size too small, size!"),
        ]
    )
    by_term = {t.term: t for t in counted}
    assert by_term["尺码"].review_ids == (3, 2)
    assert by_term["size"].review_ids == (1,)
    assert counted[0].term == "尺码"  # the most reviews first
    assert [t.count for t in counted] == sorted((t.count for t in counted), reverse=True)


def test_ties_are_alphabetical_and_the_list_is_cut() -> None:
    counted = fd.complaint_terms([(1, "zebra apple mango")], limit=2)
    assert [t.term for t in counted] == ["apple", "mango"]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10_000), st.lists(st.sampled_from(["ab", "cd", "ef", "gh"]), max_size=6)
        ),
        max_size=30,
        unique_by=lambda r: r[0],
    )
)
def test_term_counts_agree_with_a_count_from_scratch(reviews: list[tuple[int, list[str]]]) -> None:
    counted = fd.complaint_terms(((rid, " ".join(ws)) for rid, ws in reviews), limit=100)
    for term in counted:
        assert term.review_ids == tuple(rid for rid, ws in reviews if term.term in ws)
    assert {t.term for t in counted} == {w for _, ws in reviews for w in ws}


def test_weeks_start_on_monday_utc() -> None:
    assert fd.week_of(NOW) == dt.date(2026, 11, 30)
    # Monday 01:00 in Shanghai is still Sunday in UTC: the previous week.
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert fd.week_of(dt.datetime(2026, 11, 30, 1, 0, tzinfo=shanghai)) == dt.date(2026, 11, 23)
    assert fd.window_start(NOW, 1) == dt.datetime(2026, 11, 30, tzinfo=UTC)
    assert fd.window_start(NOW, 12) == dt.datetime(2026, 9, 14, tzinfo=UTC)


def test_trend_has_every_week_with_counts_and_averages() -> None:
    reviews = [
        (NOW, 5),
        (NOW - dt.timedelta(days=2), 2),  # Monday of this week
        (NOW - dt.timedelta(days=3), 4),  # last Sunday: the week before
        (NOW - dt.timedelta(weeks=3), 1),  # outside a 3-week window
    ]
    trend = fd.rating_trend(reviews, now=NOW, weeks=3)
    assert [p.label for p in trend] == ["2026-W47", "2026-W48", "2026-W49"]
    assert [p.count for p in trend] == [0, 1, 2]
    assert [p.average for p in trend] == [None, 4.0, 3.5]


def test_iso_week_labels_cross_the_year() -> None:
    trend = fd.rating_trend([], now=dt.datetime(2027, 1, 1, tzinfo=UTC), weeks=2)
    assert [p.label for p in trend] == ["2026-W52", "2026-W53"]


@given(
    st.lists(
        st.tuples(st.integers(-200 * 24 * 60, 0), st.integers(1, 5)),
        max_size=60,
    ),
    st.integers(1, 30),
)
def test_trend_buckets_hold_exactly_the_reviews_in_the_window(
    offsets: list[tuple[int, int]], weeks: int
) -> None:
    reviews = [(at(minutes), stars) for minutes, stars in offsets]
    trend = fd.rating_trend(reviews, now=NOW, weeks=weeks)
    start = fd.window_start(NOW, weeks)
    inside = [stars for when, stars in reviews if when >= start]
    assert len(trend) == weeks
    assert all(b.week - a.week == dt.timedelta(weeks=1) for a, b in itertools.pairwise(trend))
    assert sum(p.count for p in trend) == len(inside)
    for p in trend:
        assert (p.average is None) == (p.count == 0)
        assert p.average is None or 1 <= p.average <= 5


def test_a_run_of_consumer_messages_is_one_wait_from_the_first() -> None:
    messages = [
        ("consumer", at(0)),
        ("consumer", at(3)),
        ("shop", at(12)),
        ("shop", at(13)),
        ("consumer", at(20)),
        ("shop", at(21)),
        ("consumer", at(50)),
    ]
    result = fd.waits(messages, now=at(70))
    assert [(w.since, w.until, w.seconds) for w in result] == [
        (at(0), at(12), 720.0),
        (at(20), at(21), 60.0),
        (at(50), None, 1200.0),  # still waiting: measured to now
    ]
    assert [w.answered for w in result] == [True, True, False]


def test_shop_messages_first_are_no_wait_and_clock_steps_are_not_negative() -> None:
    assert fd.waits([("shop", at(0)), ("shop", at(5))], now=at(10)) == []
    (wait,) = fd.waits([("consumer", at(5)), ("shop", at(4))], now=at(10))
    assert wait.seconds == 0.0


@given(st.lists(st.tuples(st.sampled_from(["consumer", "shop"]), st.integers(0, 10_000))))
def test_waits_never_overlap_and_only_the_last_may_be_open(
    steps: list[tuple[str, int]],
) -> None:
    messages = [(side, at(m)) for side, m in sorted(steps, key=lambda s: s[1])]
    result = fd.waits(messages, now=at(10_001))
    assert len(result) <= sum(1 for side, _ in messages if side == "consumer")
    assert all(w.answered for w in result[:-1])
    for a, b in itertools.pairwise(result):
        assert a.until is not None
        assert a.until <= b.since
    for w in result:
        assert w.seconds == ((w.until or at(10_001)) - w.since).total_seconds()


def test_median() -> None:
    assert fd.median_seconds([]) is None
    assert fd.median_seconds([60.0, 600.0, 30.0]) == 60.0
    assert fd.median_seconds([10.0, 20.0]) == 15.0


def test_what_to_fix_keeps_shared_complaints_and_orders_by_people_affected() -> None:
    terms = [
        fd.TermCount("尺码", (1, 2, 3, 4)),
        fd.TermCount("物流", (5, 6)),
        fd.TermCount("颜色", (7, 8)),
        fd.TermCount("包装", (9, 10)),
        fd.TermCount("味道", (11,)),  # one review: an anecdote, not a pattern
    ]
    fixes = fd.what_to_fix(terms=terms, overdue_questions=[31, 32, 33], slow_chats=[41, 42])
    assert [(f.kind, f.term, f.count) for f in fixes] == [
        ("term", "尺码", 4),
        ("questions", "", 3),
        ("term", "物流", 2),
        ("term", "颜色", 2),
        ("chats", "", 2),
    ]
    assert fixes[1].ids == (31, 32, 33)
    assert fd.what_to_fix(terms=[], overdue_questions=[], slow_chats=[]) == []
