from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile

from mobimart.campaigns import product_views
from mobimart.catalog import browse, feed, follows, media
from mobimart.catalog import service as catalog
from mobimart.catalog.browse import Names
from mobimart.catalog.listing import Facets
from mobimart.catalog.models import Category, Media, Product, Shop, Variant
from mobimart.catalog.schemas import (
    BrandCount,
    BrowseQuery,
    CategoryCount,
    CategoryIn,
    CategoryOut,
    FacetsOut,
    FollowOut,
    ListingMeta,
    MediaItemOut,
    NamedCount,
    OptionFacet,
    PriceRange,
    ProductCard,
    ProductDetail,
    ProductIn,
    ProductListing,
    ProductOut,
    ProductUpdate,
    RatingCount,
    ShopOut,
    ValueCount,
    VariantOut,
    VariantsIn,
)
from mobimart.catalog.view import media_url
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.text import clean_name
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["catalog"])


def product_out(product: Product) -> ProductOut:
    return ProductOut.model_validate(product, from_attributes=True)


def variant_out(variant: Variant) -> VariantOut:
    return VariantOut.model_validate(variant, from_attributes=True)


def shop_out(shop: Shop) -> ShopOut:
    return ShopOut.model_validate(shop, from_attributes=True)


def category_out(category: Category) -> CategoryOut:
    return CategoryOut.model_validate(category, from_attributes=True)


@router.get("/health", tags=["meta"])
async def health(session: Session) -> dict[str, str]:
    await session.connection()
    return {"status": "ok"}


def facets_out(facets: Facets, names: Names) -> FacetsOut:
    return FacetsOut(
        categories=[
            CategoryCount(**vars(names.categories[c]), count=n) for c, n in facets.categories
        ],
        brands=[
            BrandCount(id=b, name=names.brands[b][0], slug=names.brands[b][1], count=n)
            for b, n in facets.brands
        ],
        shops=[NamedCount(id=s, name=names.shops[s], count=n) for s, n in facets.shops],
        options=[
            OptionFacet(name=name, values=[ValueCount(value=v, count=n) for v, n in values])
            for name, values in facets.options.items()
        ],
        prices=[PriceRange(min=b.low, max=b.high, count=b.count) for b in facets.prices],
        ratings=[RatingCount(stars=s, count=n) for s, n in facets.ratings],
        in_stock=facets.in_stock,
    )


def listing_json(found: browse.Browse, cards: dict[int, bytes]) -> bytes:
    """A ProductListing document. Cards are rendered once per product version and reused:
    listings are the busiest requests, and their cards rarely change."""
    rendered = []
    for view in found.items:
        card = cards.get(view.id)
        if card is None:
            card = cards[view.id] = ProductCard.of(view).model_dump_json().encode()
        rendered.append(card)
    meta = ListingMeta(
        total=found.total,
        next_cursor=found.next_cursor,
        query=found.query,
        facets=facets_out(found.result.facets, found.names),
    ).model_dump_json()
    return b'{"items":[' + b",".join(rendered) + b"]," + meta[1:].encode()


@router.get("/products", response_model=ProductListing)
async def list_products(request: Request, params: Annotated[BrowseQuery, Query()]) -> Response:
    """Published products of approved merchants: browse a category, a shop or a brand, or
    search, with filters and facet counts. Filters of one kind (several brands) match any;
    different kinds must all match. Relevance is search rank for a query, and best-selling
    and best-rated first otherwise."""
    # The busiest request: served from this process's replica, with no database session
    # unless the change feed is due, and its rendering kept until the catalogue changes.
    live = await feed.current(request.app.state.db)
    shelf = browse.catalogue(live)

    def render() -> bytes:
        found = browse.browse(
            live,
            filters=params.filters(),
            sort=params.sort,
            cursor=params.cursor,
            limit=params.limit,
            query=clean_name(params.q, 200),
        )
        return listing_json(found, shelf.cards)

    body = shelf.rendered("list?" + request.url.query, render)
    return Response(body, media_type="application/json")


@router.get("/products/{product_id}", response_model=ProductDetail)
async def get_product(request: Request, product_id: IdPath) -> Response:
    live = await feed.current(request.app.state.db)
    body = browse.catalogue(live).rendered(
        f"product/{product_id}",
        lambda: (
            ProductDetail.of(browse.product(live, product_id=product_id)).model_dump_json().encode()
        ),
    )
    # Marketing: the view, for "viewed product" segments (a bearer token or the visitor
    # cookie only; an anonymous request without either opens no database session).
    await product_views.from_api(
        request,
        product_id=product_id,
        merchant_id=browse.product(live, product_id=product_id).merchant_id,
    )
    return Response(body, media_type="application/json")


@router.get("/shops")
async def list_shops(session: Session) -> list[ShopOut]:
    return [shop_out(s) for s in await catalog.open_shops(session)]


@router.put("/shops/{shop_id}/follow")
async def follow_shop(shop_id: IdPath, user: CurrentUser, session: Session) -> FollowOut:
    """Follow a shop (again: no change); some lucky draws are for followers only."""
    shop = await catalog.open_shop(session, shop_id=shop_id)
    await follows.follow(session, user_id=user.id, shop_id=shop.id)
    await session.commit()
    return FollowOut(following=True, follower_count=await follows.count(session, shop_id=shop.id))


