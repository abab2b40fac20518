"""Marketing QR codes over the API, the console pages and the public landing, on SQLite and
PostgreSQL: what a printed code encodes (read back by zbar from PNG, SVG and PDF), where a
scan leads, what it records, and the statistics the shop sees."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode
from sqlalchemy import select

from mobimart.accounts.models import User
from mobimart.campaigns import qr, qr_render
from mobimart.campaigns.models import Draw, MarketingEvent, QrCode
from mobimart.catalog import media
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Product
from mobimart.db import Database, utcnow
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.web.deps import SESSION_COOKIE
from mobimart.web.templating import CSRF_COOKIE
from mobimart.web.visitor import VISITOR_COOKIE
from tests import factories

CSRF = "q" * 43
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
PREVIEW_UA = "TelegramBot (like TwitterBot)"


def read_png(png: bytes) -> list[str]:
    """What zbar reads from an image, QR symbols only, top to bottom."""
    found = decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    return [f.data.decode() for f in sorted(found, key=lambda f: (f.rect.top, f.rect.left))]


def read_svg(svg: bytes, tmp: Path) -> list[str]:
    (tmp / "code.svg").write_bytes(svg)
    subprocess.run(["rsvg-convert", str(tmp / "code.svg"), "-o", str(tmp / "svg.png")], check=True)
    return read_png((tmp / "svg.png").read_bytes())


def read_pdf(pdf: bytes, tmp: Path) -> list[list[str]]:
    """Each page's codes, cell by cell of its 3 x 4 grid, as a PDF viewer at 150 dpi shows
    them (a camera points at one code, not at a page of a dozen)."""
    tmp.mkdir(exist_ok=True)
    (tmp / "sheet.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", str(tmp / "sheet.pdf"), str(tmp / "page")], check=True
    )
    pages = []
    for path in sorted(tmp.glob("page-*.png")):
        page = Image.open(path)
        margin = page.width * 10 / 210  # 10 mm of 210
        width, height = (page.width - 2 * margin) / 3, (page.height - 2 * margin) / 4
        found = []
        for row in range(4):
            for column in range(3):
                left, top = margin + column * width, margin + row * height
                cell = page.crop((int(left), int(top), int(left + width), int(top + height)))
                out = io.BytesIO()
                cell.save(out, format="PNG")
                found += read_png(out.getvalue())
        pages.append(found)
    return pages


@dataclass
class Shop:
    merchant: Merchant
    owner: User
    headers: dict[str, str]
    product: Product
    base: str  # the API's address of the shop's codes


async def _shop(db: Database, make_user: Any, auth_headers: Any, n: int = 1) -> Shop:
    admin = await make_user(admin=True)
    owner = await make_user()
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name=f"Teapot {n}", price_minor=2500, stock=9, publish=True
        )
    return Shop(
        merchant,
        owner,
        await auth_headers(owner),
        product,
        f"/api/v1/merchants/{merchant.id}/qr-codes",
    )


async def _draw(db: Database, merchant_id: int) -> int:
    async with db.session() as s:
        now = utcnow()
        draw = Draw(
            merchant_id=merchant_id,
            name="Spring draw",
            rules={},
            seed="s" * 64,
            seed_hash="0" * 64,
            opens_at=now,
            closes_at=now + dt.timedelta(days=7),
        )
        s.add(draw)
        await s.commit()
        return draw.id


async def _make(client: httpx.AsyncClient, shop: Shop, **body: Any) -> dict[str, Any]:
    body.setdefault("label", "Shelf label")
    body.setdefault("target", {"kind": "product", "id": shop.product.id})
    response = await client.post(shop.base, json=body, headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _scans(db: Database, qr_id: int) -> list[MarketingEvent]:
    async with db.session() as s:
        rows = await s.scalars(
            select(MarketingEvent)
            .where(MarketingEvent.kind == "qr_scan", MarketingEvent.subject_id == qr_id)
            .order_by(MarketingEvent.id)
        )
        return list(rows)


def _path(url: str) -> str:
    return url.removeprefix(get_settings().base_url.rstrip("/"))


# --- making codes ----------------------------------------------------------------------------


async def test_png_svg_and_pdf_each_read_back_as_the_codes_url(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, tmp_path: Path
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    code = await _make(client, shop)
    assert re.fullmatch(r"[A-Za-z0-9_-]{11}", code["token"])
    assert code["url"] == get_settings().base_url.rstrip("/") + "/q/" + code["token"]
    image = f"{shop.base}/{code['id']}/image"

    png = await client.get(image, headers=shop.headers)
    assert png.headers["content-type"] == "image/png"
    assert read_png(png.content) == [code["url"]]
    small = await client.get(image, params={"scale": 4}, headers=shop.headers)
    big = await client.get(image, params={"scale": 40}, headers=shop.headers)
    assert Image.open(io.BytesIO(small.content)).width < Image.open(io.BytesIO(big.content)).width
    assert read_png(big.content) == [code["url"]]
    too_big = await client.get(image, params={"scale": 41}, headers=shop.headers)
    assert too_big.status_code == 422

    svg = await client.get(image, params={"format": "svg"}, headers=shop.headers)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert read_svg(svg.content, tmp_path) == [code["url"]]

    pdf = await client.get(image, params={"format": "pdf", "copies": 14}, headers=shop.headers)
    assert pdf.headers["content-type"] == "application/pdf"
    pages = read_pdf(pdf.content, tmp_path)
    assert [len(p) for p in pages] == [12, 2]  # 12 to an A4 page
    assert {url for page in pages for url in page} == {code["url"]}


async def test_a_sheet_of_several_codes(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, tmp_path: Path
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    first = await _make(client, shop, label="Till")
    second = await _make(client, shop, label="Door", target={"kind": "shop"})
    sheet = await client.get(
        f"{shop.base}/sheet",
        params={"ids": [first["id"], second["id"]], "copies": 2},
        headers=shop.headers,
    )
    assert sheet.status_code == 200, sheet.text
    (page,) = read_pdf(sheet.content, tmp_path)
    assert sorted(page) == sorted([first["url"]] * 2 + [second["url"]] * 2)
    every = await client.get(f"{shop.base}/sheet", headers=shop.headers)  # none ticked: all
    (page,) = read_pdf(every.content, tmp_path / "all")
    assert page == [second["url"], first["url"]]  # newest first

    other = await _shop(db, make_user, auth_headers, n=2)
    theirs = await _make(client, other)
    mixed = await client.get(
        f"{shop.base}/sheet", params={"ids": [first["id"], theirs["id"]]}, headers=shop.headers
    )
    assert mixed.status_code == 404

    # An archived code opens nothing: it is not printed, and the refusal names it.
    archived = await client.post(f"{shop.base}/{first['id']}/archive", headers=shop.headers)
    assert archived.status_code == 200
    refused = await client.get(
        f"{shop.base}/sheet", params={"ids": [first["id"], second["id"]]}, headers=shop.headers
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "archived"
    assert "Till" in refused.json()["detail"]
    (page,) = read_pdf(
        (await client.get(f"{shop.base}/sheet", headers=shop.headers)).content, tmp_path / "live"
    )
    assert page == [second["url"]]


async def test_files_are_drawn_off_the_event_loop(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 20-page sheet takes about a second of CPU: drawn on the event loop's thread it
    would hold up every other request of the process meanwhile."""
    loop_thread = threading.get_ident()
    drawn_on: list[int] = []
    real = qr_render.download

    def watched(*args: Any, **kwargs: Any) -> qr_render.File:
        drawn_on.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(qr_render, "download", watched)
    shop = await _shop(db, make_user, auth_headers)
    code = await _make(client, shop)
    for path in (f"/{code['id']}/image?format=png", f"/{code['id']}/image?format=pdf", "/sheet"):
        response = await client.get(shop.base + path, headers=shop.headers)
        assert response.status_code == 200, response.text
    assert len(drawn_on) == 3
    assert loop_thread not in drawn_on


