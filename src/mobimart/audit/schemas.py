from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    id: int
    actor_id: int | None
    action: str
    subject_type: str
    subject_id: int
    merchant_id: int | None
    reason: str
    data: dict[str, Any]
    created_at: dt.datetime
