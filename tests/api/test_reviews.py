"""Reviews through the API on SQLite and PostgreSQL: who may review what, the ratings kept
incrementally (checked against a count from scratch), photos, helpful votes, the shop's
reply, the word filter, and the review form that keeps what was typed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Product
from mobimart.db import Database
from mobimart.merchants.models import Merchant
from mobimart.moderation import service as moderation
from mobimart.notifications.models import Notification
from mobimart.social import reviews
from mobimart.social.domain import Rating
from mobimart.social.models import Review
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.factories import buy

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@dataclass
class Shop:
    owner: User
    merchant: Merchant
    products: list[Product]
    shop_id: int


async def shop(db: Database, make_user: Any, n: int = 1) -> Shop:
    owner = await make_user(name=f"owner{n}")
    admin = await make_user(admin=True)
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    async with db.session() as s:
        products = [
            await catalog.create_product(
                s, merchant=merchant, name=name, price_minor=1000, stock=50, publish=True
            )
            for name in ("Mug", "Teapot")
        ]
    return Shop(owner, merchant, products, products[0].shop_id)


async def _visible_rating(db: Database, **where: int) -> Rating:
    """The rating counted from scratch over the visible reviews."""
    column = {"product_id": Review.product_id, "shop_id": Review.shop_id}
    async with db.session() as s:
        ((name, value),) = where.items()
        stars = await s.scalars(
            select(Review.stars).where(column[name] == value, Review.hidden_at.is_(None))
        )
        return Rating.of(stars)


async def _assert_ratings_agree(client: httpx.AsyncClient, db: Database, w: Shop) -> None:
    for product in w.products:
        expected = await _visible_rating(db, product_id=product.id)
        got = (await client.get(f"/api/v1/products/{product.id}/rating")).json()
        assert got["count"] == expected.count
        assert got["average"] == expected.average
        assert [d["count"] for d in got["distribution"]] == list(reversed(expected.counts))
        async with db.session() as s:
            row = await s.get(Product, product.id)
            assert row is not None
            assert row.rating_count == expected.count
            assert row.rating_total == sum((i + 1) * n for i, n in enumerate(expected.counts))
    expected = await _visible_rating(db, shop_id=w.shop_id)
    got = (await client.get(f"/api/v1/shops/{w.shop_id}/rating")).json()
    assert (got["count"], got["average"]) == (expected.count, expected.average)
    assert [d["count"] for d in got["distribution"]] == list(reversed(expected.counts))


async def test_only_the_buyer_of_a_delivered_line_reviews_it_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    alice, bob = await make_user(name="Alice Wong"), await make_user()
    mug_line, teapot_line = await buy(
        db, alice, w.products, owner=w.owner, merchant_id=w.merchant.id
    )
    (bob_line,) = await buy(
        db, bob, w.products[:1], owner=w.owner, merchant_id=w.merchant.id, until="shipped"
    )
    a, b = await auth_headers(alice), await auth_headers(bob)
    review = {"stars": 4, "body": "Solid mug."}

    url = f"/api/v1/order-lines/{mug_line}/review"
    assert (await client.post(url, json=review)).status_code == 401
    refused = await client.post(url, json=review, headers=b)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_buyer")
    assert "Only the person who bought" in refused.json()["detail"]
    early = await client.post(f"/api/v1/order-lines/{bob_line}/review", json=review, headers=b)
    assert (early.status_code, early.json()["code"]) == (409, "not_delivered")
    bad = await client.post(url, json={"stars": 6}, headers=a)
    assert bad.status_code == 422

    reviewable = (await client.get("/api/v1/me/reviewable", headers=a)).json()["items"]
    assert {r["line_id"] for r in reviewable} == {mug_line, teapot_line}
    # Two taps at once: one review, and the other told it exists.
    taps = await asyncio.gather(*(client.post(url, json=review, headers=a) for _ in range(2)))
    assert sorted(t.status_code for t in taps) == [201, 409], [t.text for t in taps]
    created = next(t for t in taps if t.status_code == 201)
    body = created.json()
    assert (body["stars"], body["body"], body["author"]) == (4, "Solid mug.", "A***g")
    assert alice.phone is not None
    assert alice.phone[3:] not in created.text
    again = await client.post(url, json={"stars": 1}, headers=a)
    assert (again.status_code, again.json()["code"]) == (409, "already_reviewed")
    reviewable = (await client.get("/api/v1/me/reviewable", headers=a)).json()["items"]
    assert [r["line_id"] for r in reviewable] == [teapot_line]

    # Only the author edits, and the text goes through the same checks.
    patch = f"/api/v1/reviews/{body['id']}"
    assert (await client.patch(patch, json={"stars": 2}, headers=b)).status_code == 403
    edited = await client.patch(patch, json={"stars": 5, "body": "Even better."}, headers=a)
    assert (edited.json()["stars"], edited.json()["body"]) == (5, "Even better.")
    listed = (await client.get(f"/api/v1/products/{w.products[0].id}/reviews")).json()["items"]
    assert [(r["id"], r["stars"]) for r in listed] == [(body["id"], 5)]


async def test_ratings_follow_every_add_edit_hide_and_restore(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    buyers = [await make_user() for _ in range(3)]
    ids: list[int] = []
    for buyer, stars in zip(buyers, [(5, 3), (4, 1), (2, 5)], strict=True):
        lines = await buy(db, buyer, w.products, owner=w.owner, merchant_id=w.merchant.id)
        headers = await auth_headers(buyer)
        for line, n in zip(lines, stars, strict=True):
            made = await client.post(
                f"/api/v1/order-lines/{line}/review", json={"stars": n}, headers=headers
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
    await _assert_ratings_agree(client, db, w)
    mug = (await client.get(f"/api/v1/products/{w.products[0].id}/rating")).json()
    assert (mug["count"], mug["average"]) == (3, 3.7)  # 5, 4, 2

    edit = await client.patch(
        f"/api/v1/reviews/{ids[0]}", json={"stars": 1}, headers=await auth_headers(buyers[0])
    )
    assert edit.status_code == 200
    await _assert_ratings_agree(client, db, w)

    async with db.session() as s:
        assert await reviews.hide(s, review_id=ids[2]) is True
        assert await reviews.hide(s, review_id=ids[2]) is False  # once only
        await s.commit()
    await _assert_ratings_agree(client, db, w)
    listed = (await client.get(f"/api/v1/products/{w.products[0].id}/reviews")).json()["items"]
    assert ids[2] not in {r["id"] for r in listed}
    # The author may still change a hidden review; it stays out of the counts.
    edit = await client.patch(
        f"/api/v1/reviews/{ids[2]}", json={"stars": 5}, headers=await auth_headers(buyers[1])
    )
    assert edit.status_code == 200
    await _assert_ratings_agree(client, db, w)

    async with db.session() as s:
        assert await reviews.restore(s, review_id=ids[2]) is True
        assert await reviews.restore(s, review_id=ids[2]) is False
        await s.commit()
    await _assert_ratings_agree(client, db, w)
    shop_rating = (await client.get(f"/api/v1/shops/{w.shop_id}/rating")).json()
    assert shop_rating["count"] == 6
    filtered = await client.get(f"/api/v1/products/{w.products[1].id}/reviews?stars=5")
    assert [r["stars"] for r in filtered.json()["items"]] == [5]


async def test_helpful_votes_count_each_person_once_even_at_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    author = await make_user()
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    made = await client.post(
        f"/api/v1/order-lines/{line}/review", json={"stars": 5}, headers=await auth_headers(author)
    )
    url = f"/api/v1/reviews/{made.json()['id']}/helpful"
    own = await client.put(url, headers=await auth_headers(author))
    assert (own.status_code, own.json()["code"]) == (403, "own_review")
    assert (await client.put(url)).status_code == 401

    voters = [await auth_headers(await make_user()) for _ in range(3)]
    # Each voter taps several times at once; the count moves with the vote rows only.
    answers = await asyncio.gather(*(client.put(url, headers=h) for h in voters * 4))
    assert {a.status_code for a in answers} == {200}
    assert (await client.put(url, headers=voters[0])).json()["helpful_count"] == 3
    gone = await asyncio.gather(*(client.delete(url, headers=voters[0]) for _ in range(4)))
    assert {g.json()["helpful_count"] for g in gone} <= {2}
    async with db.session() as s:
        review = await s.get(Review, made.json()["id"])
        assert review is not None
        assert review.helpful_count == 2


async def test_shop_staff_reply_once_and_the_reviewer_is_told(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    other = await shop(db, make_user, n=2)
    staff = await make_user()
    await factories.add_staff(db, w.merchant, w.owner, staff)
    author = await make_user()
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    made = await client.post(
        f"/api/v1/order-lines/{line}/review",
        json={"stars": 2, "body": "Chipped."},
        headers=await auth_headers(author),
    )
    review_id = made.json()["id"]
    url = f"/api/v1/merchants/{w.merchant.id}/reviews/{review_id}/reply"
    reply = {"body": "Sorry! A new one is on its way."}
    for outsider in (author, other.owner):
        denied = await client.put(url, json=reply, headers=await auth_headers(outsider))
        assert denied.status_code == 404
    wrong_shop = f"/api/v1/merchants/{other.merchant.id}/reviews/{review_id}/reply"
    denied = await client.put(wrong_shop, json=reply, headers=await auth_headers(other.owner))
    assert denied.status_code == 404

    answered = await client.put(url, json=reply, headers=await auth_headers(staff))
    assert answered.status_code == 200, answered.text
    assert answered.json()["reply"]["body"] == reply["body"]
    changed = await client.put(
        url, json={"body": "Replacement sent."}, headers=await auth_headers(w.owner)
    )
    assert changed.json()["reply"]["body"] == "Replacement sent."
    async with db.session() as s:
        notes = list(
            await s.scalars(
                select(Notification).where(
                    Notification.user_id == author.id, Notification.kind == "review"
                )
            )
        )
    # One line for the review however often the shop edits its reply.
    assert [n.link for n in notes] == [f"/products/{w.products[0].id}#review-{review_id}"]
    listed = await client.get(
        f"/api/v1/merchants/{w.merchant.id}/reviews?unreplied=true",
        headers=await auth_headers(staff),
    )
    assert listed.json()["items"] == []
    public = (await client.get(f"/api/v1/products/{w.products[0].id}/reviews")).json()
    assert public["items"][0]["reply"]["body"] == "Replacement sent."


async def test_blocked_words_photos_and_escaping(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    admin, author = await make_user(admin=True), await make_user()
    async with db.session() as s:
        await moderation.add_word(s, word="scamword", admin_id=admin.id)
        await s.commit()
    mug_line, teapot_line = await buy(
        db, author, w.products, owner=w.owner, merchant_id=w.merchant.id
    )
    headers = await auth_headers(author)
    url = f"/api/v1/order-lines/{mug_line}/review"
    refused = await client.post(url, json={"stars": 1, "body": "A SCAMWORD shop"}, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "blocked_words")
    assert "SCAMWORD" in refused.json()["detail"]
    assert (await client.get(f"/api/v1/shops/{w.shop_id}/rating")).json()["count"] == 0

    script = "<script>alert(1)</script> nice"
    made = await client.post(url, json={"stars": 5, "body": script}, headers=headers)
    assert made.status_code == 201
    photos = f"/api/v1/reviews/{made.json()['id']}/photos"
    wrong = await client.post(
        photos, files=[("files", ("a.txt", b"hello", "image/png"))], headers=headers
    )
    assert wrong.status_code == 415
    png = ("files", ("a.png", factories.PNG, "image/png"))
    jpeg = ("files", ("b.jpg", JPEG, "image/jpeg"))
    added = await client.post(photos, files=[png, jpeg], headers=headers)
    assert added.status_code == 201, added.text
    served = await client.get(added.json()[0]["url"])
    assert (served.status_code, served.headers["content-type"]) == (200, "image/png")
    too_many = await client.post(photos, files=[png] * 5, headers=headers)
    assert (too_many.status_code, too_many.json()["code"]) == (422, "too_many_photos")
    other = await client.post(photos, files=[png], headers=await auth_headers(w.owner))
    assert other.status_code == 403
    await client.post(
        f"/api/v1/order-lines/{teapot_line}/review", json={"stars": 3}, headers=headers
    )
    with_photos = await client.get(f"/api/v1/products/{w.products[0].id}/reviews?with_photos=true")
    assert [len(r["photos"]) for r in with_photos.json()["items"]] == [2]
    assert (
        await client.get(f"/api/v1/products/{w.products[1].id}/reviews?with_photos=true")
    ).json()["items"] == []

    page = await client.get(f"/products/{w.products[0].id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; nice" in page.text
    assert "<script>alert(1)" not in page.text
    assert 'id="rating"' in page.text
    assert "<meter" in page.text


async def test_a_refused_review_form_keeps_what_was_typed(
    app: Any, db: Database, make_user: Any
) -> None:
    from mobimart.accounts import service as accounts

    w = await shop(db, make_user)
    admin, author = await make_user(admin=True), await make_user()
    async with db.session() as s:
        await moderation.add_word(s, word="scamword", admin_id=admin.id)
        await s.commit()
        token, _ = await accounts.issue_token(s, user=await s.merge(author), kind="session")
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    cookies = {SESSION_COOKIE: token, "mm_csrf": "x" * 43}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        form = await c.get(f"/order-lines/{line}/review")
        assert form.status_code == 200
        assert 'id="review-form"' in form.text
        typed = "Arrived fast <b>but</b> scamword packaging"
        refused = await c.post(
            f"/order-lines/{line}/review",
            data={"csrf_token": "x" * 43, "stars": "3", "body": typed},
        )
        assert refused.status_code == 422
        assert "not allowed" in refused.text
        assert "scamword" in refused.text
        assert "Arrived fast &lt;b&gt;but&lt;/b&gt; scamword packaging</textarea>" in refused.text
        assert 'value="3" checked' in refused.text
        posted = await c.post(
            f"/order-lines/{line}/review",
            data={"csrf_token": "x" * 43, "stars": "4", "body": "Arrived fast"},
            files=[("photos", ("p.png", factories.PNG, "image/png"))],
        )
        assert posted.status_code == 303
        assert posted.headers["location"].startswith(f"/products/{w.products[0].id}#review-")
        product = await c.get(f"/products/{w.products[0].id}")
        assert "Arrived fast" in product.text
        assert "/reviews/photos/" in product.text
        review_id = posted.headers["location"].rsplit("#review-", 1)[1]
        assert f'action="/reviews/{review_id}/helpful"' not in product.text  # not on one's own
        # Someone else's line: refused with the rule, not a form.
        other = await make_user()
        async with db.session() as s:
            other_token, _ = await accounts.issue_token(
                s, user=await s.merge(other), kind="session"
            )
        c.cookies.set(SESSION_COOKIE, other_token)
        assert (await c.get(f"/order-lines/{line}/review")).status_code == 403
        voted = await c.post(
            f"/reviews/{review_id}/helpful",
            data={"csrf_token": "x" * 43, "helpful": "1", "next": f"/products/{w.products[0].id}"},
        )
        assert voted.headers["location"] == f"/products/{w.products[0].id}#review-{review_id}"
        product = await c.get(f"/products/{w.products[0].id}")
        assert "1 person found this helpful" in product.text
        assert 'name="helpful" value="0"' in product.text  # the button now takes it back


async def test_the_console_replies_and_answers_with_plain_forms(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.accounts import service as accounts

    w = await shop(db, make_user)
    author = await make_user()
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    made = await client.post(
        f"/api/v1/order-lines/{line}/review",
        json={"stars": 3, "body": "OK"},
        headers=await auth_headers(author),
    )
    asked = await client.post(
        f"/api/v1/products/{w.products[0].id}/questions",
        json={"body": "Gift wrap?"},
        headers=await auth_headers(author),
    )
    async with db.session() as s:
        token, _ = await accounts.issue_token(s, user=await s.merge(w.owner), kind="session")
    cookies = {SESSION_COOKIE: token, "mm_csrf": "x" * 43}
    console = f"/console/{w.merchant.id}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        waiting = await c.get(f"{console}/questions")
        assert "Gift wrap?" in waiting.text
        empty = await c.post(
            f"{console}/reviews/{made.json()['id']}/reply",
            data={"csrf_token": "x" * 43, "body": "  "},
        )
        assert empty.status_code == 422
        assert "Write a reply first." in empty.text
        replied = await c.post(
            f"{console}/reviews/{made.json()['id']}/reply",
            data={"csrf_token": "x" * 43, "body": "Thanks for the <3 stars"},
        )
        assert replied.status_code == 303
        answered = await c.post(
            f"{console}/questions/{asked.json()['id']}/answers",
            data={"csrf_token": "x" * 43, "body": "Yes, free."},
        )
        assert answered.status_code == 303
        assert "Gift wrap?" not in (await c.get(f"{console}/questions")).text
        assert "Gift wrap?" in (await c.get(f"{console}/questions?answered=1")).text
        assert "Thanks for the &lt;3 stars" in (await c.get(f"{console}/reviews")).text
    product = await client.get(f"/products/{w.products[0].id}")
    assert "Thanks for the &lt;3 stars" in product.text
    assert "Yes, free." in product.text
    assert "The shop" in product.text


async def test_a_removed_reviews_photos_are_gone_and_briefly_cached(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    """Review photos are not public media: served only while the review is shown, never at
    /media/<key>, and cached minutes, not a year (finding 11)."""
    w = await shop(db, make_user)
    author = await make_user()
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    headers = await auth_headers(author)
    made = await client.post(
        f"/api/v1/order-lines/{line}/review", json={"stars": 4}, headers=headers
    )
    added = await client.post(
        f"/api/v1/reviews/{made.json()['id']}/photos",
        files=[("files", ("a.png", factories.PNG, "image/png"))],
        headers=headers,
    )
    url = added.json()[0]["url"]
    key = url.rsplit("/", 1)[1]
    served = await client.get(url)
    assert (served.status_code, served.headers["content-type"]) == (200, "image/png")
    assert served.content == factories.PNG
    cache = served.headers["cache-control"]
    assert "immutable" not in cache
    assert int(cache.split("max-age=")[1].split(",")[0]) <= 3600
    assert (await client.get(f"/media/{key}")).status_code == 404  # not among the public media
    async with db.session() as s:
        assert await reviews.hide(s, review_id=made.json()["id"])
        await s.commit()
    assert (await client.get(url)).status_code == 404
    async with db.session() as s:
        assert await reviews.restore(s, review_id=made.json()["id"])
        await s.commit()
    assert (await client.get(url)).status_code == 200
    assert (await client.get("/reviews/photos/" + "0" * 32 + ".png")).status_code == 404
    assert (await client.get("/reviews/photos/..%2Fkeys")).status_code == 404


async def test_the_review_form_saves_all_or_nothing(
    app: Any, db: Database, make_user: Any, auth_headers: Any, client: httpx.AsyncClient
) -> None:
    """A form whose photos would pass the limit changes nothing, not the text without the
    photos (finding 13)."""
    from mobimart.accounts import service as accounts

    w = await shop(db, make_user)
    author = await make_user()
    (line,) = await buy(db, author, w.products[:1], owner=w.owner, merchant_id=w.merchant.id)
    headers = await auth_headers(author)
    made = await client.post(
        f"/api/v1/order-lines/{line}/review", json={"stars": 4, "body": "First"}, headers=headers
    )
    review_id = made.json()["id"]
    png = ("files", ("a.png", factories.PNG, "image/png"))
    assert (
        await client.post(f"/api/v1/reviews/{review_id}/photos", files=[png] * 5, headers=headers)
    ).status_code == 201
    async with db.session() as s:
        token, _ = await accounts.issue_token(s, user=await s.merge(author), kind="session")
    cookies = {SESSION_COOKIE: token, "mm_csrf": "x" * 43}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        refused = await c.post(
            f"/order-lines/{line}/review",
            data={"csrf_token": "x" * 43, "stars": "2", "body": "Changed"},
            files=[("photos", ("p.png", factories.PNG, "image/png"))] * 2,
        )
        assert refused.status_code == 422
        assert "at most 6 photos" in refused.text
        assert "Changed</textarea>" in refused.text  # what was typed comes back
        async with db.session() as s:
            review = await s.get(Review, review_id)
            assert review is not None
            assert (review.stars, review.body) == (4, "First")
        await _assert_ratings_agree(c, db, w)
        saved = await c.post(
            f"/order-lines/{line}/review",
            data={"csrf_token": "x" * 43, "stars": "2", "body": "Changed"},
            files=[("photos", ("p.png", factories.PNG, "image/png"))],
        )
        assert saved.status_code == 303
    async with db.session() as s:
        review = await s.get(Review, review_id)
        assert review is not None
        assert (review.stars, review.body) == (2, "Changed")
        assert len((await reviews.photos_of(s, [review_id]))[review_id]) == 6
    await _assert_ratings_agree(client, db, w)
