"""Search by text message: an inbound SMS that is not a keyword is a search, answered with the
top three products and short links to their pages. Keywords opt out (STOP, TD, 退订, T) or ask
for help."""

from __future__ import annotations

import datetime as dt
import hmac
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.catalog import feed
from mobimart.errors import DomainError
from mobimart.infra import throttle
from mobimart.infra.sms import send_sms
from mobimart.search import service as search
from mobimart.settings import get_settings
from mobimart.text import clean_name, money

OPT_OUT = frozenset({"stop", "td", "退订", "t", "unsubscribe"})
HELP = frozenset({"help", "?", "帮助"})
RESULTS = 3
NAME_MAX = 40  # per result in the reply: three results fit in about three SMS parts


def keyword(text: str) -> str | None:
    """'opt_out', 'help', or None for a search."""
    word = clean_name(text, 200).casefold()
    if word in OPT_OUT:
        return "opt_out"
    if word in HELP:
        return "help"
    return None


def search_reply(query: str, found: list[tuple[str, int, str, int]], base_url: str) -> str:
    """The reply text: (name, price, currency, product id) of each result."""
    if not found:
        return f"Mobimart: nothing found for “{query}”. Try other words."
    lines = [f"Mobimart: top results for “{query}”:"]
    for n, (name, price, currency, product_id) in enumerate(found, 1):
        short = name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"
        lines.append(f"{n}. {short} {money(price, currency)} {base_url}/p/{product_id}")
    return "\n".join(lines)


async def handle_inbound(
    session: AsyncSession, *, sender: str, text: str, message_id: str
) -> str | None:
    """Answer one inbound message; returns the reply sent, or None when nothing was sent
    (a retry of a message already answered, or a sender over the search limit)."""
    settings = get_settings()
    phone = accounts_domain.normalize_phone(sender, settings.default_region)
    if message_id:  # Kannel retries a callback that failed: answer each message once
        seen = await throttle.take(
            session, key=f"mo:{message_id}", limit=1, window=dt.timedelta(days=1)
        )
        await session.commit()
        if seen is not None:
            return None
    kind = keyword(text)
    if kind == "opt_out":
        user = await accounts.find_user_by_phone(session, phone=phone)
        if user is not None:
            await privacy.set_consent(
                session,
                user_id=user.id,
                channel=accounts_domain.Channel.sms,
                granted=False,
                source="sms_keyword",
            )
        reply = "Mobimart: you will get no more marketing texts. Text a product name to search."
    elif kind == "help":
        reply = "Mobimart: text what you are looking for, e.g. “steel kettle”. STOP to opt out."
    else:
        refused = await throttle.take(
            session,
            key=f"sms-search:{accounts.phone_hash(phone)}",
            limit=settings.sms_searches_per_phone_per_hour,
            window=dt.timedelta(hours=1),
        )
        await session.commit()
        if refused is not None:
            return None
        query = clean_name(text, 160)
        live = await feed.replica(session)
        views = [live.views[i] for i in search.ids(live, query=query, limit=RESULTS)]
        reply = search_reply(
            query,
            [(v.name, v.price_minor, v.currency, v.id) for v in views],
            settings.base_url.rstrip("/"),
        )
    await send_sms(session, to=phone, text=reply)
    return reply


def check_secret(given: str) -> None:
    expected = get_settings().sms_inbound_secret.get_secret_value()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise DomainError("forbidden", "Wrong or missing inbound secret.", 403)


def message_text(raw_query: bytes, coding: int, charset: str) -> str:
    """The message from Kannel's %b (the original bytes): UCS-2 messages (Chinese) arrive as
    UTF-16BE bytes, which a UTF-8 reading of the query string would garble."""
    fields = dict(parse_qsl(raw_query.decode("latin-1"), encoding="latin-1"))
    data = fields.get("text", "").encode("latin-1")
    if coding == 2 or charset.upper() in {"UTF-16BE", "UCS-2"}:
        return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
