"""Catalogue over the API and pages: variants, browse filters and facets, brands and
following, media with range requests, categories."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mobimart.accounts.models import User
from mobimart.catalog import brands
from mobimart.catalog import service as catalog
from mobimart.catalog.domain import VariantSpec
from mobimart.db import Database
from mobimart.merchants.models import Merchant
from tests import factories
from tests.api.test_pages import csrf_of, page_sign_in

# The smallest ISO base media file Chromium and a Range request need: an ftyp box.
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 40


async def _merchant(db: Database, make_user: Any) -> tuple[Merchant, User]:
    owner = await make_user()
    admin = await make_user(admin=True)
    return await factories.merchant(db, owner, admin=admin), owner


async def _seed(db: Database, merchant: Merchant) -> dict[str, int]:
    async with db.session() as s:
        root = await catalog.create_category(
            s, slug="home", name_en="Home", name_zh="家居", parent_id=None
        )
        kitchen = await catalog.create_category(
            s, slug="kitchen", name_en="Kitchen", name_zh="厨房", parent_id=root.id
        )
        acme = await brands.create_brand(s, merchant=merchant, name="Acme")
        zen = await brands.create_brand(s, merchant=merchant, name="Zen Goods")
        mug = await catalog.create_product(
            s,
            merchant=merchant,
            name="Ceramic Mug",
            category_id=kitchen.id,
            brand_id=acme.id,
            variants=[
                VariantSpec("MUG-R", 2500, 3, {"colour": "red"}),
                VariantSpec("MUG-B", 2900, 0, {"colour": "blue"}),
            ],
            tags=["gift"],
            publish=True,
        )
        await catalog.create_product(
            s,
            merchant=merchant,
            name="Steel Kettle",
            category_id=kitchen.id,
            brand_id=zen.id,
            price_minor=9900,
            stock=0,
            publish=True,
        )
        await catalog.create_product(
            s,
            merchant=merchant,
            name="Door Mat",
            category_id=root.id,
            price_minor=1500,
            stock=4,
            publish=True,
        )
        await catalog.create_product(
            s, merchant=merchant, name="Draft Lamp", category_id=root.id, price_minor=100
        )
    return {"home": root.id, "kitchen": kitchen.id, "acme": acme.id, "zen": zen.id, "mug": mug.id}


async def test_browse_filters_facets_and_sorting(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    merchant, _ = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    home = (await client.get("/api/v1/products", params={"category": ids["home"]})).json()
    assert home["total"] == 3  # the draft is not shown
    assert {c["slug"]: c["count"] for c in home["facets"]["categories"]} == {"kitchen": 2}
    assert {b["name"]: b["count"] for b in home["facets"]["brands"]} == {"Acme": 1, "Zen Goods": 1}
    assert home["facets"]["in_stock"] == 2
    colours = {o["name"]: o["values"] for o in home["facets"]["options"]}["colour"]
    assert {v["value"] for v in colours} == {"red", "blue"}

    cheap = await client.get(
        "/api/v1/products",
        params={"category": ids["home"], "price_max": 3000, "sort": "price_asc"},
    )
    assert [p["name"] for p in cheap.json()["items"]] == ["Door Mat", "Ceramic Mug"]
    acme = await client.get(
        "/api/v1/products", params=[("brand", ids["acme"]), ("option", "colour:red")]
    )
    assert [p["name"] for p in acme.json()["items"]] == ["Ceramic Mug"]
    stocked = await client.get(
        "/api/v1/products", params={"in_stock": "true", "sort": "price_desc"}
    )
    assert [p["name"] for p in stocked.json()["items"]] == ["Ceramic Mug", "Door Mat"]
    found = (await client.get("/api/v1/products", params={"q": "kettel"})).json()
    assert [p["name"] for p in found["items"]] == ["Steel Kettle"]
    assert found["query"] == "kettel"

    first = (await client.get("/api/v1/products", params={"limit": 2, "sort": "newest"})).json()
    assert first["next_cursor"]
    rest = await client.get(
        "/api/v1/products", params={"limit": 2, "sort": "newest", "cursor": first["next_cursor"]}
    )
    names = [p["name"] for p in first["items"] + rest.json()["items"]]
    assert names == ["Door Mat", "Steel Kettle", "Ceramic Mug"]
    wrong_sort = await client.get(
        "/api/v1/products", params={"sort": "price_asc", "cursor": first["next_cursor"]}
    )
    assert wrong_sort.status_code == 422
    assert wrong_sort.json()["code"] == "invalid_cursor"
    backwards = await client.get("/api/v1/products", params={"price_min": 500, "price_max": 100})
    assert backwards.status_code == 422
    assert backwards.json()["code"] == "invalid_price_range"
    bad_option = await client.get("/api/v1/products", params={"option": "no-colon"})
    assert bad_option.status_code == 422


async def test_variants_are_replaced_by_sku_and_summarised(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    headers = await auth_headers(owner)
    base = f"/api/v1/merchants/{merchant.id}/products/{ids['mug']}"
    before = {
        v["sku"]: v["id"] for v in (await client.get(base + "/variants", headers=headers)).json()
    }
    put = await client.put(
        base + "/variants",
        headers=headers,
        json={
            "variants": [
                {"sku": "MUG-R", "options": {"colour": "red"}, "price_minor": 2700, "stock": 1},
                {"sku": "MUG-G", "options": {"colour": "green"}, "price_minor": 2300, "stock": 6},
            ]
        },
    )
    assert put.status_code == 200, put.text
    after = {v["sku"]: v for v in put.json()}
    assert after["MUG-R"]["id"] == before["MUG-R"]  # kept SKU, kept variant
    assert "MUG-B" not in after
    detail = (await client.get(f"/api/v1/products/{ids['mug']}")).json()
    assert detail["price_minor"] == 2300  # the lowest
    assert detail["options"] == {"colour": ["red", "green"]}
    assert detail["brand_slug"] == "acme"
    assert [c["slug"] for c in detail["categories"]] == ["home", "kitchen"]
    refused = await client.patch(base, headers=headers, json={"price_minor": 100})
    assert refused.status_code == 409
    assert refused.json()["code"] == "has_variants"
    mixed = await client.put(
        base + "/variants",
        headers=headers,
        json={
            "variants": [
                {"sku": "A", "options": {"colour": "red"}, "price_minor": 1},
                {"sku": "B", "options": {"size": "M"}, "price_minor": 1},
            ]
        },
    )
    assert mixed.status_code == 422
    assert mixed.json()["code"] == "invalid_options"
    neither = await client.post(
        f"/api/v1/merchants/{merchant.id}/products", headers=headers, json={"name": "X"}
    )
    assert neither.status_code == 422


async def test_following_a_brand_counts_each_person_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, _ = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    fans = [await make_user() for _ in range(4)]
    fan_headers = [await auth_headers(f) for f in fans]
    url = f"/api/v1/me/brands/{ids['acme']}"
    # The same person tapping five times at once, and three others at once.
    taps = [client.put(url, headers=fan_headers[0]) for _ in range(5)]
    taps += [client.put(url, headers=h) for h in fan_headers[1:]]
    assert all(r.status_code == 200 for r in await asyncio.gather(*taps))
    brand = (await client.get("/api/v1/brands/acme")).json()
    assert brand["follower_count"] == 4
    gone = await client.delete(url, headers=fan_headers[1])
    assert gone.json() == {"following": False, "follower_count": 3}
    again = await client.delete(url, headers=fan_headers[1])
    assert again.json()["follower_count"] == 3
    mine = (await client.get("/api/v1/me/brands", headers=fan_headers[0])).json()
    assert [b["slug"] for b in mine] == ["acme"]
    deleted = await client.delete("/api/v1/me", headers=fan_headers[2])
    assert deleted.status_code in (200, 204), deleted.text
    assert (await client.get("/api/v1/brands/acme")).json()["follower_count"] == 2


async def test_brand_rename_reaches_listings(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    await client.get("/api/v1/products")  # the replica is loaded
    renamed = await client.patch(
        f"/api/v1/brands/{ids['acme']}", headers=await auth_headers(owner), json={"name": "Acme Co"}
    )
    assert renamed.status_code == 200
    listing = (await client.get("/api/v1/products", params={"brand": ids["acme"]})).json()
    assert listing["items"][0]["brand_name"] == "Acme Co"
    assert listing["facets"]["brands"][0]["name"] == "Acme Co"
    other = await client.patch(
        f"/api/v1/brands/{ids['acme']}",
        headers=await auth_headers(await make_user()),
        json={"name": "Stolen"},
    )
    assert other.status_code == 403


async def test_media_upload_is_sniffed_and_video_supports_ranges(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    headers = await auth_headers(owner)
    url = f"/api/v1/merchants/{merchant.id}/products/{ids['mug']}/media"
    fake = await client.post(
        url, headers=headers, files={"file": ("clip.mp4", b"<script>x</script>", "video/mp4")}
    )
    assert fake.status_code == 415
    video = await client.post(url, headers=headers, files={"file": ("c.bin", MP4, "text/plain")})
    assert video.status_code == 201, video.text
    assert video.json()["kind"] == "video"
    assert video.json()["content_type"] == "video/mp4"
    served = await client.get(video.json()["url"], headers={"Range": "bytes=100-199"})
    assert served.status_code == 206
    assert served.headers["content-range"] == f"bytes 100-199/{len(MP4)}"
    assert served.content == MP4[100:200]
    assert "immutable" in served.headers["cache-control"]
    detail = (await client.get(f"/api/v1/products/{ids['mug']}")).json()
    assert detail["media"] == [{"kind": "video", "url": video.json()["url"]}]
    page = await client.get(f"/products/{ids['mug']}")
    assert f'<video src="{video.json()["url"]}"' in page.text
    assert (await client.get("/media/../../etc/passwd")).status_code == 404
    assert (await client.get("/media/" + "0" * 32 + ".mp4")).status_code == 404


async def test_category_tree_is_admin_managed(
    client: httpx.AsyncClient, make_user: Any, auth_headers: Any
) -> None:
    admin = await auth_headers(await make_user(admin=True))
    parent_id = None
    for depth in range(4):
        made = await client.post(
            "/api/v1/admin/categories",
            headers=admin,
            json={
                "slug": f"level-{depth}",
                "name_en": "L",
                "name_zh": "层",
                "parent_id": parent_id,
            },
        )
        assert made.status_code == 201, made.text
        parent_id = made.json()["id"]
    too_deep = await client.post(
        "/api/v1/admin/categories",
        headers=admin,
        json={"slug": "level-4", "name_en": "L", "name_zh": "层", "parent_id": parent_id},
    )
    assert too_deep.status_code == 422
    taken = await client.post(
        "/api/v1/admin/categories",
        headers=admin,
        json={"slug": "level-0", "name_en": "L", "name_zh": "层"},
    )
    assert taken.status_code == 409


async def test_listing_pages_filter_without_script(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    merchant, _ = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    page = await client.get("/c/home", params={"price_max": "30", "sort": "price_asc"})
    assert page.status_code == 200
    text = page.text
    assert text.index("Door Mat") < text.index("Ceramic Mug")
    assert "Steel Kettle" not in text
    assert 'name="price_max" id="price_max" value="30.00"' in text
    assert len(page.content) < 100_000
    wrong = await client.get("/c/home", params={"price_min": "cheap"})
    assert "is not a price" in wrong.text
    assert "Steel Kettle" in wrong.text  # the other filters still apply
    variant = await client.get(f"/products/{ids['mug']}", params={"sku": "MUG-B"})
    assert "¥29.00" in variant.text
    assert "Out of stock" in variant.text
    assert (await client.get("/c/nowhere")).status_code == 404


async def test_follow_from_the_brand_page(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any, new_phone: Any
) -> None:
    merchant, _ = await _merchant(db, make_user)
    await _seed(db, merchant)
    signed_out = await client.get("/brands/acme")
    assert "Ceramic Mug" in signed_out.text
    await page_sign_in(client, read_code, new_phone())
    page = await client.get("/brands/acme")
    followed = await client.post(
        "/brands/acme/follow", data={"csrf_token": csrf_of(page.text), "follow": "true"}
    )
    assert followed.status_code == 303
    after = await client.get(followed.headers["location"])
    assert "1 follower" in after.text
    assert "Following" in after.text


async def test_synonyms_from_admins_and_merchants(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    other, _ = await _merchant(db, make_user)
    await _seed(db, merchant)
    async with db.session() as s:
        await catalog.create_product(
            s, merchant=other, name="Porcelain Mug", price_minor=900, stock=1, publish=True
        )

    def names(response: httpx.Response) -> set[str]:
        return {p["name"] for p in response.json()["items"]}

    assert names(await client.get("/api/v1/products", params={"q": "cup"})) == set()
    made = await client.post(
        f"/api/v1/merchants/{merchant.id}/synonyms",
        headers=await auth_headers(owner),
        json={"words": ["cup", "mug", "Mug "]},
    )
    assert made.status_code == 201, made.text
    assert made.json()["words"] == ["cup", "mug"]
    # The merchant's synonym finds its own mug, not the other shop's.
    assert names(await client.get("/api/v1/products", params={"q": "cup"})) == {"Ceramic Mug"}
    admin = await auth_headers(await make_user(admin=True))
    platform = await client.post(
        "/api/v1/admin/synonyms", headers=admin, json={"words": ["cup", "mug"]}
    )
    assert platform.status_code == 201
    assert names(await client.get("/api/v1/products", params={"q": "cup"})) == {
        "Ceramic Mug",
        "Porcelain Mug",
    }
    await client.delete(f"/api/v1/admin/synonyms/{platform.json()['id']}", headers=admin)
    assert names(await client.get("/api/v1/products", params={"q": "cup"})) == {"Ceramic Mug"}
    one_word = await client.post(
        "/api/v1/admin/synonyms", headers=admin, json={"words": ["mug", "MUG"]}
    )
    assert one_word.status_code == 422


async def test_console_manages_products_end_to_end(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    await page_sign_in(client, read_code, owner.phone)
    listing = await client.get(f"/console/{merchant.id}/products")
    assert "Draft Lamp" in listing.text
    token = csrf_of(listing.text)
    bad = await client.post(
        f"/console/{merchant.id}/products",
        data={"csrf_token": token, "name": "Linen Apron", "price": "twelve"},
    )
    assert bad.status_code == 422
    assert "is not a number" in bad.text
    assert 'value="Linen Apron"' in bad.text  # what was typed is kept
    made = await client.post(
        f"/console/{merchant.id}/products",
        data={
            "csrf_token": token,
            "name": "Linen Apron",
            "price": "12.50",
            "stock": "4",
            "brand_id": str(ids["acme"]),
            "tags": "kitchen, gift",
        },
    )
    assert made.status_code == 303
    edit_url = made.headers["location"].split("?")[0]
    variants = await client.post(
        edit_url + "/variants",
        data={
            "csrf_token": token,
            "variants": "APR-S | size=S | 12.50 | 2\nAPR-L | size=L | 14.00 | 0",
        },
    )
    assert variants.status_code == 303
    wrong = await client.post(
        edit_url + "/variants", data={"csrf_token": token, "variants": "APR-S | 12.50 | 2"}
    )
    assert wrong.status_code == 422
    assert "Line 1" in wrong.text
    assert "APR-S | 12.50 | 2" in wrong.text
    upload = await client.post(
        edit_url + "/media",
        data={"csrf_token": token},
        files={"file": ("apron.mp4", MP4, "video/mp4")},
    )
    assert upload.status_code == 303
    published = await client.post(
        edit_url + "/status", data={"csrf_token": token, "action": "publish"}
    )
    assert published.status_code == 303
    page = await client.get(edit_url)
    assert "Published" in page.text
    product_id = int(edit_url.rsplit("/", 1)[1])
    shown = (await client.get(f"/api/v1/products/{product_id}")).json()
    assert shown["options"] == {"size": ["S", "L"]}
    assert shown["brand_name"] == "Acme"
    assert shown["tags"] == ["kitchen", "gift"]
    assert shown["media"][0]["kind"] == "video"


async def test_brand_logo_and_banner_show_on_the_brand_and_in_lists(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    headers = await auth_headers(owner)
    logo = await client.put(
        f"/api/v1/brands/{ids['acme']}/logo",
        headers=headers,
        files={"file": ("logo.png", factories.PNG, "image/png")},
    )
    banner = await client.put(
        f"/api/v1/brands/{ids['acme']}/banner",
        headers=headers,
        files={"file": ("b.mp4", MP4, "video/mp4")},
    )
    assert banner.json()["logo"] == logo.json()["logo"]
    assert banner.json()["banner"]["kind"] == "video"
    listed = {b["slug"]: b for b in (await client.get("/api/v1/brands")).json()["items"]}
    assert listed["acme"]["logo"]["url"] == logo.json()["logo"]["url"]
    assert listed["zen-goods"]["logo"] is None
    page = await client.get("/brands/acme")
    assert banner.json()["banner"]["url"] in page.text


async def test_parallel_uploads_never_pass_the_gallery_limit(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.catalog.media import MAX_PER_PRODUCT

    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    headers = await auth_headers(owner)
    url = f"/api/v1/merchants/{merchant.id}/products/{ids['mug']}/media"
    uploads = [
        client.post(url, headers=headers, files={"file": ("p.png", factories.PNG, "image/png")})
        for _ in range(MAX_PER_PRODUCT + 4)
    ]
    codes = sorted(r.status_code for r in await asyncio.gather(*uploads))
    assert codes.count(201) == MAX_PER_PRODUCT
    assert set(codes) == {201, 422}
    listed = await client.get(url, headers=headers)
    assert len(listed.json()) == MAX_PER_PRODUCT


async def test_parallel_variant_edits_leave_one_whole_set_and_a_matching_summary(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    merchant, owner = await _merchant(db, make_user)
    ids = await _seed(db, merchant)
    headers = await auth_headers(owner)
    url = f"/api/v1/merchants/{merchant.id}/products/{ids['mug']}/variants"
    sets = [
        [{"sku": f"S{n}-{k}", "options": {"size": str(k)}, "price_minor": 100 * n + k, "stock": n}
         for k in range(3)]
        for n in range(1, 7)
    ]  # fmt: skip
    answers = await asyncio.gather(
        *(client.put(url, headers=headers, json={"variants": s}) for s in sets)
    )
    assert all(r.status_code in (200, 409) for r in answers), [r.text for r in answers]
    final = (await client.get(url, headers=headers)).json()
    skus = {v["sku"] for v in final}
    assert any(skus == {v["sku"] for v in s} for s in sets), skus
    product = (
        await client.get(f"/api/v1/merchants/{merchant.id}/products/{ids['mug']}", headers=headers)
    ).json()
    assert product["price_minor"] == min(v["price_minor"] for v in final)
    assert product["stock"] == sum(v["stock"] for v in final)
