"""Wi-Fi portal management: a merchant's venues and the platform's (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mobimart.campaigns import wifi
from mobimart.campaigns.models import WifiPortal
from mobimart.campaigns.wifi_schemas import WifiPortalIn, WifiPortalOut
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["wifi"])
Paging = Annotated[PageParams, Depends(page_params)]


def _out(row: WifiPortal) -> WifiPortalOut:
    path = f"/wifi/{row.token}"
    return WifiPortalOut(
        id=row.id,
        merchant_id=row.merchant_id,
        name=row.name,
        token=row.token,
        fas_key=row.fas_key,
        faspath=path,
        portal_url=get_settings().base_url.rstrip("/") + path,
        segment_id=row.segment_id,
        session_minutes=row.session_minutes,
        created_at=row.created_at,
    )


@router.post("/merchants/{merchant_id}/wifi-portals", status_code=201)
async def create_portal(
    merchant_id: IdPath, body: WifiPortalIn, user: CurrentUser, session: Session
) -> WifiPortalOut:
    """A captive portal for one of the merchant's venues, with its segment "Wi-Fi: <name>".
    Owners only: the answer holds the gateway's shared key."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return _out(await wifi.create(session, merchant_id=merchant_id, **body.model_dump()))


@router.get("/merchants/{merchant_id}/wifi-portals")
async def list_portals(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[WifiPortalOut]:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    rows = await wifi.listed(
        session, merchant_id=merchant_id, before=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _out, key=lambda r: r.id)


@router.delete("/merchants/{merchant_id}/wifi-portals/{portal_id}", status_code=204)
async def delete_portal(
    merchant_id: IdPath, portal_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await wifi.delete(session, portal_id=portal_id, merchant_id=merchant_id)
    return Response(status_code=204)


@router.post("/merchants/{merchant_id}/wifi-portals/{portal_id}/rotate-key")
async def rotate_portal_key(
    merchant_id: IdPath, portal_id: IdPath, user: CurrentUser, session: Session
) -> WifiPortalOut:
    """A new `fas_key`, if the old one leaked; the gateway's `faskey` must be updated to it,
    or the portal refuses its visitors."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await wifi.rotate_key(session, portal_id=portal_id, merchant_id=merchant_id)
    return _out(await wifi.owned(session, portal_id=portal_id, merchant_id=merchant_id))


@router.post("/admin/wifi-portals", status_code=201)
async def create_platform_portal(
    body: WifiPortalIn, admin: Admin, session: Session
) -> WifiPortalOut:
    """A portal of the platform (the mall): shows the platform's promotions."""
    return _out(await wifi.create(session, merchant_id=None, **body.model_dump()))


@router.get("/admin/wifi-portals")
async def list_platform_portals(
    admin: Admin, session: Session, page: Paging
) -> Page[WifiPortalOut]:
    rows = await wifi.listed(session, merchant_id=None, before=page.before_id, limit=page.fetch)
    return make_page(rows, page, _out, key=lambda r: r.id)


@router.delete("/admin/wifi-portals/{platform_portal_id}", status_code=204)
async def delete_platform_portal(
    platform_portal_id: IdPath, admin: Admin, session: Session
) -> Response:
    await wifi.delete(session, portal_id=platform_portal_id, merchant_id=None)
    return Response(status_code=204)


@router.post("/admin/wifi-portals/{platform_portal_id}/rotate-key")
async def rotate_platform_portal_key(
    platform_portal_id: IdPath, admin: Admin, session: Session
) -> WifiPortalOut:
    await wifi.rotate_key(session, portal_id=platform_portal_id, merchant_id=None)
    return _out(await wifi.owned(session, portal_id=platform_portal_id, merchant_id=None))
