"""The audience screen: consent as of a moment, an address, the weekly cap; opt-outs by SMS
keyword take effect at once; and the acceptance property: nobody is let through without
consent or after an opt-out, over random histories of grants and withdrawals."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.accounts.domain import Channel
from mobimart.accounts.models import User
from mobimart.campaigns import audience, limits
from mobimart.campaigns.limits import Skip
from mobimart.campaigns.models import Campaign, CampaignMessage
from mobimart.db import Database, utcnow
from mobimart.infra.pii import get_vault
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import get_settings
from mobimart.web.deps import SESSION_COOKIE

INBOUND = "/api/v1/sms/inbound"
CSRF = "k" * 43
_ids = itertools.count(1)


def _inbound(phone: str, text: str) -> dict[str, str]:
    return {
        "secret": get_settings().sms_inbound_secret.get_secret_value(),
        "from": phone,
        "text": text,
        "id": f"aud-{next(_ids)}",
    }


async def _grant(db: Database, user: User, channel: Channel = Channel.sms) -> None:
    async with db.session() as s:
        await privacy.set_consent(s, user_id=user.id, channel=channel, granted=True, source="t")


async def _sent(db: Database, user_id: int, *, channel: str = "sms", at: dt.datetime) -> None:
    async with db.session() as s:
        campaign = Campaign(name="c", channel=channel, template="hi", status="sent")
        s.add(campaign)
        await s.flush()
        s.add(
            CampaignMessage(
                campaign_id=campaign.id, user_id=user_id, status="delivered", sent_at=at
            )
        )
        await s.commit()


async def _screen(
    db: Database, ids: list[int], *, channel: str = "sms", now: dt.datetime | None = None
) -> dict[int, Skip | None]:
    async with db.session() as s:
        return await audience.screen(s, channel=channel, user_ids=ids, now=now or utcnow())


async def test_screen_gives_each_reason(db: Database, make_user: Any) -> None:
    ok, never, withdrew, no_phone, capped, capped_long_ago = [await make_user() for _ in range(6)]
    for user in (ok, withdrew, no_phone, capped, capped_long_ago):
        await _grant(db, user)
    async with db.session() as s:
        await privacy.set_consent(
            s, user_id=withdrew.id, channel=Channel.sms, granted=False, source="t"
        )
        await s.execute(
            update(User).where(User.id == no_phone.id).values(phone=None, phone_hash=None)
        )
        await s.commit()
    now = utcnow()
    cap = get_settings().marketing_cap_per_week
    for n in range(cap):
        await _sent(db, capped.id, at=now - dt.timedelta(days=n))
        await _sent(db, capped_long_ago.id, at=now - dt.timedelta(days=7, minutes=n))
    await _sent(db, ok.id, channel="push", at=now)  # another channel's messages do not count
    ids = [ok.id, never.id, withdrew.id, no_phone.id, capped.id, capped_long_ago.id]
    assert await _screen(db, [*ids, ok.id], now=now) == {
        ok.id: None,
        never.id: Skip.no_consent,
        withdrew.id: Skip.no_consent,
        no_phone.id: Skip.no_address,
        capped.id: Skip.capped,
        capped_long_ago.id: None,
    }
    # As of a moment before the withdrawal, the consent held.
    async with db.session() as s:
        rows = list(
            await s.scalars(
                select(privacy.Consent.recorded_at)
                .where(privacy.Consent.user_id == withdrew.id)
                .order_by(privacy.Consent.id)
            )
        )
    assert (await _screen(db, [withdrew.id], now=rows[0]))[withdrew.id] is None
    assert (await _screen(db, [withdrew.id], now=rows[0] - dt.timedelta(microseconds=1)))[
        withdrew.id
    ] is Skip.no_consent
    assert await _screen(db, []) == {}


async def test_push_needs_a_subscription_and_inbox_the_in_app_consent(
    db: Database, make_user: Any
) -> None:
    from mobimart.notifications import push
    from mobimart.notifications.models import PushSubscription

    subscribed, bare = await make_user(), await make_user()
    for user in (subscribed, bare):
        await _grant(db, user, Channel.push)
    async with db.session() as s:
        s.add(
            PushSubscription(
                user_id=subscribed.id,
                endpoint="https://push.example.com/1",
                endpoint_hash=push.endpoint_hash("https://push.example.com/1"),
                p256dh="k",
                auth="a",
            )
        )
        await s.commit()
    assert await _screen(db, [subscribed.id, bare.id], channel="push") == {
        subscribed.id: None,
        bare.id: Skip.no_address,
    }
    assert await _screen(db, [subscribed.id], channel="inbox") == {subscribed.id: Skip.no_consent}
    await _grant(db, bare, Channel.in_app)
    assert await _screen(db, [bare.id], channel="inbox") == {bare.id: None}


async def test_every_opt_out_keyword_works_at_once_and_is_confirmed(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    for word in ("STOP", "stop", "TD", "td", "退订", "T", "t", " 退订 "):
        user = await make_user()
        await _grant(db, user)
        assert (await _screen(db, [user.id]))[user.id] is None
        response = await client.get(INBOUND, params=_inbound(user.phone, word))
        assert response.status_code == 200
        # Already withdrawn when the callback returns: the next batch skips them.
        assert (await _screen(db, [user.id]))[user.id] is Skip.no_consent, word
        async with db.session() as s:
            replies = list(
                await s.scalars(
                    select(SmsMessage.text).where(
                        SmsMessage.to_hash == get_vault().lookup_hash(user.phone)
                    )
                )
            )
        assert len(replies) == 1
        assert "no more marketing texts" in replies[0]


# --- the acceptance property -----------------------------------------------------------------

PEOPLE = 3
_step = st.one_of(
    st.tuples(
        st.just("grant"), st.integers(0, PEOPLE - 1), st.sampled_from(["page", "api", "direct"])
    ),
    st.tuples(
        st.just("withdraw"),
        st.integers(0, PEOPLE - 1),
        st.sampled_from(["page", "api", "STOP", "TD", "退订", "T", "t"]),
    ),
    st.tuples(st.just("sent"), st.integers(0, PEOPLE - 1), st.just("")),
    st.tuples(st.just("screen"), st.just(0), st.sampled_from(["now", "earlier"])),
)


async def _page_consent(app: Any, token: str, granted: bool) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": CSRF},
    ) as c:
        response = await c.post(
            "/me/consents",
            data={"channel": "sms", "granted": "true" if granted else "false", "csrf_token": CSRF},
        )
    assert response.status_code == 303, response.text


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=14))
async def test_no_one_passes_without_consent_or_after_an_opt_out(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, steps: list[Any]
) -> None:
    people = [await make_user() for _ in range(PEOPLE)]
    ids = [p.id for p in people]
    api: list[dict[str, str]] = []
    pages: list[str] = []
    async with db.session() as s:
        for person in people:
            fresh = await s.get(User, person.id)
            assert fresh is not None
            token, _ = await accounts.issue_token(s, user=fresh, kind="api")
            api.append({"Authorization": f"Bearer {token}"})
            page_token, _ = await accounts.issue_token(s, user=fresh, kind="session")
            pages.append(page_token)
    consents: dict[int, list[tuple[dt.datetime, bool]]] = {i: [] for i in ids}
    sends: dict[int, list[dt.datetime]] = {i: [] for i in ids}
    moments: list[dt.datetime] = [utcnow()]
    cap = limits.Cap(get_settings().marketing_cap_per_week, audience.CAP_WINDOW)

    for action, who, how in steps:
        person = people[who]
        if action in ("grant", "withdraw"):
            granted = action == "grant"
            if how == "page":
                await _page_consent(app, pages[who], granted)
            elif how == "api":
                response = await client.put(
                    "/api/v1/me/consents/sms", json={"granted": granted}, headers=api[who]
                )
                assert response.status_code == 200
            elif how == "direct":  # e.g. the Wi-Fi portal's sign-up
                await _grant(db, person)
            else:  # an SMS keyword
                response = await client.get(INBOUND, params=_inbound(person.phone, how))
                assert response.status_code == 200
            consents[person.id].append((utcnow(), granted))
        elif action == "sent":
            at = utcnow()
            await _sent(db, person.id, at=at)
            sends[person.id].append(at)
        else:
            at = utcnow() if how == "now" else moments[len(moments) // 2]
            got = await _screen(db, ids, now=at)
            for user_id in ids:
                if not limits.consented(consents[user_id], at):
                    expected: Skip | None = Skip.no_consent
                elif not cap.allows([t for t in sends[user_id] if t <= at], at):
                    expected = Skip.capped
                else:
                    expected = None
                assert got[user_id] is expected, (user_id, at, consents[user_id], sends[user_id])
        moments.append(utcnow())
