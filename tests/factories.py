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
