"""What a shop's feedback says, worked out from plain values: ratings per ISO week, the words
low reviews share, how long consumers waited for the shop in chat, and the short list of what
to fix first. Pure: the service loads rows and passes them in."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mobimart.social.domain import Rating
from mobimart.text import jieba

LOW_STARS = 3  # three stars and fewer: what shoppers call a bad review on every big platform
WEEK = dt.timedelta(weeks=1)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words every review uses whatever went wrong: they would top every list and say nothing.
STOPWORDS_EN = _words(
    """
    a about after again all also am an and any are as at be because been but by can could did
    do does doesn't don't even for from get got had has have he her his how i if in into is it
    it's its just me more most much my no not of on one only or other our out over really she
    so some than that the their them then there these they this those to too up us very was we
    were what when which while who why will with would you your item product bought buy still
    bit quite
    """
)
STOPWORDS_ZH = _words(
    """
    一个 一些 一下 一点 一次 有点 有些 这个 那个 这些 那些 这样 那样 什么 怎么 就是 还是
    但是 可是 不过 而且 并且 因为 所以 如果 虽然 然后 已经 时候 自己 我们 你们 他们 她们
    非常 比较 特别 真的 感觉 觉得 东西 商品 产品 宝贝 卖家 店家 还有 可以 这次 收到 购买
    """
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A run of Chinese characters, or a run of letters that are not Chinese (digits, punctuation
# and spaces split words and are dropped).
_CHUNK = re.compile(rf"[{_CJK}]+|(?:(?![{_CJK}])[^\W\d_])+(?:'(?:(?![{_CJK}])[^\W\d_])+)*")
_IS_CJK = re.compile(rf"[{_CJK}]")


def _jieba() -> Callable[[str], list[str]]:
    return jieba().lcut  # type: ignore[no-any-return]


def terms(text: str) -> list[str]:
    """The distinct words of one text, in order of first use: Chinese segmented by jieba with
    one-character words dropped (的, 了, 很 carry no topic), Latin text split on anything that
    is not a letter, lower-cased; numbers, punctuation and stop words dropped."""
    seen: dict[str, None] = {}
    for chunk in _CHUNK.findall(text.lower()):
        if _IS_CJK.match(chunk):
            words = [w for w in _jieba()(chunk) if len(w) >= 2 and w not in STOPWORDS_ZH]
        else:
            words = [chunk] if len(chunk) >= 2 and chunk not in STOPWORDS_EN else []
        for word in words:
            seen.setdefault(word, None)
    return list(seen)


@dataclass(frozen=True)
class TermCount:
    term: str
    review_ids: tuple[int, ...]  # in the order the reviews were given

    @property
    def count(self) -> int:
        return len(self.review_ids)


def complaint_terms(
    reviews: Iterable[tuple[int, str]],
    *,
    limit: int = 10,
    tokenize: Callable[[str], list[str]] = terms,
) -> list[TermCount]:
    """The words most low reviews share, each counted once per review (one angry review that
    says "size" five times is one voice), with the reviews behind it. Most reviews first,
    then alphabetical so the list is stable."""
    behind: dict[str, list[int]] = {}
    for review_id, text in reviews:
        for word in dict.fromkeys(tokenize(text)):
            behind.setdefault(word, []).append(review_id)
    ranked = sorted(behind.items(), key=lambda item: (-len(item[1]), item[0]))
    return [TermCount(word, tuple(ids)) for word, ids in ranked[:limit]]


def week_of(at: dt.datetime) -> dt.date:
    """The Monday that starts the ISO week of this moment, in UTC."""
    day = at.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def window_start(now: dt.datetime, weeks: int) -> dt.datetime:
    """Midnight UTC on the Monday `weeks - 1` weeks before this one: the current, partial
    week is the last of `weeks` buckets."""
    monday = week_of(now) - (weeks - 1) * WEEK
    return dt.datetime.combine(monday, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class WeekPoint:
    week: dt.date  # its Monday
    count: int
    average: float | None  # None in a week without reviews: no point rather than a zero

    @property
    def label(self) -> str:
        year, number, _ = self.week.isocalendar()
        return f"{year}-W{number:02d}"


def rating_trend(
    reviews: Iterable[tuple[dt.datetime, int]], *, now: dt.datetime, weeks: int
) -> list[WeekPoint]:
    """Reviews and their average stars per ISO week, every week of the window present (a
    quiet week is a fact worth seeing), oldest first; reviews outside the window ignored."""
    first = week_of(window_start(now, weeks))
    buckets: list[list[int]] = [[] for _ in range(weeks)]
    for at, stars in reviews:
        index = (week_of(at) - first).days // 7
        if 0 <= index < weeks:
            buckets[index].append(stars)
    points = []
    for index, stars_list in enumerate(buckets):
        rating = Rating.of(stars_list)
        points.append(
            WeekPoint(first + index * WEEK, rating.count, rating.average if stars_list else None)
        )
    return points


@dataclass(frozen=True)
class Wait:
    """A consumer waiting for the shop: from their first message after the shop last spoke to
    the shop's next message (`until`), or to now while nobody has answered."""

    since: dt.datetime
    until: dt.datetime | None
    seconds: float

    @property
    def answered(self) -> bool:
        return self.until is not None


def waits(messages: Iterable[tuple[str, dt.datetime]], *, now: dt.datetime) -> list[Wait]:
    """The waits in one conversation, given its messages in order as (side, sent at). Three
    messages in a row before a reply are one wait, measured from the first: that person has
    waited longest. A clock step backwards counts as no wait, not a negative one."""
    result: list[Wait] = []
    since: dt.datetime | None = None
    for side, at in messages:
        if side == "consumer" and since is None:
            since = at
        elif side == "shop" and since is not None:
            result.append(Wait(since, at, max(0.0, (at - since).total_seconds())))
            since = None
    if since is not None:
        result.append(Wait(since, None, max(0.0, (now - since).total_seconds())))
    return result


def median_seconds(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class Fix:
    """One line of "what to fix": what it is about and the ids behind it, which are reviews
    for `term`, questions for `questions` and conversations for `chats`."""

    kind: str  # term | questions | chats
    ids: tuple[int, ...]
    term: str = ""

    @property
    def count(self) -> int:
        return len(self.ids)


def what_to_fix(
    *,
    terms: Sequence[TermCount],
    overdue_questions: Sequence[int],
    slow_chats: Sequence[int],
    min_reviews: int = 2,
    max_terms: int = 3,
) -> list[Fix]:
    """The few things worth doing first, most people affected first. A word counts once at
    least `min_reviews` low reviews share it (one review is an anecdote, its own text says it
    better), and only the top `max_terms` words: the list is a to-do, not a report."""
    fixes = [Fix("term", t.review_ids, t.term) for t in terms if t.count >= min_reviews]
    fixes = fixes[:max_terms]
    if overdue_questions:
        fixes.append(Fix("questions", tuple(overdue_questions)))
    if slow_chats:
        fixes.append(Fix("chats", tuple(slow_chats)))
    return sorted(fixes, key=lambda f: -f.count)  # stable: ties keep terms, questions, chats
