"""Text analysis for search: units and numbers normalised, English stemmed, Chinese segmented.
Pure; the same function analyses products and queries, so they meet in one vocabulary."""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

from mobimart.text import jieba

_STEMMER = snowballstemmer.stemmer("english")

# "1/2 in." = "1/2 inch" = "1/2-inch"; "cu. ft." = "cuft". Matched before tokenising.
_UNITS = [
    (r"(\d)\s*-?\s*(?:inch(?:es)?|in\.|in\b|\")", r"\1 inch"),
    (r"(\d)\s*-?\s*(?:feet|foot|ft\.?|')", r"\1 foot"),
    (r"(\d)\s*-?\s*(?:gallons?|gal\.?)", r"\1 gallon"),
    (r"(\d)\s*-?\s*(?:pounds?|lbs?\.?)", r"\1 pound"),
    (r"(\d)\s*-?\s*(?:ounces?|oz\.?)", r"\1 ounce"),
    (r"(\d)\s*-?\s*(?:volts?|v)\b", r"\1 volt"),
    (r"(\d)\s*-?\s*(?:watts?|w)\b", r"\1 watt"),
    (r"(\d)\s*-?\s*(?:amps?|a)\b", r"\1 amp"),
    (r"\bsq\.?\s*ft\.?", "sqft"),
    (r"\bcu\.?\s*ft\.?", "cuft"),
    (r"(\d)\s*x\s*(\d)", r"\1 x \2"),
]
_UNIT_PATTERNS = [(re.compile(p, re.IGNORECASE), r) for p, r in _UNITS]
STOPWORDS = frozenset({"in", "with", "and", "for", "the", "of", "a", "to", "on", "x", "by", "or"})
_TOKEN = re.compile(r"\d+/\d+|[a-z0-9]+|[\u4e00-\u9fff]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# The part of a title before "with/for/in/and" usually names what the product is.
_HEAD = re.compile(r"\s(?:with|for|in|and)\s|[,(]", re.IGNORECASE)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _STEMMER.stemWord(word) if word.isascii() and word.isalpha() else word


def _segment(chunk: str) -> list[str]:
    return [w for w in jieba().cut_for_search(chunk) if w.strip()]


def surface_words(text: str) -> list[str]:
    """Lower-cased words before stemming, units normalised, stop words dropped."""
    lowered = text.lower()
    for pattern, replacement in _UNIT_PATTERNS:
        lowered = pattern.sub(replacement, lowered)
    words: list[str] = []
    for token in _TOKEN.findall(lowered):
        if _CJK.match(token):
            words.extend(_segment(token))
        elif token not in STOPWORDS:
            words.append(token)
    return words


def analyze(text: str) -> list[str]:
    return [stem(w) for w in surface_words(text)]


def head(title: str) -> str:
    return _HEAD.split(title, maxsplit=1)[0]
