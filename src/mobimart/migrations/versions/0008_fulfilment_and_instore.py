"""fulfilment, in-store payments, 64-bit ledger amounts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The platform's accounts (commission, the gateway's clearing account) add up every order on
# the platform: 32 bits end at ¥21,474,836.47.
_LEDGER_AMOUNTS = (
    ("ledger_accounts", "balance_minor"),
    ("ledger_entries", "amount_minor"),
    ("ledger_entries", "balance_after_minor"),
)


def upgrade() -> None:
    for table, column in _LEDGER_AMOUNTS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, type_=sa.BigInteger(), existing_nullable=False)
    # Carriers' callbacks find a parcel by carrier and tracking number.
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_shipments_carrier_tracking_number", ["carrier", "tracking_number"], unique=False
        )


def downgrade() -> None:
    for table, column in _LEDGER_AMOUNTS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index("ix_shipments_carrier_tracking_number")