async def test_targets_must_be_the_merchants_own_and_urls_safe(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    other = await _shop(db, make_user, auth_headers, n=2)
    their_draw = await _draw(db, other.merchant.id)

    async def status(body: dict[str, Any]) -> int:
        body = {"label": "x", **body}
        return (await client.post(shop.base, json=body, headers=shop.headers)).status_code

    assert await status({"target": {"kind": "product", "id": other.product.id}}) == 404
    assert await status({"target": {"kind": "shop", "id": other.product.shop_id}}) == 404
    assert await status({"dynamic": True, "target": {"kind": "draw", "id": their_draw}}) == 404
    assert await status({"target": {"kind": "product"}}) == 422
    # A static code opens a product or the shop only.
    assert await status({"target": {"kind": "url", "url": "/c/tea"}}) == 422
    for url in ("http://example.com/", "javascript:alert(1)", "//evil.example", "/\\evil"):
        assert await status({"dynamic": True, "target": {"kind": "url", "url": url}}) == 422, url
    assert await status({"label": " ", "target": {"kind": "shop"}}) == 422
    assert await status({"target": {"kind": "shop"}, "campaign_id": 999_999}) == 404
    assert await status({"dynamic": True, "target": {"kind": "url", "url": "/c/tea"}}) == 201
    https = {"dynamic": True, "target": {"kind": "url", "url": "https://a.cn/x"}}
    assert await status(https) == 201
    shop_code = await _make(client, shop, target={"kind": "shop"})
    assert shop_code["target"] == {"kind": "shop", "id": shop.product.shop_id, "url": None}


async def test_only_a_dynamic_codes_target_changes(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    static = await _make(client, shop)
    dynamic = await _make(client, shop, dynamic=True, target={"kind": "url", "url": "/c/tea"})
    draw_id = await _draw(db, shop.merchant.id)

    refused = await client.patch(
        f"{shop.base}/{static['id']}", json={"target": {"kind": "shop"}}, headers=shop.headers
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "static_code"
    relabelled = await client.patch(
        f"{shop.base}/{static['id']}", json={"label": "Counter"}, headers=shop.headers
    )
    assert relabelled.json()["label"] == "Counter"

    moved = await client.patch(
        f"{shop.base}/{dynamic['id']}",
        json={"target": {"kind": "draw", "id": draw_id}},
        headers=shop.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["target"] == {"kind": "draw", "id": draw_id, "url": None}
    assert moved.json()["token"] == dynamic["token"]  # the print stays valid
    landing = await client.get(_path(dynamic["url"]), headers={"user-agent": PHONE_UA})
    assert landing.status_code == 302
    assert landing.headers["location"] == f"/draws/{draw_id}?src=qr&qr={dynamic['token']}"


async def test_list_pages_by_cursor_and_archive(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = [await _make(client, shop, label=f"Code {i}") for i in range(3)]
    first = (await client.get(shop.base, params={"limit": 2}, headers=shop.headers)).json()
    assert [c["label"] for c in first["items"]] == ["Code 2", "Code 1"]
    rest = await client.get(
        shop.base, params={"limit": 2, "cursor": first["next_cursor"]}, headers=shop.headers
    )
    assert [c["label"] for c in rest.json()["items"]] == ["Code 0"]
    assert rest.json()["next_cursor"] is None

    archived = await client.post(f"{shop.base}/{made[0]['id']}/archive", headers=shop.headers)
    assert archived.json()["archived_at"] is not None
    live = (await client.get(shop.base, headers=shop.headers)).json()["items"]
    assert [c["id"] for c in live] == [made[2]["id"], made[1]["id"]]
    old = (await client.get(shop.base, params={"archived": True}, headers=shop.headers)).json()
    assert [c["id"] for c in old["items"]] == [made[0]["id"]]

    gone = await client.get(_path(made[0]["url"]), headers={"user-agent": PHONE_UA})
    assert gone.status_code == 404
    assert "This code is not in use" in gone.text
    assert await _scans(db, made[0]["id"]) == []
    unknown = await client.get("/q/NoSuchToken", headers={"user-agent": PHONE_UA})
    assert unknown.status_code == 404
    assert "This code is not in use" in unknown.text


# --- the landing -----------------------------------------------------------------------------


async def test_a_scan_shows_the_product_and_is_recorded(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    async with db.session() as s:
        await media.add_product_media(
            s, merchant=shop.merchant, product_id=shop.product.id, data=_real_png()
        )
    code = await _make(client, shop)
    landing = await client.get(
        _path(code["url"]),
        headers={"user-agent": PHONE_UA, "referer": "https://weixin.qq.com/"},
    )
    assert landing.status_code == 200, landing.text
    assert "Teapot 1" in landing.text
    assert "¥25.00" in landing.text
    assert re.search(r'<img src="/media/[^"]+" alt="Teapot 1"', landing.text)
    assert f'href="/products/{shop.product.id}"' in landing.text
    assert 'action="/cart/items"' in landing.text
    cookie = landing.headers["set-cookie"]
    assert f"{VISITOR_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=31536000" in cookie

    (scan,) = await _scans(db, code["id"])
    assert scan.device == "phone"
    assert scan.user_id is None
    assert scan.visitor == client.cookies[VISITOR_COOKIE]
    assert scan.merchant_id == shop.merchant.id
    assert scan.referrer == "https://weixin.qq.com/"

    # The same browser again: the same visitor, a second scan; a preview bot: none.
    again = await client.get(_path(code["url"]), headers={"user-agent": DESKTOP_UA})
    assert "set-cookie" not in again.headers or VISITOR_COOKIE not in again.headers["set-cookie"]
    client.cookies.clear()
    bot = await client.get(_path(code["url"]), headers={"user-agent": PREVIEW_UA})
    assert bot.status_code == 200
    assert VISITOR_COOKIE not in bot.headers.get("set-cookie", "")
    scans = await _scans(db, code["id"])
    assert [s.device for s in scans] == ["phone", "desktop"]
    assert scans[1].visitor == scan.visitor
    async with db.session() as s:
        row = await s.get(QrCode, code["id"])
        assert row is not None
        assert row.scans == 2


async def test_parallel_scans_each_count(db: Database, make_user: Any, auth_headers: Any) -> None:
    """Twelve phones scan at once on separate connections (real parallel transactions on
    PostgreSQL): the counter goes up by twelve, none lost to a read-then-write."""
    shop = await _shop(db, make_user, auth_headers)
    async with db.session() as s:
        code = await qr.create(
            s,
            merchant_id=shop.merchant.id,
            spec=qr.Spec("Till", qr.Target(qr.TargetKind.product, shop.product.id)),
        )
        qr_id = code.id

    async def one(n: int) -> None:
        async with db.session() as s:
            row = await s.get(QrCode, qr_id)
            assert row is not None
            event = await qr.scan(
                s, code=row, user_id=None, visitor=f"v{n}", user_agent=PHONE_UA, referrer=""
            )
            assert event is not None
            await s.commit()

    await asyncio.gather(*(one(n) for n in range(12)))
    assert len(await _scans(db, qr_id)) == 12
    async with db.session() as s:
        row = await s.get(QrCode, qr_id)
        assert row is not None
        assert row.scans == 12


async def test_a_signed_in_scan_is_the_persons(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.accounts import service as accounts

    shop = await _shop(db, make_user, auth_headers)
    code = await _make(client, shop, target={"kind": "shop"})
    shopper = await make_user()
    async with db.session() as s:
        token, _ = await accounts.issue_token(s, user=await s.merge(shopper), kind="session")
    client.cookies.set(SESSION_COOKIE, token)
    landing = await client.get(_path(code["url"]), headers={"user-agent": PHONE_UA})
    assert landing.status_code == 302
    assert landing.headers["location"] == f"/shops/{shop.product.shop_id}"
    (scan,) = await _scans(db, code["id"])
    assert scan.user_id == shopper.id


async def test_url_targets_redirect_and_count(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    page = await _make(client, shop, dynamic=True, target={"kind": "url", "url": "/c/tea?x=1"})
    away = await _make(client, shop, dynamic=True, target={"kind": "url", "url": "https://a.cn/"})
    for code, where in ((page, "/c/tea?x=1"), (away, "https://a.cn/")):
        landing = await client.get(_path(code["url"]), headers={"user-agent": PHONE_UA})
        assert landing.status_code == 302
        assert landing.headers["location"] == where
        assert len(await _scans(db, code["id"])) == 1


async def test_the_landing_shares_a_location_on_its_own_scan(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    code = await _make(client, shop)
    where = _path(code["url"]) + "/location"
    nobody = await client.post(where, data={"lat": "31.2304", "lng": "121.4737"})
    assert nobody.status_code == 404  # no scan of this browser to put it on

    await client.get(_path(code["url"]), headers={"user-agent": PHONE_UA})
    for lat, lng in (("91", "0"), ("0", "-180.5"), ("nan", "0"), ("north", "0")):
        bad = await client.post(where, data={"lat": lat, "lng": lng})
        assert bad.status_code == 422, (lat, lng)
    shared = await client.post(where, data={"lat": "31.2304", "lng": "121.4737"})
    assert shared.status_code == 204
    (scan,) = await _scans(db, code["id"])
    assert (scan.lat, scan.lng) == (31.2304, 121.4737)

    # Another browser cannot place someone else's scan.
    client.cookies.clear()
    other = await client.post(where, data={"lat": "0", "lng": "0"})
    assert other.status_code == 404


# --- statistics ------------------------------------------------------------------------------


async def test_stats_count_scans_by_day_and_device(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.campaigns import events
    from mobimart.campaigns.events import Kind

    shop = await _shop(db, make_user, auth_headers)
    code = await _make(client, shop)
    await client.get(_path(code["url"]), headers={"user-agent": PHONE_UA})
    await client.get(_path(code["url"]), headers={"user-agent": DESKTOP_UA})
    async with db.session() as s:
        await events.record(
            s,
            kind=Kind.qr_scan,
            visitor="v" * 22,
            merchant_id=shop.merchant.id,
            subject_id=code["id"],
            device="tablet",
            at=utcnow() - dt.timedelta(days=2),
        )
        await events.record(  # older than the 7-day window asked for
            s,
            kind=Kind.qr_scan,
            merchant_id=shop.merchant.id,
            subject_id=code["id"],
            device="phone",
            at=utcnow() - dt.timedelta(days=9),
        )
        await s.commit()
    stats = await client.get(f"{shop.base}/{code['id']}/stats?days=7", headers=shop.headers)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert len(body["by_day"]) == 7
    today = utcnow().date()
    assert body["by_day"][-1] == {"day": today.isoformat(), "scans": 2}
    two_days_ago = (today - dt.timedelta(days=2)).isoformat()
    assert body["by_day"][-3] == {"day": two_days_ago, "scans": 1}
    assert sum(d["scans"] for d in body["by_day"]) == 3
    assert body["devices"] == {"phone": 1, "desktop": 1, "tablet": 1}
    assert body["total_scans"] == 2  # the counter moves with real openings only
    assert body["orders"] == 0
    assert body["revenue"] == []

    other = await _shop(db, make_user, auth_headers, n=2)
    theirs = await client.get(f"{shop.base}/{code['id']}/stats", headers=other.headers)
    assert theirs.status_code == 404


# --- the console -----------------------------------------------------------------------------


async def _console(client: httpx.AsyncClient, db: Database, user: User) -> None:
    from mobimart.accounts import service as accounts

    async with db.session() as s:
        token, _ = await accounts.issue_token(s, user=await s.merge(user), kind="session")
    client.cookies.set(SESSION_COOKIE, token)
    client.cookies.set(CSRF_COOKIE, CSRF)


async def test_console_makes_shows_changes_and_archives_a_code(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    draw_id = await _draw(db, shop.merchant.id)
    await _console(client, db, shop.owner)
    base = f"/console/{shop.merchant.id}/qr"
    listing = await client.get(base)
    assert listing.status_code == 200
    assert "No QR codes yet" in listing.text

    refused = await client.post(
        base, data={"csrf_token": CSRF, "label": "Poster", "kind": "draw", "draw_id": draw_id}
    )
    assert refused.status_code == 422
    assert "dynamic code" in refused.text
    made = await client.post(
        base,
        data={
            "csrf_token": CSRF,
            "label": "Poster",
            "kind": "draw",
            "draw_id": str(draw_id),
            "product_id": "",
            "dynamic": "true",
            "url": "",
            "campaign_id": "",
        },
    )
    assert made.status_code == 303, made.text
    detail_url = made.headers["location"].split("?")[0]
    qr_id = int(detail_url.rsplit("/", 1)[1])
    detail = await client.get(detail_url)
    assert detail.status_code == 200
    preview = re.search(r'id="qr-preview" src="data:image/png;base64,([^"]+)"', detail.text)
    assert preview
    async with db.session() as s:
        code = await s.get(QrCode, qr_id)
        assert code is not None
        assert code.dynamic
        assert code.target_id == draw_id
    url = get_settings().base_url.rstrip("/") + "/q/" + code.token
    assert read_png(base64.b64decode(preview.group(1))) == [url]
    assert 'id="scans-data"' in detail.text
    assert f'href="{detail_url}/image?format=svg"' in detail.text
    png = await client.get(f"{detail_url}/image")
    assert read_png(png.content) == [url]

    changed = await client.post(
        detail_url,
        data={
            "csrf_token": CSRF,
            "label": "Poster, window",
            "kind": "product",
            "product_id": str(shop.product.id),
        },
    )
    assert changed.status_code == 303
    async with db.session() as s:
        code = await s.get(QrCode, qr_id)
        assert code is not None
        assert (code.label, code.target_kind, code.target_id) == (
            "Poster, window",
            "product",
            shop.product.id,
        )
    listing = await client.get(base)
    assert "Poster, window" in listing.text

    archived = await client.post(f"{detail_url}/archive", data={"csrf_token": CSRF})
    assert archived.status_code == 303
    assert f'id="qr-{qr_id}"' in (await client.get(base + "?archived=1")).text
    assert f'id="qr-{qr_id}"' not in (await client.get(base)).text


def _real_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("bad", ["x" * 17, "a.b", "%00"])
async def test_malformed_tokens_are_a_readable_404(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get(f"/q/{bad}", headers={"user-agent": PHONE_UA})
    assert response.status_code in (404, 422)
    assert response.status_code < 500
