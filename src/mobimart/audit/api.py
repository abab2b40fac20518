from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from mobimart.audit import service as audit
from mobimart.audit.models import AuditEntry
from mobimart.audit.schemas import AuditEntryOut
from mobimart.web.deps import Admin, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import MAX_ID

router = APIRouter(tags=["audit"])


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut.model_validate(entry, from_attributes=True)


@router.get("/admin/audit")
async def list_entries(
    admin: Admin,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    merchant_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[AuditEntryOut]:
    """The append-only log of decisions, newest first."""
    rows = await audit.list_entries(
        session, merchant_id=merchant_id, before_id=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, entry_out, key=lambda e: e.id)
