"""Browse throughput: the real server (uvicorn, production settings) on SQLite with 50,000
products, loaded by wrk with a mix of category listings with filters and facets (70 %) and
product pages (30 %), against a bare Starlette ceiling under the same uvicorn options and load.

    python -m bench.browse [--products 50000] [--seconds 10] [--connections 32] [--urls 3000]
                           [--no-cache]

The server keeps rendered listings until the catalogue changes (MOBIMART_LISTING_CACHE_ENTRIES);
`--no-cache` turns that off to measure every request computed from the in-memory index;
`--pages` drives the mobile HTML pages (`/c/<slug>?…`, `/products/<id>`) instead of the API.

Summary: browse rps=R ceiling_rps=C ratio=R/C p99_ms=P products=N
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import production_env, say, scratch_dir, serve, wrk

COLOURS = ["red", "blue", "black", "white", "green", "grey", "pink", "brown"]
SIZES = ["S", "M", "L", "XL"]
NOUNS = [
    "mug",
    "kettle",
    "lamp",
    "chair",
    "towel",
    "jacket",
    "sneaker",
    "backpack",
    "speaker",
    "charger",
    "blender",
    "pillow",
    "rug",
    "vase",
    "watch",
    "wallet",
    "helmet",
    "tent",
]
ADJECTIVES = ["classic", "smart", "compact", "deluxe", "eco", "travel", "pro", "mini", "soft"]


async def _seed(env: dict[str, str], products: int, seed: int) -> dict[str, list[Any]]:
    """Migrate, then write the catalogue: 20 approved merchants with shops, 8 root categories
    with 6 children each, 300 brands, and `products` published products with 1-4 variants."""
    os.environ.update(env)
    from sqlalchemy import insert

    from mobimart.accounts import service as accounts
    from mobimart.accounts.models import User
    from mobimart.catalog.models import Brand, Category, Product, Shop, Variant
    from mobimart.db import Database
    from mobimart.infra.pii import get_vault
    from mobimart.merchants.models import Merchant
    from mobimart.migrate import upgrade
    from mobimart.settings import get_settings

    get_settings.cache_clear()
    get_vault.cache_clear()
    await asyncio.to_thread(upgrade, env["MOBIMART_DATABASE_URL"])
    rng = random.Random(seed)
    database = Database(env["MOBIMART_DATABASE_URL"])
    now = dt.datetime.now(dt.UTC)
    try:
        async with database.session() as s:
            owner = User(phone="+8613800138000", phone_hash=accounts.phone_hash("+8613800138000"))
            s.add(owner)
            await s.flush()
            shops = []
            for n in range(20):
                merchant = Merchant(
                    name=f"Shop {n}",
                    status="approved",
                    licence_number="91350100M000100Y43",
                    legal_rep_name="Li Lei",
                    legal_rep_id_number="11010519491231002X",
                    legal_rep_id_hash=f"h{n}",
                    contact_phone="+8613800138000",
                    contact_phone_hash="h",
                    created_by=owner.id,
                )
                s.add(merchant)
                await s.flush()
                shop = Shop(merchant_id=merchant.id, name=f"Shop {n}")
                s.add(shop)
                await s.flush()
                shops.append((merchant.id, shop.id))
            leaves, roots, slugs = [], [], []
            for r in range(8):
                root = Category(slug=f"root-{r}", name_en=f"Root {r}", name_zh=f"类{r}")
                s.add(root)
                await s.flush()
                roots.append(root.id)
                slugs.append((root.id, root.slug))
                for c in range(6):
                    leaf = Category(
                        slug=f"cat-{r}-{c}",
                        name_en=f"Cat {r}.{c}",
                        name_zh=f"类{r}.{c}",
                        parent_id=root.id,
                    )
                    s.add(leaf)
                    await s.flush()
                    leaves.append(leaf.id)
                    slugs.append((leaf.id, leaf.slug))
            brands = []
            for b in range(300):
                brand = Brand(slug=f"brand-{b}", name=f"Brand {b}", story="")
                s.add(brand)
                await s.flush()
                brands.append(brand.id)
            await s.commit()
            product_rows, variant_rows = [], []
            for pid in range(1, products + 1):
                merchant_id, shop_id = rng.choice(shops)
                options = rng.choice([[], ["colour"], ["colour", "size"]])
                combos: list[dict[str, str]] = [{}]
                if options:
                    colours = rng.sample(COLOURS, rng.randint(1, 3))
                    combos = [{"colour": c} for c in colours]
                    if "size" in options:
                        combos = [{**c, "size": rng.choice(SIZES)} for c in combos]
                        combos = list({tuple(sorted(c.items())): c for c in combos}.values())
                base = rng.randint(500, 200_000)
                prices = [base + rng.randint(0, 2000) for _ in combos]
                stocks = [rng.choice([0, 0, 3, 10, 50]) for _ in combos]
                ratings = rng.randint(0, 40)
                product_rows.append(
                    {
                        "id": pid,
                        "merchant_id": merchant_id,
                        "shop_id": shop_id,
                        "category_id": rng.choice(leaves),
                        "brand_id": rng.choice(brands),
                        "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {pid}",
                        "description": "",
                        "tags": [],
                        "price_minor": min(prices),
                        "currency": "CNY",
                        "stock": sum(stocks),
                        "status": "published",
                        "sales": rng.randint(0, 5000),
                        "rating_count": ratings,
                        "rating_total": sum(rng.randint(2, 5) for _ in range(ratings)),
                        "created_at": now - dt.timedelta(minutes=pid),
                    }
                )
                for i, (combo, price, stock) in enumerate(zip(combos, prices, stocks, strict=True)):
                    variant_rows.append(
                        {
                            "product_id": pid,
                            "merchant_id": merchant_id,
                            "sku": f"P{pid}-{i}",
                            "options": combo,
                            "price_minor": price,
                            "stock": stock,
                            "position": i,
                        }
                    )
            for start in range(0, len(product_rows), 5000):
                await s.execute(insert(Product), product_rows[start : start + 5000])
            for start in range(0, len(variant_rows), 5000):
                await s.execute(insert(Variant), variant_rows[start : start + 5000])
            await s.commit()
    finally:
        await database.dispose()
    return {
        "roots": roots,
        "leaves": leaves,
        "brands": brands,
        "shops": [s for _, s in shops],
        "slugs": slugs,
    }


def _as_page(url: str, slugs: dict[int, str]) -> str:
    """The mobile page a shopper opens for the same listing or product (prices in yuan)."""
    if "?" not in url:
        return url.removeprefix("/api/v1")
    params = []
    for pair in url.split("?", 1)[1].split("&"):
        name, value = pair.split("=", 1)
        if name == "category":
            continue
        if name in ("price_min", "price_max"):
            value = f"{int(value) / 100:.2f}"
        params.append(f"{name}={'1' if name == 'in_stock' else value}")
    category = int(url.split("category=")[1].split("&")[0])
    return f"/c/{slugs[category]}?" + "&".join(params)


def _urls(ids: dict[str, list[Any]], products: int, count: int, seed: int) -> list[str]:
    """What shoppers ask for: a category (leaf or root) with zero to three filters and a sort,
    sometimes a second page (cursor pages are fetched live, below); or a product."""
    rng = random.Random(seed)
    urls = []
    for _ in range(count):
        if rng.random() < 0.3:
            urls.append(f"/api/v1/products/{rng.randint(1, products)}")
            continue
        category = rng.choice(ids["leaves"] if rng.random() < 0.8 else ids["roots"])
        params = [f"category={category}"]
        for choice in rng.sample(
            ["price", "brand", "colour", "stock", "rating", "shop"], rng.randint(0, 3)
        ):
            if choice == "price":
                low = rng.choice([0, 1000, 5000, 20000])
                params.append(f"price_min={low}&price_max={low + rng.choice([5000, 50000])}")
            elif choice == "brand":
                params += [f"brand={b}" for b in rng.sample(ids["brands"], rng.randint(1, 3))]
            elif choice == "colour":
                params.append(f"option=colour:{rng.choice(COLOURS)}")
            elif choice == "stock":
                params.append("in_stock=true")
            elif choice == "rating":
                params.append("rating=4")
            else:
                params.append(f"shop={rng.choice(ids['shops'])}")
        params.append(
            "sort="
            + rng.choice(["relevance", "price_asc", "price_desc", "sales", "newest", "rating"])
        )
        urls.append("/api/v1/products?" + "&".join(params))
    return urls


_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-cache", action="store_true", help="no rendered-listing cache")
    parser.add_argument(
        "--pages", action="store_true", help="the mobile HTML pages instead of the API"
    )
    args = parser.parse_args()

    var = scratch_dir()
    env = production_env(f"sqlite+aiosqlite:///{var}/browse.db", var)
    if args.no_cache:
        env["MOBIMART_LISTING_CACHE_ENTRIES"] = "0"
    say(f"seeding {args.products:,} products ...")
    started = time.perf_counter()
    ids = asyncio.run(_seed(env, args.products, args.seed))
    say(f"  {time.perf_counter() - started:.1f} s")
    urls = _urls(ids, args.products, args.urls, args.seed)
    if args.pages:
        urls = [_as_page(u, dict(ids["slugs"])) for u in urls]
    say(f"server: production settings, SQLite, {args.connections} connections, {args.seconds} s")
    with serve("mobimart.app:create_app", env, factory=True, startup_s=300) as url:
        pages = [u for u in urls if "cursor" not in u]
        # Second pages, with the cursors the server gives out.
        for u in pages[: len(pages) // 10]:
            if u.startswith("/api/v1/products?"):
                nxt = httpx.get(url + u, timeout=30).json()["next_cursor"]
                if nxt:
                    urls.append(f"{u}&cursor={nxt}")
        sample = httpx.get(url + urls[0], timeout=30)
        assert sample.status_code == 200, sample.text
        paths = Path(var / "paths.txt")
        paths.write_text("\n".join(urls) + "\n")
        script = var / "mix.lua"
        script.write_text(_LUA % paths)
        wrk(url + "/", seconds=3, connections=args.connections, script=script)
        load = wrk(url + "/", seconds=args.seconds, connections=args.connections, script=script)
        sizes = [len(httpx.get(url + u, timeout=30).content) for u in urls[:200]]
    say(
        f"  {load.rps:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, "
        f"non-2xx {load.non_2xx}, {len(urls)} distinct URLs, "
        f"largest response {max(sizes):,} bytes"
    )
    if load.non_2xx:
        raise SystemExit("errors under load")
    say(f"ceiling: bare Starlette, {args.connections} connections, {args.seconds} s")
    with serve("bench.ceiling_app:app", dict(os.environ)) as url:
        wrk(url + "/api/v1/me", seconds=3, connections=args.connections)
        ceiling = wrk(url + "/api/v1/me", seconds=args.seconds, connections=args.connections)
    say(f"  {ceiling.rps:,.0f} req/s, p99 {ceiling.p99_ms:.1f} ms")
    say(
        f"browse rps={load.rps:.0f} ceiling_rps={ceiling.rps:.0f} "
        f"ratio={load.rps / ceiling.rps:.3f} p99_ms={load.p99_ms:.1f} products={args.products}"
    )


if __name__ == "__main__":
    main()
