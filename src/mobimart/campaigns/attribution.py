"""Last-touch attribution of paid orders to campaigns, QR codes and other sources."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.checkout.models import Order


async def credit(session: AsyncSession, *, order: Order) -> None:
    """Credit the order to the person's last marketing touch in the attribution window."""
    # Placeholder until attribution lands (issue 6, in progress).
