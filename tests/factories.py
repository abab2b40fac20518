"""Builders for test data through the real services."""

from __future__ import annotations

import itertools
from typing import Any

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts.models import User
from mobimart.db import Database
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import Decision, DocumentKind
from mobimart.merchants.models import Merchant

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def licence(n: int = 1) -> str:
    first17 = f"91310000MA1FL{n:04d}"
    return first17 + accounts_domain.uscc_check_char(first17)


def resident_id(n: int = 1) -> str:
    first17 = f"11010519800101{n % 1000:03d}"
    return first17 + accounts_domain.resident_id_check_char(first17)


def application(n: int = 1, contact: str = "+8613700000001") -> merchants.Application:
    return merchants.Application(
        name=f"Test shop {n}",
        licence_number=licence(n),
        legal_rep_name="李雷",
        legal_rep_id_number=resident_id(n),
        contact_phone=contact,
    )


async def merchant(
    db: Database, owner: User, *, admin: User | None = None, status: str = "approved", n: int = 1
) -> Merchant:
    """A merchant owned by `owner`, taken as far as `status` (draft, pending or approved)."""
    async with db.session() as s:
        owner = await s.merge(owner)
        m = await merchants.apply(s, user=owner, application=application(n))
        if status == "draft":
            return m
        await merchants.add_document(
            s,
            merchant=m,
            user=owner,
            kind=DocumentKind.business_licence,
            filename="l.png",
            data=PNG,
        )
        await merchants.submit(s, merchant=m, user=owner)
        if status == "pending":
            return m
        assert admin is not None
        admin = await s.merge(admin)
        return await merchants.decide(
            s, merchant_id=m.id, admin=admin, decision=Decision.approve, reason=""
        )


async def add_staff(db: Database, merchant: Merchant, owner: User, person: User) -> int:
    """Invite `person` and have them accept, as the console does; returns the member id."""
    async with db.session() as s:
        owner, person = await s.merge(owner), await s.merge(person)
        invitation = await merchants.invite_staff(
            s, merchant=merchant, actor=owner, phone=person.phone
        )
        await merchants.answer_invitation(s, user=person, invitation_id=invitation.id, accept=True)
        members = await merchants.staff(s, merchant_id=merchant.id)
    return next(m.id for m, u in members if u.id == person.id)


async def credit(db: Database, user: User, amount_minor: int, reference: str) -> None:
    """Money in a wallet, posted as a gateway top-up would post it."""
    from mobimart.payments import domain, ledger

    async with db.session() as s:
        await ledger.post(
            s,
            kind="top_up",
            reference=reference,
            currency="CNY",
            legs=domain.top_up(amount_minor, user_id=user.id),
        )
        await s.commit()


_refs = itertools.count(1)


