from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from mobimart.campaigns import product_views
from mobimart.catalog import brands, browse, feed, follows, media
from mobimart.catalog import service as catalog
from mobimart.catalog.importing import parse_price
from mobimart.catalog.listing import Filters, Sort, option_choices
from mobimart.catalog.view import media_url
from mobimart.errors import DomainError, NotFound
from mobimart.social import pages as social_pages
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
PAGE = 20


def _ids(values: list[str]) -> frozenset[int]:
    return frozenset(int(v) for v in values if v.isdigit() and 0 < int(v) <= MAX_ID)


def page_filters(request: Request, **fixed: Any) -> tuple[Filters, Sort, list[str]]:
    """Filters from a listing page's form. Pages are forgiving: a value that makes no sense
    is left out and named in a notice, and the rest still apply."""
    args = request.query_params
    problems: list[str] = []
    prices: dict[str, int | None] = {}
    for name in ("price_min", "price_max"):
        text = args.get(name, "").strip()
        prices[name] = None
        if text:
            try:
                prices[name] = parse_price(text)
            except DomainError:
                problems.append(_("“%(value)s” is not a price.") % {"value": text[:20]})
    low, high = prices["price_min"], prices["price_max"]
    if low is not None and high is not None and low > high:
        problems.append(_("The lowest price is above the highest."))
        prices = {"price_min": None, "price_max": None}
    rating = args.get("rating", "")
    sort = args.get("sort", Sort.relevance.value)
    filters = Filters(
        category=fixed.get("category"),
        brands=fixed.get("brands") or _ids(args.getlist("brand")[:50]),
        shops=fixed.get("shops") or _ids(args.getlist("shop")[:50]),
        options=option_choices(args.getlist("option")[:20]),
        price_min=prices["price_min"],
        price_max=prices["price_max"],
        min_rating=int(rating) if rating in {"1", "2", "3", "4", "5"} else None,
        in_stock=args.get("in_stock") == "1",
    )
    return filters, Sort(sort) if sort in Sort.__members__ else Sort.relevance, problems


async def listing_page(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    *,
    base: str,
    heading: str,
    query: str = "",
    context: dict[str, Any] | None = None,
    template: str = "catalog/listing.html",
    **fixed: Any,
) -> Response:
    """A category, shop, brand or search listing: filters as a plain form (no script needed),
    facet counts beside each choice, sorting, and a link to the next page."""
    filters, sort, problems = page_filters(request, **fixed)
    cursor = request.query_params.get("cursor") or None
    live = await feed.replica(session)
    try:
        found = browse.browse(
            live, filters=filters, sort=sort, cursor=cursor, limit=PAGE, query=query
        )
    except DomainError:  # a cursor from another sort or a stale link: start again
        found = browse.browse(live, filters=filters, sort=sort, limit=PAGE, query=query)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return render(
        request,
        template,
        {
            "user": user,
            "tab": "home",
            "heading": heading,
            "query": query,
            "found": found,
            "filters": filters,
            "sort": sort,
            "sorts": _sort_labels(bool(query)),
            "problems": problems,
            "base": base,
            "fixed": fixed,
            "narrowed": filters != Filters(**fixed),
            "next_url": f"{base}?{urlencode([*kept, ('cursor', found.next_cursor)])}"
            if found.next_cursor
            else None,
            **(context or {}),
        },
    )


def _sort_labels(searching: bool) -> list[tuple[str, str]]:
    return [
        (Sort.relevance.value, _("Best match") if searching else _("Popular")),
        (Sort.price_asc.value, _("Price: low to high")),
        (Sort.price_desc.value, _("Price: high to low")),
        (Sort.sales.value, _("Best selling")),
        (Sort.newest.value, _("Newest")),
        (Sort.rating.value, _("Top rated")),
    ]


@router.get("/")
async def home(
    request: Request, session: Session, user: OptionalPageUser, cursor: str | None = None
) -> Response:
    live = await feed.replica(session)
    try:
        found = browse.browse(live, filters=Filters(), cursor=cursor, limit=PAGE)
    except DomainError:  # a stale link: the first page
        found = browse.browse(live, filters=Filters(), limit=PAGE)
    roots = [c for c in await catalog.categories(session) if c.parent_id is None]
    return render(
        request,
        "catalog/home.html",
        {
            "user": user,
            "tab": "home",
            "products": found.items,
            "next_cursor": found.next_cursor,
            "categories": [] if cursor else roots,
            "shops": [] if cursor else (await catalog.open_shops(session))[:12],
        },
    )