@router.delete("/shops/{shop_id}/follow")
async def unfollow_shop(shop_id: IdPath, user: CurrentUser, session: Session) -> FollowOut:
    shop = await catalog.open_shop(session, shop_id=shop_id)
    await follows.unfollow(session, user_id=user.id, shop_id=shop.id)
    await session.commit()
    return FollowOut(following=False, follower_count=await follows.count(session, shop_id=shop.id))


@router.get("/categories")
async def list_categories(session: Session) -> list[CategoryOut]:
    return [category_out(c) for c in await catalog.categories(session)]


@router.post("/merchants/{merchant_id}/products", status_code=201)
async def create_product(
    merchant_id: IdPath, body: ProductIn, user: CurrentUser, session: Session
) -> ProductOut:
    """Add a product to the merchant's shop; the merchant must be approved."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    fields = body.model_dump(exclude={"variants"})
    variants = [v.spec() for v in body.variants] if body.variants is not None else None
    product = await catalog.create_product(session, merchant=merchant, variants=variants, **fields)
    return product_out(product)


@router.get("/merchants/{merchant_id}/products")
async def merchant_products(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ProductOut]:
    """All of the merchant's products, drafts included."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await catalog.merchant_products(
        session, merchant_id=merchant_id, before_id=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, product_out, key=lambda p: p.id)


@router.get("/merchants/{merchant_id}/products/{product_id}")
async def merchant_product(
    merchant_id: IdPath, product_id: IdPath, user: CurrentUser, session: Session
) -> ProductOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return product_out(
        await catalog.merchant_product(session, merchant_id=merchant_id, product_id=product_id)
    )


@router.patch("/merchants/{merchant_id}/products/{product_id}")
async def update_product(
    merchant_id: IdPath,
    product_id: IdPath,
    body: ProductUpdate,
    user: CurrentUser,
    session: Session,
) -> ProductOut:
    """Change name, description, price, stock or category; search sees it within a second."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.update_product(
        session,
        merchant=merchant,
        product_id=product_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return product_out(product)


@router.get("/merchants/{merchant_id}/products/{product_id}/variants")
async def product_variants(
    merchant_id: IdPath, product_id: IdPath, user: CurrentUser, session: Session
) -> list[VariantOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.merchant_product(
        session, merchant_id=merchant_id, product_id=product_id
    )
    return [variant_out(v) for v in await catalog.variants_of(session, product_id=product.id)]


@router.put("/merchants/{merchant_id}/products/{product_id}/variants")
async def set_variants(
    merchant_id: IdPath,
    product_id: IdPath,
    body: VariantsIn,
    user: CurrentUser,
    session: Session,
) -> list[VariantOut]:
    """Replace the variants, matched by SKU: a kept SKU keeps its variant id, a new SKU is
    added, a SKU left out is removed. The product shows the lowest price and the total stock."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    variants = await catalog.set_variants(
        session,
        merchant=merchant,
        product_id=product_id,
        variants=[v.spec() for v in body.variants],
    )
    return [variant_out(v) for v in variants]


def media_out(item: Media) -> MediaItemOut:
    return MediaItemOut(
        id=item.id,
        kind=item.kind,
        url=media_url(item),
        content_type=item.content_type,
        size=item.size,
    )


@router.get("/merchants/{merchant_id}/products/{product_id}/media")
async def list_product_media(
    merchant_id: IdPath, product_id: IdPath, user: CurrentUser, session: Session
) -> list[MediaItemOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.merchant_product(
        session, merchant_id=merchant_id, product_id=product_id
    )
    return [media_out(m) for m in await media.product_media(session, product_id=product.id)]


@router.post("/merchants/{merchant_id}/products/{product_id}/media", status_code=201)
async def add_product_media(
    merchant_id: IdPath,
    product_id: IdPath,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP up to 5 MB; MP4 or WebM")],
    user: CurrentUser,
    session: Session,
) -> MediaItemOut:
    """Add an image or a video to the product's gallery (at most nine), in upload order."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    data = await file.read(get_settings().video_max_bytes + 1)
    item = await media.add_product_media(
        session, merchant=merchant, product_id=product_id, data=data
    )
    return media_out(item)


@router.delete("/merchants/{merchant_id}/products/{product_id}/media/{media_id}", status_code=204)
async def delete_product_media(
    merchant_id: IdPath, product_id: IdPath, media_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    await media.delete_product_media(
        session, merchant=merchant, product_id=product_id, media_id=media_id
    )
    return Response(status_code=204)


@router.post("/admin/categories", status_code=201)
async def create_category(body: CategoryIn, admin: Admin, session: Session) -> CategoryOut:
    """Add a category, under `parent_id` for a sub-category (four levels at most)."""
    return category_out(await catalog.create_category(session, **body.model_dump()))


# Last: its {action} segment would otherwise take .../media and .../variants.
@router.post("/merchants/{merchant_id}/products/{product_id}/{action}")
async def change_status(
    merchant_id: IdPath,
    product_id: IdPath,
    action: Literal["publish", "archive"],
    user: CurrentUser,
    session: Session,
) -> ProductOut:
    """Publish (approved merchants) or archive a product."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.set_status(
        session, merchant=merchant, product_id=product_id, action=action
    )
    return product_out(product)