async def buy(
    db: Database,
    buyer: User,
    products: list[Any],
    *,
    owner: User,
    merchant_id: int,
    until: str = "delivered",
) -> list[int]:
    """The buyer's order of one of each product, paid from the wallet and taken as far as
    `until` (paid, shipped or delivered) by the shop's real steps; its line ids."""
    from sqlalchemy import select

    from mobimart.catalog import service as catalog
    from mobimart.checkout import service as checkout
    from mobimart.checkout.models import OrderLine
    from mobimart.logistics import service as logistics
    from mobimart.logistics.domain import TrackingStatus
    from mobimart.payments import service as payments

    await credit(db, buyer, 100_000, f"orders:{next(_refs)}")
    async with db.session() as s:
        buyer = await s.merge(buyer)
        address = await checkout.add_address(
            s,
            user=buyer,
            spec=checkout.AddressSpec("Han", "+8613912345678", "Shanghai", "1 Road"),
        )
        cart = await checkout.cart_of(s, user_id=buyer.id)
        for product in products:
            variant = (await catalog.variants_of(s, product_id=product.id))[0]
            await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        (order,) = await checkout.place(s, user=buyer, address_id=address.id)
        await payments.pay(s, payer=buyer, order_ids=[order.id], method="wallet")
    async with db.session() as s:  # fresh: the payment moved the order by statements
        if until != "paid":
            actor = await s.merge(owner)
            await logistics.ship(
                s,
                merchant_id=merchant_id,
                order_id=order.id,
                carrier="sf",
                tracking_number=f"SF{order.id:010d}",
                actor=actor,
            )
            if until == "delivered":
                await logistics.add_event(
                    s,
                    merchant_id=merchant_id,
                    order_id=order.id,
                    actor=actor,
                    event=logistics.EventSpec(status=TrackingStatus.delivered),
                )
        lines = await s.scalars(
            select(OrderLine.id).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
        return list(lines)


# --- Lucky draws ---------------------------------------------------------------------------


async def draw_coupon(
    db: Database, merchant_id: int, code: str = "LUCKY5", value: int = 500, *, ended: bool = False
) -> int:
    """A coupon of the merchant's (¥5 off by default) that prizes hand out copies of; `ended`:
    a template only (what a draw's coupon prize must be), its own code redeems nothing."""
    from mobimart.promotions import service as promotions
    from mobimart.promotions.domain import Kind, Scope

    async with db.session() as s:
        row = await promotions.create(
            s,
            merchant_id=merchant_id,
            spec=promotions.Spec("Lucky five", Kind.fixed, Scope.order, value=value, code=code),
        )
        if ended:
            await promotions.end(s, promotion_id=row.id, merchant_id=merchant_id)
    return row.id


async def draw(
    db: Database,
    merchant_id: int,
    prizes: list[Any],
    *,
    rules: dict[str, Any] | None = None,
    hours: float = 24,
) -> int:
    """An open draw of the merchant's with these `draws.PrizeSpec`s, closing in `hours`."""
    import datetime as dt

    from mobimart.campaigns import draws

    now = dt.datetime.now(dt.UTC)
    async with db.session() as s:
        made = await draws.create(
            s,
            merchant_id=merchant_id,
            spec=draws.DrawSpec(
                name="Lucky draw",
                opens_at=now - dt.timedelta(minutes=1),
                closes_at=now + dt.timedelta(hours=hours),
                prizes=prizes,
                rules=rules or {},
            ),
        )
    return made.id


# --- Campaign authoring, short links and reports ---------------------------------------------

_orders = itertools.count(1)


async def shop_id_of(db: Database, merchant_id: int) -> int:
    """The merchant's shop (made with its first product when it has none yet)."""
    from sqlalchemy import select

    from mobimart.catalog import service as catalog
    from mobimart.catalog.models import Shop

    async with db.session() as s:
        found = await s.scalar(select(Shop.id).where(Shop.merchant_id == merchant_id))
        if found is not None:
            return found
        m = await s.get(Merchant, merchant_id)
        assert m is not None
        product = await catalog.create_product(s, merchant=m, name="Tea", price_minor=100)
        return product.shop_id


async def paid_order(db: Database, buyer_id: int, merchant_id: int, total_minor: int) -> int:
    """A paid order row written straight into the table: no payment, no attribution run
    (tests of reports write the attribution they want themselves)."""
    import datetime as dt

    from mobimart.checkout.models import Order

    shop_id = await shop_id_of(db, merchant_id)
    now = dt.datetime.now(dt.UTC)
    n = next(_orders)
    async with db.session() as s:
        order = Order(
            number=f"T{n:09d}",
            checkout_ref=f"ref{n}",
            user_id=buyer_id,
            merchant_id=merchant_id,
            shop_id=shop_id,
            status="paid",
            currency="CNY",
            subtotal_minor=total_minor,
            discount_minor=0,
            shipping_minor=0,
            shipping_discount_minor=0,
            total_minor=total_minor,
            expires_at=now,
            paid_at=now,
        )
        s.add(order)
        await s.commit()
        return order.id


async def sms_campaign(
    db: Database, merchant_id: int | None, *, link_url: str | None = "/shops/1", **kw: Any
) -> int:
    """A campaign row as a send leaves it (status sending, 5 per SMS part)."""
    from mobimart.campaigns.models import Campaign

    async with db.session() as s:
        campaign = Campaign(
            merchant_id=merchant_id,
            name=kw.pop("name", "Sale"),
            channel=kw.pop("channel", "sms"),
            template="{name}: {link} Reply STOP to opt out",
            link_url=link_url,
            status=kw.pop("status", "sending"),
            cost_per_part_minor=kw.pop("cost_per_part_minor", 5),
            **kw,
        )
        s.add(campaign)
        await s.commit()
        return campaign.id


async def campaign_message(db: Database, campaign_id: int, user_id: int, **kw: Any) -> int:
    """One recipient's message row, with whatever status and timestamps the test sets."""
    from mobimart.campaigns.models import CampaignMessage

    async with db.session() as s:
        message = CampaignMessage(campaign_id=campaign_id, user_id=user_id, **kw)
        s.add(message)
        await s.commit()
        return message.id


# --- Web Push and automations --------------------------------------------------------------------


async def automation(db: Database, merchant_id: int | None, **kw: Any) -> int:
    """A flow of the merchant's: by default a QR scan gives 10 points, once per person."""
    from mobimart.campaigns import automations

    spec = automations.Spec(
        name=kw.pop("name", "Flow"),
        trigger=kw.pop("trigger", "qr_scan"),
        action=kw.pop("action", "points"),
        action_config=kw.pop("action_config", {"points": 10}),
        **kw,
    )
    async with db.session() as s:
        return (await automations.create(s, merchant_id=merchant_id, spec=spec)).id


def push_subscription_json(endpoint: str) -> dict[str, Any]:
    """A browser's subscription (PushSubscription.toJSON()) with real-looking keys: the
    P-256 generator point is a valid public key; nobody can decrypt pushes sent to it."""
    import base64

    point = bytes.fromhex(
        "04"
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    )
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).decode().rstrip("="),
            "auth": base64.urlsafe_b64encode(b"matrix-auth-0001").decode().rstrip("="),
        },
    }
