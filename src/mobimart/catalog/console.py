"""Product management in the merchant console: list, create, edit, variants, media, publish.
The same services as the API; a broken rule shows its message on the form, which keeps what
was typed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog import brands, media
from mobimart.catalog import service as catalog
from mobimart.catalog.domain import VariantSpec
from mobimart.catalog.importing import parse_price
from mobimart.catalog.view import media_url
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean, clean_name
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Text = Annotated[str, Form(max_length=200)]
LongText = Annotated[str, Form(max_length=5000)]
Csrf = Annotated[str, Form(max_length=200)]


def parse_variants(text: str) -> list[VariantSpec]:
    """One variant per line: `SKU | colour=red, size=M | 25.00 | 3` (options may be empty)."""
    specs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 4:
            raise DomainError(
                "invalid_variants",
                _("Line %(n)s: write SKU | options | price | stock.") % {"n": n},
                422,
            )
        sku, options_text, price, stock = cells
        options = {}
        for pair in filter(None, (p.strip() for p in options_text.split(","))):
            name, sep, value = pair.partition("=")
            if not sep:
                raise DomainError(
                    "invalid_options",
                    _("Line %(n)s: options look like colour=red.") % {"n": n},
                    422,
                )
            options[name.strip()] = value.strip()
        if not stock.isdigit():
            raise DomainError(
                "invalid_stock", _("Line %(n)s: stock is a whole number.") % {"n": n}, 422
            )
        specs.append(VariantSpec(sku, parse_price(price), int(stock), options))
    return specs


def variants_text(variants: list[Any]) -> str:
    return "\n".join(
        f"{v.sku} | {', '.join(f'{k}={val}' for k, val in v.options.items())} | "
        f"{v.price_minor // 100}.{v.price_minor % 100:02d} | {v.stock}"
        for v in variants
    )


async def _choices(session: AsyncSession, merchant_id: int) -> dict[str, Any]:
    return {
        "categories": await catalog.categories(session),
        "brands": await brands.usable_by(session, merchant_id=merchant_id),
    }


def _notice(code: str) -> str:
    """Notices travel in the redirect as codes: a link cannot put words on our page."""
    return {
        "saved": _("Product saved."),
        "variants": _("Variants saved."),
        "uploaded": _("Uploaded."),
        "removed": _("Removed."),
        "published": _("Published."),
        "archived": _("Archived."),
    }.get(code, "")


@router.get("/console/{merchant_id}/products")
async def products_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: str | None = None,
    notice: str = "",
) -> Response:
    return await _products_page(
        request, session, user, merchant_id, cursor=cursor, notice=_notice(notice)
    )


async def _products_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    cursor: str | None = None,
    notice: str = "",
    form: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    params = page_params(cursor=cursor, limit=20)
    rows = await catalog.merchant_products(
        session, merchant_id=merchant.id, before_id=params.before_id, limit=params.fetch
    )
    products, next_cursor = split_page(rows, params, key=lambda p: p.id)
    return render(
        request,
        "catalog/console_products.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "products": products,
            "next_cursor": next_cursor,
            "notice": notice,
            "form": form or {},
            "error": error,
            **await _choices(session, merchant.id),
        },
        status=status,
    )


def _optional_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def _tags(text: str) -> list[str]:
    return [t for t in (part.strip() for part in text.replace("，", ",").split(",")) if t]


@router.post("/console/{merchant_id}/products")
async def create_product(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: Text,
    price: Text,
    stock: Text = "0",
    category_id: Text = "",
    brand_id: Text = "",
    tags: Text = "",
    description: LongText = "",
    publish: Annotated[bool, Form()] = False,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    form = {"name": name, "price": price, "stock": stock, "tags": tags, "description": description}
    try:
        if not stock.strip().isdigit():
            raise DomainError("invalid_stock", _("Stock is a whole number."), 422)
        product = await catalog.create_product(
            session,
            merchant=merchant,
            name=clean_name(name, 200),
            price_minor=parse_price(price),
            stock=int(stock),
            category_id=_optional_id(category_id),
            brand_id=_optional_id(brand_id),
            tags=_tags(tags),
            description=clean(description, 5000),
            publish=publish,
        )
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _products_page(
            request,
            session,
            user,
            merchant_id,
            form=form,
            error=message_of(exc),
            status=exc.status,
        )
    return see_other(f"/console/{merchant_id}/products/{product.id}", "saved")


async def _edit_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    product_id: int,
    *,
    notice: str = "",
    error: str = "",
    variants_form: str | None = None,
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    product = await catalog.merchant_product(
        session, merchant_id=merchant.id, product_id=product_id
    )
    variants = await catalog.variants_of(session, product_id=product.id)
    return render(
        request,
        "catalog/console_product.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "product": product,
            "variants_form": variants_text(variants) if variants_form is None else variants_form,
            "media": await media.product_media(session, product_id=product.id),
            "media_url": media_url,
            "notice": notice,
            "error": error,
            **await _choices(session, merchant.id),
        },
        status=status,
    )


@router.get("/console/{merchant_id}/products/{product_id}")
async def edit_page(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    notice: str = "",
) -> Response:
    return await _edit_page(request, session, user, merchant_id, product_id, notice=_notice(notice))


Act = Callable[[Merchant], Awaitable[object]]


async def _act(
    request: Request,
    session: AsyncSession,
    user: User,
    ids: tuple[int, int],
    csrf_token: str,
    action: Act,
    notice: str,
    variants_form: str | None = None,
) -> Response:
    """Check the form and the caller's membership, run one change, then show the product
    again: with the change, or with the broken rule's message and what was typed."""
    merchant_id, product_id = ids
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        await action(merchant)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _edit_page(
            request,
            session,
            user,
            merchant_id,
            product_id,
            error=message_of(exc),
            variants_form=variants_form,
            status=exc.status,
        )
    return see_other(f"/console/{merchant_id}/products/{product_id}", notice)


