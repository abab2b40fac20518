"""The sensitive-word filter. Pure: Aho-Corasick over normalised text, one pass whatever the
size of the list.

Text is normalised before matching (NFKC, so full-width ＡＢＣ and half-width ABC are one; case
folded) and separators are skipped, so "法 轮" and "法.轮" match "法轮" as people write them to
slip past filters. Words in Latin letters or digits match whole words only ("ass" is not found
in "class"); words in other scripts, which are not written with spaces, match anywhere.
Matches are reported on the original text, so a caller can mask exactly what was typed.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

MASK = "*"


@dataclass(frozen=True)
class Match:
    start: int  # in the original text
    end: int  # exclusive
    word: str  # the listed word, normalised


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _is_separator(ch: str) -> bool:
    """Spaces, punctuation, symbols and invisible characters: what people put between the
    letters of a word to get it past a filter."""
    category = unicodedata.category(ch)
    return category[0] in "ZPSC"


def compact(text: str) -> str:
    """The form a listed word is matched in: normalised, separators left out ("" when it is
    only separators). Two words with the same compact form block the same texts."""
    return "".join(ch for ch in normalise(text) if not _is_separator(ch))


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass
class _Node:
    children: dict[str, int] = field(default_factory=dict)
    fail: int = 0
    words: list[str] = field(default_factory=list)  # ending here, through fail links too


class WordFilter:
    """Build once from the list, then `find`, `mask` or `clean` any number of texts."""

    def __init__(self, words: Iterable[str]) -> None:
        self._nodes = [_Node()]
        for raw in words:
            word = "".join(ch for ch in normalise(raw) if not _is_separator(ch))
            if word:
                self._add(word)
        self._link()

    def _add(self, word: str) -> None:
        at = 0
        for ch in word:
            nxt = self._nodes[at].children.get(ch)
            if nxt is None:
                nxt = len(self._nodes)
                self._nodes.append(_Node())
                self._nodes[at].children[ch] = nxt
            at = nxt
        if word not in self._nodes[at].words:
            self._nodes[at].words.append(word)

    def _link(self) -> None:
        """Failure links breadth first: each node's is the longest proper suffix in the trie."""
        queue = deque(self._nodes[0].children.values())
        while queue:
            at = queue.popleft()
            node = self._nodes[at]
            for ch, child in node.children.items():
                fail = node.fail
                while fail and ch not in self._nodes[fail].children:
                    fail = self._nodes[fail].fail
                target = self._nodes[fail].children.get(ch, 0)
                self._nodes[child].fail = target if target != child else 0
                self._nodes[child].words.extend(self._nodes[self._nodes[child].fail].words)
                queue.append(child)

    def find(self, text: str) -> list[Match]:
        # The compact text: normalised characters that are not separators, each with the
        # index in `text` it came from (NFKC may turn one character into several).
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            for part in normalise(ch):
                if not _is_separator(part):
                    chars.append(part)
                    origin.append(i)
        found: list[Match] = []
        at = 0
        for pos, ch in enumerate(chars):
            while at and ch not in self._nodes[at].children:
                at = self._nodes[at].fail
            at = self._nodes[at].children.get(ch, 0)
            for word in self._nodes[at].words:
                begin, end = origin[pos - len(word) + 1], origin[pos] + 1
                # Whole words for Latin letters, judged on what was typed: "you ass" is a
                # match, "class" is not.
                if _latin(word[0]) and begin > 0 and _latin(normalise(text[begin - 1])[-1:]):
                    continue
                if _latin(word[-1]) and end < len(text) and _latin(normalise(text[end])[:1]):
                    continue
                found.append(Match(begin, end, word))
        return sorted(found, key=lambda m: (m.start, -m.end))

    def clean(self, text: str) -> bool:
        return not self.find(text)

    def mask(self, text: str) -> str:
        """Every character of every match replaced by `*`; separators inside a match too."""
        hidden = [False] * len(text)
        for match in self.find(text):
            for i in range(match.start, match.end):
                hidden[i] = True
        return "".join(MASK if h else ch for ch, h in zip(text, hidden, strict=True))
