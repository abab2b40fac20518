"""English and Simplified Chinese. Catalogues are .po files read at start-up (no build step)."""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LOCALES = {"en": "English", "zh_Hans": "简体中文"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANG_COOKIE = "mm_lang"

_NULL = gettext.NullTranslations()
_current: ContextVar[gettext.NullTranslations | None] = ContextVar("translations", default=None)


@lru_cache
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale.replace("_Hans", ""))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_locale(request: Request, default: str) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return default


def activate(locale: str) -> None:
    _current.set(translations(locale))


def stored(message: str) -> str:
    """Marks text that is stored in English (a notification's title) for the catalogue; the
    page translates it when shown, in the reader's language rather than the writer's.
    Import it as `_` so extraction finds it."""
    return message


def gettext_(message: str) -> str:
    return (_current.get() or _NULL).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return (_current.get() or _NULL).ngettext(singular, plural, n)
