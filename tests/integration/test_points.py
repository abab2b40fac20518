"""Points are awarded once per key and add up per person and shop."""

from typing import Any

from mobimart.db import Database
from mobimart.engagement import points
from tests import factories


async def test_an_award_happens_once_per_key(db: Database, make_user: Any) -> None:
    owner, buyer = await make_user(), await make_user()
    shop = await factories.merchant(db, owner, admin=await make_user(admin=True))
    async with db.session() as s:
        assert await points.award(
            s, user_id=buyer.id, merchant_id=shop.id, delta=50, reason="draw", key="draw-entry:1"
        )
        assert not await points.award(
            s, user_id=buyer.id, merchant_id=shop.id, delta=50, reason="draw", key="draw-entry:1"
        )
        assert await points.award(
            s, user_id=buyer.id, merchant_id=None, delta=-20, reason="spent", key="spend:1"
        )
        await s.commit()
        assert await points.balance(s, user_id=buyer.id) == 30
        assert await points.balance(s, user_id=buyer.id, merchant_id=shop.id) == 50
        assert await points.balance(s, user_id=owner.id) == 0
