"""Demo data through the real services: an admin, a consumer, three approved merchants with shops,
240 products (a catalogue derived from UCI Online Retail, CC BY 4.0: see NOTICE.txt), a
starter list of blocked words, and one shop's marketing (a store, a geofence with an offer, a
segment, a lucky draw and its QR code)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import draws, places, qr, segments
from mobimart.catalog import brands, media
from mobimart.catalog import service as catalog
from mobimart.catalog.domain import VariantSpec
from mobimart.catalog.models import Category
from mobimart.db import Database
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import Decision, DocumentKind
from mobimart.moderation import wordlist
from mobimart.payments import domain as payments_domain
from mobimart.payments import ledger
from mobimart.promotions import service as promotions
from mobimart.promotions.domain import Kind, Scope
from mobimart.settings import get_settings

CATALOGUE = Path(__file__).with_name("catalogue.csv")
DEMO_PASSWORD = "mobimart-demo"  # noqa: S105 (printed for the demo; refused nowhere else)
GBP_TO_CNY = 9  # a round rate keeps demo prices believable

DEMO_COUPON = "HOME5"  # Retrospot Home's: ¥5 off from ¥30
DEMO_WALLET_MINOR = 50_000  # the demo shopper's wallet: ¥500
ADMIN_PHONE = "+8613900139000"
CONSUMER_PHONE = "+8613800138000"
MERCHANTS = [
    ("+8613700137001", "Retrospot Home 红点家居", "王芳"),
    ("+8613700137002", "Lantern & Co 灯笼小铺", "李伟"),
    ("+8613700137003", "Pantry Gifts 食品柜礼品", "张敏"),
]
CATEGORIES = [
    ("decor", "Home decor", "家居装饰"),
    ("kitchen", "Kitchen & dining", "厨房餐饮"),
    ("bags", "Bags", "箱包"),
    ("toys", "Toys & party", "玩具派对"),
    ("lighting", "Lighting", "灯具"),
    ("stationery", "Stationery", "文具"),
    ("seasonal", "Seasonal", "节日"),
]


@dataclass(frozen=True)
class DemoAccounts:
    admin: str
    consumer: str
    merchants: list[str]
    password: str
    created: bool


def demo_video(seconds: int = 2) -> bytes:
    """A short WebM (VP8) of colour bars that phones play: the demo's product video."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 160, "yuv420p"
        x = np.arange(160, dtype=np.uint16)[None, :, None]
        for n in range(seconds * 10):
            shade = (x * np.array([8, 3, 1]) + n * np.array([6, 0, 12])) % 256
            pixels = np.broadcast_to(shade, (160, 160, 3)).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def tiny_png() -> bytes:
    """A 1×1 PNG, standing in for a scanned licence."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _licence(n: int) -> str:
    first17 = f"9131000{n:02d}MA1FL00{n:01d}"[:17].ljust(17, "0")
    return first17 + accounts_domain.uscc_check_char(first17)


def _resident_id(n: int) -> str:
    first17 = f"11010519800101{n:03d}"
    return first17 + accounts_domain.resident_id_check_char(first17)


async def _user(database: Database, phone: str, name: str) -> User:
    async with database.session() as session:
        user = await accounts.find_user_by_phone(session, phone=phone)
        if user is None:
            user = User(phone=phone, phone_hash=accounts.phone_hash(phone), display_name=name)
            session.add(user)
            await session.commit()
        if user.password_hash is None:
            await accounts.set_password(
                session, user=user, password=DEMO_PASSWORD, current_password=None
            )
        return user


async def load(database: Database) -> DemoAccounts:
    accounts_out = DemoAccounts(
        admin=ADMIN_PHONE,
        consumer=CONSUMER_PHONE,
        merchants=[phone for phone, _, _ in MERCHANTS],
        password=DEMO_PASSWORD,
        created=False,
    )
    async with database.session() as session:
        if await accounts.find_user_by_phone(session, phone=ADMIN_PHONE) is not None:
            return accounts_out  # loaded before: demo data is created once

    await _user(database, ADMIN_PHONE, "Demo admin")
    async with database.session() as session:
        admin = await accounts.ensure_admin(session, phone=ADMIN_PHONE)
        starter = wordlist.lines_of(wordlist.STARTER.read_text(encoding="utf-8"))
        await wordlist.import_words(session, lines=starter, admin_id=admin.id)
    await _user(database, CONSUMER_PHONE, "Demo shopper")

    async with database.session() as session:
        for slug, en, zh in CATEGORIES:
            session.add(Category(slug=slug, name_en=en, name_zh=zh))
        await session.commit()
        category_ids = {c.slug: c.id for c in await session.scalars(select(Category))}

    with CATALOGUE.open(newline="", encoding="utf-8") as fh:
        products = list(csv.DictReader(fh))
    for n, (phone, shop_name, rep) in enumerate(MERCHANTS, start=1):
        owner = await _user(database, phone, f"{rep} (owner)")
        async with database.session() as session:
            merchant = await merchants.apply(
                session,
                user=owner,
                application=merchants.Application(
                    name=shop_name,
                    licence_number=_licence(n),
                    legal_rep_name=rep,
                    legal_rep_id_number=_resident_id(n),
                    contact_phone=phone,
                ),
            )
            await merchants.add_document(
                session,
                merchant=merchant,
                user=owner,
                kind=DocumentKind.business_licence,
                filename="licence.png",
                data=tiny_png(),
            )
            await merchants.submit(session, merchant=merchant, user=owner)
            merchant = await merchants.decide(
                session,
                merchant_id=merchant.id,
                admin=admin,
                decision=Decision.approve,
                reason="Demo merchant",
            )
            brand = await brands.create_brand(
                session,
                merchant=merchant,
                name=shop_name.split(" ")[0],
                story=f"{shop_name}: gifts and homeware, sold on Mobimart since the demo began.",
            )
            for i, row in enumerate(products[n - 1 :: len(MERCHANTS)]):
                price = max(1, round(float(row["unit_price_gbp"]) * GBP_TO_CNY * 100))
                stock = 20 + (i * 37) % 180
                # Every fifth product comes in three colours, the dearer ones in short supply.
                variants = (
                    [
                        VariantSpec(
                            f"{row['stock_code']}-{c[0].upper()}",
                            price + k * 500,
                            stock if k < 2 else 0,
                            {"colour": c},
                        )
                        for k, c in enumerate(("red", "blue", "white"))
                    ]
                    if i % 5 == 0
                    else None
                )
                product = await catalog.create_product(
                    session,
                    merchant=merchant,
                    name=row["description"],
                    price_minor=None if variants else price,
                    stock=stock,
                    variants=variants,
                    category_id=category_ids[row["category"]],
                    brand_id=brand.id,
                    tags=[row["category"]],
                    description=f"Stock code {row['stock_code']}.",
                    publish=True,
                )
                if i == 0:  # one product per shop shows a short video
                    await media.add_product_media(
                        session, merchant=merchant, product_id=product.id, data=demo_video()
                    )
        if n == 1:
            async with database.session() as session:
                home5 = await promotions.create(
                    session,
                    merchant_id=merchant.id,
                    spec=promotions.Spec(
                        "Spend ¥30, save ¥5",
                        Kind.spend_save,
                        Scope.order,
                        value=500,
                        threshold_minor=3000,
                        code=DEMO_COUPON,
                    ),
                )
            await _marketing(database, merchant_id=merchant.id, coupon_id=home5.id)
    async with database.session() as session:
        shopper = await accounts.find_user_by_phone(session, phone=CONSUMER_PHONE)
        assert shopper is not None
        await privacy.set_consent(
            session,
            user_id=shopper.id,
            channel=accounts_domain.Channel.sms,
            granted=True,
            source="demo",
        )
        await ledger.post(  # as a gateway top-up posts it, so the shopper can pay at once
            session,
            kind="top_up",
            reference="demo:shopper",
            currency=get_settings().default_currency,
            legs=payments_domain.top_up(DEMO_WALLET_MINOR, user_id=shopper.id),
        )
        await session.commit()
    return DemoAccounts(**{**accounts_out.__dict__, "created": True})


async def _marketing(database: Database, *, merchant_id: int, coupon_id: int) -> None:
    """Retrospot Home's marketing: a store by People's Square with a geofence and an offer
    (so /nearby shows something in Shanghai), a segment of people who agreed to texts, a week
    long lucky draw and a QR code that opens it."""
    now = dt.datetime.now(dt.UTC)
    async with database.session() as session:
        store = await places.create_store(
            session,
            merchant_id=merchant_id,
            name="Retrospot Home, People's Square",
            lat=31.2317,
            lng=121.4726,
            address="People's Square, Huangpu, Shanghai",
        )
        fence = await places.create_geofence(
            session,
            merchant_id=merchant_id,
            name="People's Square",
            store_id=store.id,
            radius_m=500,
        )
        await places.create_offer(
            session,
            merchant_id=merchant_id,
            geofence_id=fence.id,
            title="¥5 off from ¥30 today",
            body=f"Show code {DEMO_COUPON} at the till or use it online.",
            promotion_id=coupon_id,
        )
        await segments.create(
            session,
            merchant_id=merchant_id,
            name="Agreed to texts",
            match="all",
            conditions=[{"kind": "has_consent", "channel": "sms"}],
        )
        # A draw's coupon prize copies an ended coupon: a live one's code would give the prize
        # to anyone who knows it, without a draw.
        template = await promotions.create(
            session,
            merchant_id=merchant_id,
            spec=promotions.Spec(
                "Lucky week ¥5",
                Kind.spend_save,
                Scope.order,
                value=500,
                threshold_minor=3000,
                code="LUCKYWEEK5",
            ),
        )
        await promotions.end(session, promotion_id=template.id, merchant_id=merchant_id)
        lucky = await draws.create(
            session,
            merchant_id=merchant_id,
            spec=draws.DrawSpec(
                name="Lucky week",
                opens_at=now,
                closes_at=now + dt.timedelta(days=7),
                prizes=[
                    draws.PrizeSpec("¥5 coupon", "coupon", 300_000, 100, promotion_id=template.id),
                    draws.PrizeSpec("50 points", "points", 300_000, 1000, points=50),
                ],
                rules={"per_day": 1},
            ),
        )
        await qr.create(
            session,
            merchant_id=merchant_id,
            spec=qr.Spec(
                "Lucky week poster", qr.Target(qr.TargetKind.draw, lucky.id), dynamic=True
            ),
        )
        await session.commit()
