from typing import Any

import pytest
from sqlalchemy import func, select

from mobimart.catalog.importing import import_products, lines_of, parse_price
from mobimart.catalog.models import Product, ProductChange
from mobimart.db import Database
from mobimart.errors import DomainError
from mobimart.search import service as search
from tests import factories

CSV = """\ufeffname,price,stock,category,description
Copper Pipe 10 ft.,12.50,4,,Type L
,3.00,1,,no name
Brass Elbow,abc,1,,
Wood Screws,1.999,1,,
Hose Clamp,2,many,,
PVC Cement,7,2,plumbing,
Teflon Tape,0.99,10,,
"""


def test_prices_are_minor_units() -> None:
    assert parse_price("12.5") == 1250
    assert parse_price(" 3 ") == 300
    for bad in ("1.999", "abc", ""):
        with pytest.raises(DomainError):
            parse_price(bad)


async def test_bad_rows_are_reported_and_good_rows_imported(db: Database, make_user: Any) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    merchant = await factories.merchant(db, owner, admin=admin)
    seen: list[int] = []
    async with db.session() as s:
        report = await import_products(
            s, merchant=merchant, lines=lines_of(CSV.encode()), publish=True, progress=seen.append
        )
    assert report.imported == 2
    assert [line for line, _ in report.errors] == [3, 4, 5, 6, 7]
    reasons = dict(report.errors)
    assert "name" in reasons[3]
    assert "not a number" in reasons[4]
    assert "two decimals" in reasons[5]
    assert "whole number" in reasons[6]
    assert "plumbing" in reasons[7]
    assert sum(seen) == 7  # every row advanced the progress bar
    async with db.session() as s:
        names = set(await s.scalars(select(Product.name)))
        assert names == {"Copper Pipe 10 ft.", "Teflon Tape"}
        assert await s.scalar(select(func.count()).select_from(ProductChange)) == 2
        assert [p.name for p in await search.search(s, query="copper pipe")] == [
            "Copper Pipe 10 ft."
        ]


async def test_import_needs_an_approved_merchant_and_a_header(db: Database, make_user: Any) -> None:
    owner = await make_user()
    pending = await factories.merchant(db, owner, status="pending")
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await import_products(s, merchant=pending, lines=lines_of(CSV.encode()), publish=True)
        assert err.value.code == "merchant_not_approved"
    admin = await make_user(admin=True)
    approved = await factories.merchant(db, await make_user(), admin=admin, n=2)
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await import_products(
                s, merchant=approved, lines=lines_of(b"title,cost\nx,1\n"), publish=True
            )
        assert err.value.code == "bad_csv"
