"""Key rotation: every Encrypted column and every private file, re-encrypted under the first key."""

from __future__ import annotations

from dataclasses import dataclass

from rich.progress import Progress
from sqlalchemy import Text, select, type_coerce, update

from mobimart import models  # noqa: F401  (every table is known)
from mobimart.db import Base, Database
from mobimart.infra.pii import Encrypted, get_vault
from mobimart.merchants.models import KycDocument
from mobimart.merchants.service import document_store

BATCH = 500


@dataclass
class RotationResult:
    key_id: str
    values: int = 0
    files: int = 0
    unchanged: int = 0


def encrypted_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Encrypted)
    ]


async def rotate_all(database: Database, progress: Progress | None = None) -> RotationResult:
    vault = get_vault()
    result = RotationResult(vault.primary_id)
    tables = Base.metadata.tables
    columns = encrypted_columns()
    task = progress.add_task("columns", total=len(columns)) if progress else None
    for table_name, column_name in columns:
        table = tables[table_name]
        column, pk = table.c[column_name], table.c["id"]
        raw = type_coerce(column, Text)  # the stored ciphertext, not the decrypted value
        last_id = 0
        while True:
            async with database.session() as session:
                rows = (
                    await session.execute(
                        select(pk, raw)
                        .where(pk > last_id, raw.is_not(None))
                        .order_by(pk)
                        .limit(BATCH)
                    )
                ).all()
                if not rows:
                    break
                for row_id, token in rows:
                    if vault.key_id_of(token) == vault.primary_id:
                        result.unchanged += 1
                        continue
                    fresh = vault.encrypt(vault.decrypt(token))
                    await session.execute(
                        update(table).where(pk == row_id).values({column: type_coerce(fresh, Text)})
                    )
                    result.values += 1
                await session.commit()
                last_id = rows[-1][0]
        if progress and task is not None:
            progress.advance(task)

    store = document_store()
    async with database.session() as session:
        keys = list(await session.scalars(select(KycDocument.storage_key)))
    for key in keys:
        if store.rotate(key):
            result.files += 1
        else:
            result.unchanged += 1
    return result
