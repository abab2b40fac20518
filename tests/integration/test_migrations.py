"""Migrations go down and up again with data in the tables."""

from typing import Any

import pytest
from sqlalchemy import text

from mobimart.db import Database
from mobimart.migrate import alembic_config
from tests.conftest import call_in_thread


@pytest.mark.parametrize("target", ["0001"])
async def test_downgrade_and_upgrade_with_data(
    db: Database, database_url: str, target: str
) -> None:
    from alembic import command

    async with db.session() as s:
        await s.execute(
            text(
                "INSERT INTO otp_codes (phone_hash, code_digest, attempts, created_at, expires_at)"
                " VALUES ('h', 'd', 0, '2026-01-01 00:00:00', '2026-01-01 00:05:00')"
            )
        )
        await s.commit()
    await db.dispose()
    config = alembic_config(database_url)
    call_in_thread(lambda: command.downgrade(config, target))
    call_in_thread(lambda: command.upgrade(config, "head"))
    async with db.session() as s:
        assert await s.scalar(text("SELECT count(*) FROM otp_codes")) == 1
        assert await s.scalar(text("SELECT count(*) FROM rate_counters")) == 0


async def test_products_from_before_variants_get_their_one_variant(
    db: Database, database_url: str, make_user: Any
) -> None:
    from alembic import command

    from mobimart.catalog import service as catalog
    from tests import factories

    owner = await make_user()
    merchant = await factories.merchant(db, owner, admin=await make_user(admin=True))
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name="Old Teapot", price_minor=4200, stock=3
        )
    await db.dispose()
    config = alembic_config(database_url)
    call_in_thread(lambda: command.downgrade(config, "0004"))
    call_in_thread(lambda: command.upgrade(config, "head"))
    async with db.session() as s:
        row = (
            await s.execute(
                text("SELECT sku, price_minor, stock FROM variants WHERE product_id = :p"),
                {"p": product.id},
            )
        ).one()
    assert tuple(row) == (f"P{product.id}", 4200, 3)


async def test_migrations_build_what_the_models_describe(db: Database) -> None:
    """Autogenerate finds nothing to do: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import mobimart.models  # noqa: F401  (every table in the metadata)
    from mobimart.db import Base

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as connection:
        found = await connection.run_sync(differences)
    assert found == []
