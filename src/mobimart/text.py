"""Text as services store it: printable, single-spaced where it is a name, bounded."""

from __future__ import annotations

import logging
import re
import warnings
from decimal import Decimal
from functools import cache
from types import ModuleType

from mobimart.errors import DomainError


def clean(value: str, max_len: int) -> str:
    """No control or NUL characters (PostgreSQL refuses NUL), at most `max_len`, stripped."""
    text = "".join(ch for ch in value if ch.isprintable() or ch == "\n")[:max_len]
    return text.strip()


def clean_name(value: str, max_len: int) -> str:
    """A name on one line: inner runs of white space become one space."""
    return " ".join(clean(value, max_len).split())


def money(minor: int, currency: str = "CNY") -> str:
    """An amount in minor units as people read it: 123456 -> ¥1,234.56."""
    symbol = "¥" if currency == "CNY" else currency + " "
    return f"{symbol}{minor // 100:,}.{minor % 100:02d}"


def parse_amount(text: str) -> int:
    """ "12.5" or "¥1,234.50" -> fen; anything else is refused with a message."""
    typed = clean(text, 20).lstrip("¥").replace(",", "").strip()
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", typed) or not int(Decimal(typed) * 100):
        raise DomainError("invalid_amount", "Type an amount such as 12.50.", 422)
    return int(Decimal(typed) * 100)


@cache
def jieba() -> ModuleType:
    """The Chinese word segmenter, imported on first use (its dictionary loads in about a
    second). Its source has invalid escape sequences, which the first compile after a fresh
    install reports as warnings; they say nothing about our code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        import jieba as module
    module.setLogLevel(logging.WARNING)
    return module  # type: ignore[no-any-return]
