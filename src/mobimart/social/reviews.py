"""Reviews of delivered order lines: writing and editing them, their photos, the shop's reply,
helpful votes, and the product's and shop's rating kept as counts per star.

Every change to what counts (a new review, new stars, a review hidden or restored) moves the
counts in the same transaction by atomic increments keyed on what the row said when it was
changed (UPDATE ... RETURNING), so two requests racing on one review can never count it twice
or take out stars it no longer has."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog import media
from mobimart.catalog.models import Product, ProductChange
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import insert_or_skip, unique_or, utcnow
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.merchants import service as merchants
from mobimart.moderation import service as moderation
from mobimart.notifications import service as notifications
from mobimart.social.domain import STARS, Rating, may_review
from mobimart.social.models import RatingSummary, Review, ReviewPhoto, ReviewVote
from mobimart.text import clean
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams

MAX_PHOTOS = 6
MAX_BODY = 2000
MAX_REPLY = 1000
REVIEWABLE = ("delivered", "completed")
# Review photos live apart from the public media: they are served only while the review is
# shown (a removed review's photos are gone with it), see `visible_photo`.
PHOTO_AREA = "reviews"


# --- the counts ------------------------------------------------------------------------------


async def _bump(
    session: AsyncSession, subject: str, subject_id: int, deltas: dict[int, int]
) -> None:
    """Add `deltas` (stars -> +1/-1) to one summary row, creating it at zero the first time."""
    values = {f"stars_{s}": getattr(RatingSummary, f"stars_{s}") + d for s, d in deltas.items()}
    where = (RatingSummary.subject == subject, RatingSummary.subject_id == subject_id)
    moved = await session.execute(
        update(RatingSummary)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return
    # The first review of this product or shop: two may race to create the row; the loser's
    # insert does nothing and both increments land on the one row.
    await session.execute(
        insert_or_skip(session, RatingSummary).values(subject=subject, subject_id=subject_id)
    )
    await session.execute(
        update(RatingSummary)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def _count(
    session: AsyncSession, *, product_id: int, shop_id: int, deltas: dict[int, int]
) -> None:
    """Move the product's and the shop's counts, and the product's totals that listings sort
    on, by `deltas` (stars -> change in the number of visible reviews with those stars)."""
    deltas = {s: d for s, d in deltas.items() if d}
    if not deltas:
        return
    await _bump(session, "product", product_id, deltas)
    await _bump(session, "shop", shop_id, deltas)
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            rating_count=Product.rating_count + sum(deltas.values()),
            rating_total=Product.rating_total + sum(s * d for s, d in deltas.items()),
        )
        .execution_options(synchronize_session=False)
    )
    session.add(ProductChange(product_id=product_id))  # listings re-sort on the new rating


async def rating(session: AsyncSession, *, subject: str, subject_id: int) -> Rating:
    row = await session.get(RatingSummary, (subject, subject_id), populate_existing=True)
    if row is None:
        return Rating()
    return Rating((row.stars_1, row.stars_2, row.stars_3, row.stars_4, row.stars_5))


# --- writing ---------------------------------------------------------------------------------


def _stars(stars: int) -> int:
    if stars not in STARS:
        raise DomainError("invalid_stars", "Choose 1 to 5 stars.", 422)
    return stars


NOT_BUYER = "Only the person who bought this item can review it."
ALREADY = "You have reviewed this item already; you can edit your review."
# social.domain.may_review's reasons, as API codes and statuses.
_REFUSALS = {
    NOT_BUYER: ("not_buyer", 403),
    "You can review this item once it has been delivered.": ("not_delivered", 409),
    ALREADY: ("already_reviewed", 409),
}


async def _line(session: AsyncSession, *, line_id: int) -> tuple[OrderLine, Order]:
    row = (
        await session.execute(
            select(OrderLine, Order)
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.id == line_id)
        )
    ).first()
    if row is None:
        raise NotFound("Order line")
    return row[0], row[1]


async def review_of_line(session: AsyncSession, *, line_id: int) -> Review | None:
    return await session.scalar(select(Review).where(Review.order_line_id == line_id))


async def line_for_review(
    session: AsyncSession, *, user: User, line_id: int
) -> tuple[OrderLine, Order, Review | None]:
    """The buyer's order line and their review of it, if any; someone else's line is refused
    as the rule says (it is no secret that an order line exists)."""
    line, order = await _line(session, line_id=line_id)
    if order.user_id != user.id:
        raise _refusal(NOT_BUYER)
    return line, order, await review_of_line(session, line_id=line_id)


def _refusal(reason: str) -> DomainError:
    code, status = _REFUSALS.get(reason, ("not_reviewable", 409))
    return DomainError(code, reason, status)


def refusal_of(*, order_status: str) -> DomainError | None:
    """Why the buyer cannot review their line yet, if they cannot."""
    reason = may_review(order_status=order_status, already_reviewed=False, is_buyer=True)
    return _refusal(reason) if reason else None


async def _create(
    session: AsyncSession, *, user: User, line_id: int, stars: int, body: str
) -> Review:
    """A new review in the caller's transaction."""
    line, order = await _line(session, line_id=line_id)
    reason = may_review(
        order_status=order.status,
        already_reviewed=await review_of_line(session, line_id=line_id) is not None,
        is_buyer=order.user_id == user.id,
    )
    if reason:
        raise _refusal(reason)
    _stars(stars)
    text = clean(body, MAX_BODY)
    await moderation.screen(session, text)
    await moderation.limit(session, user_id=user.id, action="review")
    now = utcnow()
    review = Review(
        order_line_id=line.id,
        user_id=user.id,
        product_id=line.product_id,
        shop_id=order.shop_id,
        merchant_id=order.merchant_id,
        stars=stars,
        body=text,
        created_at=now,
        updated_at=now,
    )
    # Two taps on "submit": the unique line makes the second one this error, never a review.
    async with unique_or(session, _refusal(ALREADY)):
        session.add(review)
    await _count(session, product_id=review.product_id, shop_id=review.shop_id, deltas={stars: 1})
    return review