@router.post("/console/{merchant_id}/products/{product_id}")
async def update_product(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: Text,
    category_id: Text = "",
    brand_id: Text = "",
    tags: Text = "",
    description: LongText = "",
) -> Response:
    changes = {
        "name": clean_name(name, 200),
        "category_id": _optional_id(category_id),
        "brand_id": _optional_id(brand_id),
        "tags": _tags(tags),
        "description": clean(description, 5000),
    }

    def act(m: Merchant) -> Awaitable[object]:
        return catalog.update_product(session, merchant=m, product_id=product_id, changes=changes)

    ids = (merchant_id, product_id)
    return await _act(request, session, user, ids, csrf_token, act, "saved")


@router.post("/console/{merchant_id}/products/{product_id}/variants")
async def set_variants(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    variants: LongText,
) -> Response:
    async def act(m: Merchant) -> object:
        specs = parse_variants(variants)
        return await catalog.set_variants(
            session, merchant=m, product_id=product_id, variants=specs
        )

    ids = (merchant_id, product_id)
    return await _act(
        request, session, user, ids, csrf_token, act, "variants", variants_form=variants
    )


@router.post("/console/{merchant_id}/products/{product_id}/media")
async def upload_media(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    file: Annotated[UploadFile, File()],
) -> Response:
    data = await file.read(get_settings().video_max_bytes + 1)

    def act(m: Merchant) -> Awaitable[object]:
        return media.add_product_media(session, merchant=m, product_id=product_id, data=data)

    ids = (merchant_id, product_id)
    return await _act(request, session, user, ids, csrf_token, act, "uploaded")


@router.post("/console/{merchant_id}/products/{product_id}/media/{media_id}/delete")
async def delete_media(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    media_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    def act(m: Merchant) -> Awaitable[object]:
        return media.delete_product_media(
            session, merchant=m, product_id=product_id, media_id=media_id
        )

    ids = (merchant_id, product_id)
    return await _act(request, session, user, ids, csrf_token, act, "removed")


@router.post("/console/{merchant_id}/products/{product_id}/status")
async def change_status(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    action: Annotated[Literal["publish", "archive"], Form()],
) -> Response:
    def act(m: Merchant) -> Awaitable[object]:
        return catalog.set_status(session, merchant=m, product_id=product_id, action=action)

    notice = "published" if action == "publish" else "archived"
    return await _act(request, session, user, (merchant_id, product_id), csrf_token, act, notice)
