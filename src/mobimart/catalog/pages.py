from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobimart.catalog import service as catalog
from mobimart.catalog.models import Shop
from mobimart.web.deps import OptionalPageUser, Session
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render

router = APIRouter()
PAGE = 20


async def _listing(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    *,
    cursor: str | None,
    shop: Shop | None = None,
) -> Response:
    params = page_params(cursor=cursor, limit=PAGE)
    rows = await catalog.published_products(
        session, before_id=params.before_id, limit=params.fetch, shop_id=shop.id if shop else None
    )
    products, next_cursor = split_page(rows, params, key=lambda p: p.id)
    return render(
        request,
        "catalog/home.html",
        {
            "user": user,
            "tab": "home",
            "products": products,
            "next_cursor": next_cursor,
            "base_path": f"/shops/{shop.id}" if shop else "/",
            "categories": [] if shop else await catalog.categories(session),
            "shops": [] if shop else await catalog.open_shops(session),
            **({"heading": shop.name} if shop else {}),
        },
    )


@router.get("/")
async def home(
    request: Request, session: Session, user: OptionalPageUser, cursor: str | None = None
) -> Response:
    return await _listing(request, session, user, cursor=cursor)


@router.get("/shops/{shop_id}")
async def shop_page(
    request: Request,
    shop_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    cursor: str | None = None,
) -> Response:
    shop = await catalog.open_shop(session, shop_id=shop_id)
    return await _listing(request, session, user, cursor=cursor, shop=shop)


@router.get("/products/{product_id}")
async def product_page(
    request: Request, product_id: IdPath, session: Session, user: OptionalPageUser
) -> Response:
    product = await catalog.published_product(session, product_id=product_id)
    shop = await session.get(Shop, product.shop_id)
    return render(
        request,
        "catalog/product.html",
        {"user": user, "tab": "home", "product": product, "shop": shop},
    )
