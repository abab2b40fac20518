from __future__ import annotations

from pydantic import BaseModel

from mobimart.catalog.schemas import ProductOut


class SearchResults(BaseModel):
    query: str
    items: list[ProductOut]
