from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from mobimart.catalog import service as catalog
from mobimart.catalog.models import Category, Product, Shop
from mobimart.catalog.schemas import CategoryOut, ProductIn, ProductOut, ProductUpdate, ShopOut
from mobimart.merchants import service as merchants
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import MAX_ID, IdPath

router = APIRouter(tags=["catalog"])


def product_out(product: Product) -> ProductOut:
    return ProductOut.model_validate(product, from_attributes=True)


def shop_out(shop: Shop) -> ShopOut:
    return ShopOut.model_validate(shop, from_attributes=True)


def category_out(category: Category) -> CategoryOut:
    return CategoryOut.model_validate(category, from_attributes=True)


@router.get("/health", tags=["meta"])
async def health(session: Session) -> dict[str, str]:
    await session.connection()
    return {"status": "ok"}


@router.get("/products")
async def list_products(
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    shop_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[ProductOut]:
    """Published products of approved merchants, newest first."""
    rows = await catalog.published_products(
        session, before_id=page.before_id, limit=page.fetch, shop_id=shop_id
    )
    return make_page(rows, page, product_out, key=lambda p: p.id)


@router.get("/products/{product_id}")
async def get_product(product_id: IdPath, session: Session) -> ProductOut:
    return product_out(await catalog.published_product(session, product_id=product_id))


@router.get("/shops")
async def list_shops(session: Session) -> list[ShopOut]:
    return [shop_out(s) for s in await catalog.open_shops(session)]


@router.get("/categories")
async def list_categories(session: Session) -> list[CategoryOut]:
    return [category_out(c) for c in await catalog.categories(session)]


@router.post("/merchants/{merchant_id}/products", status_code=201)
async def create_product(
    merchant_id: IdPath, body: ProductIn, user: CurrentUser, session: Session
) -> ProductOut:
    """Add a product to the merchant's shop; the merchant must be approved."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.create_product(session, merchant=merchant, **body.model_dump())
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
