"""Marketing QR codes: make, list, change, archive, download, and their scan statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mobimart.campaigns import qr, qr_render
from mobimart.campaigns.models import QrCode
from mobimart.campaigns.qr_schemas import QrCodeIn, QrCodeOut, QrCodePatch, QrStatsOut
from mobimart.merchants import service as merchants
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import MAX_ID, IdPath

router = APIRouter(tags=["qr codes"])

Paging = Annotated[PageParams, Depends(page_params)]
Scale = Annotated[int, Query(ge=qr_render.MIN_SCALE, le=qr_render.MAX_SCALE)]
Copies = Annotated[int, Query(ge=1, le=qr_render.MAX_COPIES)]
_FILES = {
    200: {
        "description": "The code as a PNG or SVG image, or a printable A4 PDF sheet",
        "content": {media: {} for media in qr_render.MEDIA_TYPES.values()},
    }
}
_PDF = {200: {"description": "A printable A4 PDF sheet", "content": {"application/pdf": {}}}}


def printable(code: QrCode) -> qr_render.Printable:
    return qr_render.Printable(code.label, qr.url_of(code.token))


def file_response(file: qr_render.File) -> Response:
    return Response(
        file.data,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'inline; filename="{file.filename}"',
            "Cache-Control": "private, max-age=300",
        },
    )


async def download(
    codes: Sequence[QrCode],
    *,
    fmt: qr_render.Format,
    scale: int = qr_render.DEFAULT_SCALE,
    copies: int = 1,
) -> Response:
    """The codes as a file, for the API and the console alike. Drawing them takes CPU time
    (a 20-page PDF of 240 codes is about a second): it runs in a worker thread, so the other
    requests of this process are not held up meanwhile."""
    file = await run_in_threadpool(
        qr_render.download, [printable(c) for c in codes], fmt=fmt, scale=scale, copies=copies
    )
    return file_response(file)


@router.post("/merchants/{merchant_id}/qr-codes", status_code=201)
async def create_qr_code(
    merchant_id: IdPath, body: QrCodeIn, user: CurrentUser, session: Session
) -> QrCodeOut:
    """A code that encodes `url` (`{base_url}/q/<token>`). Static: a product or the shop,
    fixed. Dynamic: a draw, a page (`/…`) or an https address, or a product or the shop;
    its target can change after printing."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    merchants.require_approved(merchant)
    return QrCodeOut.of(await qr.create(session, merchant_id=merchant_id, spec=body.spec()))


@router.get("/merchants/{merchant_id}/qr-codes")
async def list_qr_codes(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Paging,
    archived: bool = False,
) -> Page[QrCodeOut]:
    """Newest first: the live codes, or the archived ones."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await qr.listed(
        session,
        merchant_id=merchant_id,
        before=page.before_id,
        limit=page.fetch,
        archived=archived,
    )
    return make_page(rows, page, QrCodeOut.of, key=lambda r: r.id)


# Before /{qr_id}: "sheet" is not an id.
@router.get(
    "/merchants/{merchant_id}/qr-codes/sheet",
    response_class=Response,
    responses=_PDF,  # type: ignore[arg-type]
)
async def qr_sheet(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    ids: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_ID)]] | None, Query(max_length=qr.SHEET_CODES)
    ] = None,
    copies: Copies = 1,
) -> Response:
    """Several codes (`ids=1&ids=2`; none: the newest 60 in use) on A4 sheets, each `copies`
    times, 12 to a page."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    codes = await qr.several(session, merchant_id=merchant_id, qr_ids=ids)
    return await download(codes, fmt="pdf", copies=copies)


@router.get("/merchants/{merchant_id}/qr-codes/{qr_id}")
async def get_qr_code(
    merchant_id: IdPath, qr_id: IdPath, user: CurrentUser, session: Session
) -> QrCodeOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return QrCodeOut.of(await qr.get(session, merchant_id=merchant_id, qr_id=qr_id))


@router.patch("/merchants/{merchant_id}/qr-codes/{qr_id}")
async def change_qr_code(
    merchant_id: IdPath, qr_id: IdPath, body: QrCodePatch, user: CurrentUser, session: Session
) -> QrCodeOut:
    """Relabel a code or change its campaign; change the target of a dynamic code only
    (409 `static_code` otherwise)."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    code = await qr.change(session, merchant_id=merchant_id, qr_id=qr_id, change=body.change())
    return QrCodeOut.of(code)


@router.post("/merchants/{merchant_id}/qr-codes/{qr_id}/archive")
async def archive_qr_code(
    merchant_id: IdPath, qr_id: IdPath, user: CurrentUser, session: Session
) -> QrCodeOut:
    """The code stops opening its target (its landing page says it has ended)."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return QrCodeOut.of(await qr.archive(session, merchant_id=merchant_id, qr_id=qr_id))


@router.get(
    "/merchants/{merchant_id}/qr-codes/{qr_id}/image",
    response_class=Response,
    responses=_FILES,  # type: ignore[arg-type]
)
async def qr_code_image(
    merchant_id: IdPath,
    qr_id: IdPath,
    user: CurrentUser,
    session: Session,
    fmt: Annotated[qr_render.Format, Query(alias="format")] = "png",
    scale: Scale = qr_render.DEFAULT_SCALE,
    copies: Copies = qr_render.PER_PAGE,
) -> Response:
    """PNG (`scale` pixels a module), SVG, or a PDF sheet of `copies` copies."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    code = await qr.get(session, merchant_id=merchant_id, qr_id=qr_id)
    return await download([code], fmt=fmt, scale=scale, copies=copies)


@router.get("/merchants/{merchant_id}/qr-codes/{qr_id}/stats")
async def qr_code_stats(
    merchant_id: IdPath,
    qr_id: IdPath,
    user: CurrentUser,
    session: Session,
    days: Annotated[int, Query(ge=1, le=qr.MAX_STATS_DAYS)] = qr.DEFAULT_STATS_DAYS,
) -> QrStatsOut:
    """Scans per UTC day and by device class over `days`, and the paid orders and revenue
    credited to the code."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return QrStatsOut.of(await qr.stats(session, merchant_id=merchant_id, qr_id=qr_id, days=days))
