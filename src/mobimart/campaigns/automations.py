"""Automations: trigger -> wait -> condition -> action."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns.models import MarketingEvent


async def on_event(session: AsyncSession, *, event: MarketingEvent) -> None:
    """Start a run of every active flow this event triggers for its person."""
    # Placeholder until automations land (issue 6, in progress).