async def create(
    session: AsyncSession, *, user: User, line_id: int, stars: int, body: str
) -> Review:
    review = await _create(session, user=user, line_id=line_id, stars=stars, body=body)
    await session.commit()
    return review


async def own_review(session: AsyncSession, *, user: User, review_id: int) -> Review:
    review = await session.get(Review, review_id)
    if review is None:
        raise NotFound("Review")
    if review.user_id != user.id:
        raise Forbidden("Only the person who wrote a review can change it.")
    return review


async def _edit(
    session: AsyncSession,
    *,
    user: User,
    review_id: int,
    stars: int | None = None,
    body: str | None = None,
) -> Review:
    """Change the review in the caller's transaction (rolled back if it changed meanwhile)."""
    review = await own_review(session, user=user, review_id=review_id)
    values: dict[str, object] = {"updated_at": utcnow()}
    if body is not None:
        values["body"] = clean(body, MAX_BODY)
        await moderation.screen(session, str(values["body"]))
        await moderation.limit(session, user_id=user.id, action="review")
    if stars is not None:
        values["stars"] = _stars(stars)
    # RETURNING the stars it had is not possible in one statement on both databases, so the
    # update is conditional on the stars read: a concurrent edit makes it miss, not miscount.
    old = review.stars
    changed = (
        await session.execute(
            update(Review)
            .where(Review.id == review.id, Review.stars == old)
            .values(**values)
            .returning(Review.hidden_at)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if changed is None:
        await session.rollback()
        raise Conflict("review_changed", "The review changed meanwhile; look at it again.")
    if stars is not None and stars != old and changed[0] is None:
        await _count(
            session,
            product_id=review.product_id,
            shop_id=review.shop_id,
            deltas={old: -1, stars: 1},
        )
    return review


async def edit(
    session: AsyncSession,
    *,
    user: User,
    review_id: int,
    stars: int | None = None,
    body: str | None = None,
) -> Review:
    """Change the stars or the text of one's own review; new stars move one count."""
    review = await _edit(session, user=user, review_id=review_id, stars=stars, body=body)
    await session.commit()
    await session.refresh(review)
    return review


async def write(
    session: AsyncSession,
    *,
    user: User,
    line_id: int,
    stars: int,
    body: str,
    photos: Sequence[bytes] = (),
) -> Review:
    """The review form: write the review of a line (or change it) and add photos, all in one
    transaction, so a refused photo (a bad file, one too many) leaves the review as it was."""
    files = [f for f in photos if f]
    check_photos(files)
    _, _, existing = await line_for_review(session, user=user, line_id=line_id)
    saved: list[str] = []
    try:
        if existing is None:
            review = await _create(session, user=user, line_id=line_id, stars=stars, body=body)
        else:
            review = await _edit(session, user=user, review_id=existing.id, stars=stars, body=body)
        await _attach(session, review=review, files=files, saved=saved)
        await session.commit()
    except BaseException:
        _forget(saved)
        raise
    await session.refresh(review)
    return review


async def _visibility(session: AsyncSession, *, review_id: int, hide: bool) -> bool:
    now = utcnow()
    condition = Review.hidden_at.is_(None) if hide else Review.hidden_at.is_not(None)
    row = (
        await session.execute(
            update(Review)
            .where(Review.id == review_id, condition)
            .values(hidden_at=now if hide else None)
            .returning(Review.stars, Review.product_id, Review.shop_id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        return False
    stars, product_id, shop_id = row
    await _count(session, product_id=product_id, shop_id=shop_id, deltas={stars: -1 if hide else 1})
    return True


async def hide(session: AsyncSession, *, review_id: int) -> bool:
    """Take a review out of public view and out of the ratings, in the caller's transaction.
    True when it was visible; hiding it again changes nothing."""
    return await _visibility(session, review_id=review_id, hide=True)


async def restore(session: AsyncSession, *, review_id: int) -> bool:
    """Undo `hide`, once, in the caller's transaction."""
    return await _visibility(session, review_id=review_id, hide=False)


# --- photos ----------------------------------------------------------------------------------


def photo_url(photo: ReviewPhoto) -> str:
    return f"/reviews/photos/{photo.storage_key}"


def check_photos(files: Sequence[bytes]) -> None:
    """Refuse photos before anything is written (a form sends the review and its photos at
    once: a bad photo must not leave a review behind without it)."""
    if len(files) > MAX_PHOTOS:
        raise DomainError("too_many_photos", f"A review has at most {MAX_PHOTOS} photos.", 422)
    for data in files:
        media.check(data, videos=False)


def _forget(keys: Sequence[str]) -> None:
    """No file outlives its row: a refused or failed upload leaves nothing behind."""
    for key in keys:
        media.path_of(key, area=PHOTO_AREA).unlink(missing_ok=True)


async def _attach(
    session: AsyncSession, *, review: Review, files: Sequence[bytes], saved: list[str]
) -> list[ReviewPhoto]:
    """Store the photos and add their rows in the caller's transaction; the keys of the files
    written go to `saved`, for the caller to delete if the transaction does not commit."""
    if not files:
        return []
    # The review row is locked (PostgreSQL) or the database is (SQLite) until commit, so
    # parallel uploads count one after another and the limit holds.
    await session.execute(
        update(Review)
        .where(Review.id == review.id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    have = int(
        await session.scalar(
            select(func.count()).select_from(ReviewPhoto).where(ReviewPhoto.review_id == review.id)
        )
        or 0
    )
    if have + len(files) > MAX_PHOTOS:
        raise DomainError(
            "too_many_photos",
            f"A review has at most {MAX_PHOTOS} photos; this one has {have} already.",
            422,
        )
    photos: list[ReviewPhoto] = []
    for n, data in enumerate(files):
        key, content_type, _kind = media.store(data, videos=False, area=PHOTO_AREA)
        saved.append(key)
        photo = ReviewPhoto(
            review_id=review.id,
            content_type=content_type,
            size=len(data),
            storage_key=key,
            position=have + n,
        )
        session.add(photo)
        photos.append(photo)
    return photos


async def add_photos(
    session: AsyncSession, *, user: User, review_id: int, files: Sequence[bytes]
) -> list[ReviewPhoto]:
    review = await own_review(session, user=user, review_id=review_id)
    saved: list[str] = []
    try:
        photos = await _attach(session, review=review, files=[f for f in files if f], saved=saved)
        await session.commit()
    except BaseException:
        _forget(saved)
        raise
    return photos


async def visible_photo(session: AsyncSession, *, key: str) -> tuple[ReviewPhoto, Path]:
    """A photo of a review that is shown, and its file; a hidden review's photos are a 404,
    like the review."""
    path = media.path_of(key, area=PHOTO_AREA)
    photo = await session.scalar(
        select(ReviewPhoto)
        .join(Review, Review.id == ReviewPhoto.review_id)
        .where(ReviewPhoto.storage_key == key, Review.hidden_at.is_(None))
    )
    if photo is None or not path.is_file():
        raise NotFound("Photo")
    return photo, path


async def photos_of(
    session: AsyncSession, review_ids: Sequence[int]
) -> dict[int, list[ReviewPhoto]]:
    found: dict[int, list[ReviewPhoto]] = defaultdict(list)
    if review_ids:
        for photo in await session.scalars(
            select(ReviewPhoto)
            .where(ReviewPhoto.review_id.in_(review_ids))
            .order_by(ReviewPhoto.review_id, ReviewPhoto.position, ReviewPhoto.id)
        ):
            found[photo.review_id].append(photo)
    return found


# --- the shop's reply and helpful votes -------------------------------------------------------


async def merchant_review(session: AsyncSession, *, merchant_id: int, review_id: int) -> Review:
    review = await session.scalar(
        select(Review).where(Review.id == review_id, Review.merchant_id == merchant_id)
    )
    if review is None:
        raise NotFound("Review")
    return review


async def reply(
    session: AsyncSession, *, user: User, merchant_id: int, review_id: int, body: str
) -> Review:
    """The shop's one public answer to a review; writing it again replaces it."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    review = await merchant_review(session, merchant_id=merchant_id, review_id=review_id)
    text = clean(body, MAX_REPLY)
    if not text:
        raise DomainError("empty_reply", "Write a reply first.", 422)
    await moderation.screen(session, text)
    first = not review.reply
    review.reply = text
    review.replied_by = user.id
    review.replied_at = utcnow()
    await notifications.notify(
        session,
        user_id=review.user_id,
        kind="review",
        title=_("The shop replied to your review") if first else _("The shop changed its reply"),
        body=text[:300],
        link=f"/products/{review.product_id}#review-{review.id}",
        key=f"review:{review.id}",
    )
    await session.commit()
    return review


async def _visible_review(session: AsyncSession, *, review_id: int) -> Review:
    review = await session.get(Review, review_id)
    if review is None or review.hidden_at is not None:
        raise NotFound("Review")
    return review


async def vote(session: AsyncSession, *, user: User, review_id: int, helpful: bool) -> Review:
    """Say a review helped (or take it back). Idempotent: the vote row and the count move
    together, only when the row really appears or disappears."""
    review = await _visible_review(session, review_id=review_id)
    if review.user_id == user.id:
        raise DomainError("own_review", "You cannot vote on your own review.", 403)
    if helpful:
        insert = insert_or_skip(session, ReviewVote).values(
            review_id=review.id, user_id=user.id, created_at=utcnow()
        )
        changed = await session.scalar(insert.returning(ReviewVote.review_id))
    else:
        changed = (
            await session.execute(
                delete(ReviewVote)
                .where(ReviewVote.review_id == review.id, ReviewVote.user_id == user.id)
                .returning(ReviewVote.review_id)
            )
        ).first()
    if changed is not None:
        await session.execute(
            update(Review)
            .where(Review.id == review.id)
            .values(helpful_count=Review.helpful_count + (1 if helpful else -1))
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    await session.refresh(review)
    return review


async def voted(session: AsyncSession, *, user_id: int, review_ids: Sequence[int]) -> set[int]:
    if not review_ids:
        return set()
    return set(
        await session.scalars(
            select(ReviewVote.review_id).where(
                ReviewVote.user_id == user_id, ReviewVote.review_id.in_(review_ids)
            )
        )
    )


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    stars: int | None = None
    with_photos: bool = False


def _filtered(where: list[ColumnElement[bool]], filters: Filters) -> list[ColumnElement[bool]]:
    if filters.stars is not None:
        where.append(Review.stars == filters.stars)
    if filters.with_photos:
        where.append(exists().where(ReviewPhoto.review_id == Review.id))
    return where


async def _page(
    session: AsyncSession, where: list[ColumnElement[bool]], page: PageParams
) -> list[tuple[Review, User]]:
    if page.before_id is not None:
        where.append(Review.id < page.before_id)
    rows = await session.execute(
        select(Review, User)
        .join(User, User.id == Review.user_id)
        .where(and_(*where))
        .order_by(Review.id.desc())
        .limit(page.fetch)
    )
    return [(r, u) for r, u in rows]


async def of_product(
    session: AsyncSession, *, product_id: int, page: PageParams, filters: Filters = Filters()
) -> list[tuple[Review, User]]:
    """Visible reviews of a product, newest first, with their authors."""
    where = _filtered([Review.product_id == product_id, Review.hidden_at.is_(None)], filters)
    return await _page(session, where, page)


async def of_merchant(
    session: AsyncSession,
    *,
    merchant_id: int,
    page: PageParams,
    unreplied: bool = False,
    filters: Filters = Filters(),
) -> list[tuple[Review, User]]:
    """The shop's visible reviews, newest first (or only those it has not replied to)."""
    where = _filtered([Review.merchant_id == merchant_id, Review.hidden_at.is_(None)], filters)
    if unreplied:
        where.append(Review.reply == "")
    return await _page(session, where, page)


async def reviewable(
    session: AsyncSession, *, user_id: int, page: PageParams
) -> list[tuple[OrderLine, Order]]:
    """The person's delivered order lines they have not reviewed yet, newest first."""
    query = (
        select(OrderLine, Order)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.user_id == user_id,
            Order.status.in_(REVIEWABLE),
            ~exists().where(Review.order_line_id == OrderLine.id),
        )
    )
    if page.before_id is not None:
        query = query.where(OrderLine.id < page.before_id)
    rows = await session.execute(query.order_by(OrderLine.id.desc()).limit(page.fetch))
    return [(line, order) for line, order in rows]
