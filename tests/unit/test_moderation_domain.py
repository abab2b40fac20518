"""The sensitive-word filter: Aho-Corasick against a brute-force search, normalisation,
separators, whole Latin words and masking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mobimart.moderation.domain import Match, WordFilter

CJK = "法轮功赌博代开发票"


def test_finds_chinese_anywhere_and_latin_words_whole() -> None:
    words = WordFilter(["赌博", "ass", "Spam Link"])
    assert words.find("网上赌博平台") == [Match(2, 4, "赌博")]
    assert words.find("you ass") == [Match(4, 7, "ass")]
    assert words.clean("a classic class, assorted")
    assert words.find("visit SPAM-link now") == [Match(6, 15, "spamlink")]


def test_full_width_case_and_separators_do_not_hide_a_word() -> None:
    words = WordFilter(["赌博", "ass"])
    assert not words.clean("ＡＳＳ")
    assert not words.clean("赌 博")
    assert not words.clean("赌.博")
    assert not words.clean("赌\u200b博")  # a zero-width space between the characters
    assert words.mask("you A.S.S!") == "you *****!"
    assert words.mask("来赌 博吧") == "来***吧"


def test_overlapping_and_nested_words_are_all_found() -> None:
    words = WordFilter(["代开", "代开发票", "发票"])
    assert {m.word for m in words.find("专业代开发票")} == {"代开", "代开发票", "发票"}
    assert words.mask("专业代开发票") == "专业****"


def test_an_empty_list_or_empty_words_find_nothing() -> None:
    assert WordFilter([]).clean("anything 赌博")
    assert WordFilter(["", "  ", "。"]).clean("anything")


@given(
    st.lists(st.text(alphabet=CJK, min_size=1, max_size=4), min_size=1, max_size=8),
    st.text(alphabet=CJK, max_size=40),
)
def test_matches_are_exactly_those_of_a_brute_force_search(words: list[str], text: str) -> None:
    expected = {
        (i, i + len(w), w) for w in set(words) for i in range(len(text)) if text.startswith(w, i)
    }
    found = {(m.start, m.end, m.word) for m in WordFilter(words).find(text)}
    assert found == expected


@given(
    st.lists(st.text(alphabet=CJK + "ab", min_size=1, max_size=3), max_size=6),
    st.text(alphabet=CJK + "ab .，", max_size=40),
)
def test_masking_hides_exactly_what_matched(words: list[str], text: str) -> None:
    filtered = WordFilter(words)
    hidden = {i for m in filtered.find(text) for i in range(m.start, m.end)}
    masked = filtered.mask(text)
    assert len(masked) == len(text)
    assert all(
        (masked[i] == "*") if i in hidden else masked[i] == text[i] for i in range(len(text))
    )