@router.get("/c/{slug}")
async def category_page(
    request: Request, slug: str, session: Session, user: OptionalPageUser
) -> Response:
    category = await catalog.category_by_slug(session, slug=slug)
    name = category.name_zh if request.state.locale == "zh_Hans" else category.name_en
    return await listing_page(
        request, session, user, base=f"/c/{category.slug}", heading=name, category=category.id
    )


@router.get("/shops/{shop_id}")
async def shop_page(
    request: Request, shop_id: IdPath, session: Session, user: OptionalPageUser
) -> Response:
    shop = await catalog.open_shop(session, shop_id=shop_id)
    return await listing_page(
        request,
        session,
        user,
        base=f"/shops/{shop.id}",
        heading=shop.name,
        template="catalog/shop.html",
        context={
            "shop": shop,
            "following": user is not None
            and await follows.follows(session, user_id=user.id, shop_id=shop.id),
            "followers": await follows.count(session, shop_id=shop.id),
        },
        shops=frozenset({shop.id}),
    )


@router.post("/shops/{shop_id}/follow")
async def follow_shop(
    request: Request,
    shop_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Annotated[str, Form(max_length=200)],
    follow: Annotated[bool, Form()] = True,
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Follow or unfollow from the shop page (or a draw's page, which sends `next`)."""
    verify_csrf(request, csrf_token)
    shop = await catalog.open_shop(session, shop_id=shop_id)
    if follow:
        await follows.follow(session, user_id=user.id, shop_id=shop.id)
        notice = _("You follow %(shop)s.") % {"shop": shop.name}
    else:
        await follows.unfollow(session, user_id=user.id, shop_id=shop.id)
        notice = _("You no longer follow %(shop)s.") % {"shop": shop.name}
    await session.commit()
    return see_other(safe_next(next, f"/shops/{shop.id}"), notice)


@router.get("/p/{product_id}")
async def short_link(product_id: IdPath) -> Response:
    """The short product link that text messages carry."""
    return RedirectResponse(f"/products/{product_id}", status_code=301)


@router.get("/products/{product_id}")
async def product_page(
    request: Request, product_id: IdPath, session: Session, user: OptionalPageUser
) -> Response:
    product = browse.product(await feed.replica(session), product_id=product_id)
    wanted = request.query_params.get("sku")
    chosen = next((v for v in product.variants if v.sku == wanted), None)
    if wanted and chosen is None:
        raise NotFound("Variant")
    response = render(
        request,
        "catalog/product.html",
        {
            "user": user,
            "tab": "home",
            "product": product,
            "chosen": chosen or (product.variants[0] if product.variants else None),
            "social": await social_pages.product_section(
                session, product_id=product.id, merchant_id=product.merchant_id, user=user
            ),
        },
    )
    # Marketing: the view, for "viewed product" segments (signed in or with the visitor
    # cookie only; an anonymous request without it records nothing and runs no query).
    await product_views.from_page(
        request, session, product_id=product.id, merchant_id=product.merchant_id, user=user
    )
    return response


@router.get("/brands/{slug}")
async def brand_page(
    request: Request, slug: str, session: Session, user: OptionalPageUser
) -> Response:
    brand = await brands.brand_by_slug(session, slug=slug)
    following = user is not None and await brands.is_following(
        session, user_id=user.id, brand_id=brand.id
    )
    return await listing_page(
        request,
        session,
        user,
        base=f"/brands/{brand.slug}",
        heading=brand.name,
        template="catalog/brand.html",
        context={
            "brand": brand,
            "images": (await media.brand_images(session, brand_ids=[brand.id]))[brand.id],
            "media_url": media_url,
            "following": following,
        },
        brands=frozenset({brand.id}),
    )


@router.post("/brands/{slug}/follow")
async def follow_brand(
    request: Request,
    slug: str,
    session: Session,
    user: PageUser,
    csrf_token: Annotated[str, Form(max_length=200)],
    follow: Annotated[bool, Form()] = True,
) -> Response:
    verify_csrf(request, csrf_token)
    brand = await brands.brand_by_slug(session, slug=slug)
    if follow:
        await brands.follow(session, user=user, brand=brand)
        return see_other(
            f"/brands/{brand.slug}", _("You follow %(brand)s.") % {"brand": brand.name}
        )
    await brands.unfollow(session, user=user, brand=brand)
    return see_other(
        f"/brands/{brand.slug}", _("You no longer follow %(brand)s.") % {"brand": brand.name}
    )


@router.get("/media/{key}")
async def media_file(key: str) -> Response:
    """Product and brand media. Names are random and never reused, so they cache forever;
    FileResponse answers Range requests (a phone seeks in a video without downloading it)."""
    path = media.path_of(key)
    if not path.is_file():
        raise NotFound("Media")
    return FileResponse(
        path,
        media_type=media.CONTENT_TYPES[key.rsplit(".", 1)[1]],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
