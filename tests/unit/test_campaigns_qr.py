"""The pure parts of marketing QR codes: the files a code is printed from (read back by
zbar, as a phone would). Which addresses a code may open: tests/unit/test_forms.py."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from mobimart.campaigns import qr_render
from mobimart.infra import qr as qrimage

URL = "http://127.0.0.1:8000/q/AbCdEfGhIjK"


def read(png: bytes) -> list[str]:
    return [
        s.data.decode() for s in decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    ]


def test_a_short_address_is_never_a_micro_qr() -> None:
    # segno would pick a Micro QR for this much data, which zbar and phones cannot read.
    assert qrimage.make("/q/x").designator.startswith(("1", "2", "3"))
    assert not qrimage.make("/q/x").is_micro
    assert read(qrimage.png("/q/x")) == ["/q/x"]


@pytest.mark.parametrize(("asked", "used"), [(1, 4), (4, 4), (10, 10), (40, 40), (500, 40)])
def test_png_scale_is_bounded(asked: int, used: int) -> None:
    png = qr_render.png(URL, scale=asked)
    modules = qrimage.make(URL).symbol_size(scale=1, border=qrimage.BORDER)[0]
    assert Image.open(io.BytesIO(png)).width == modules * used
    assert read(png) == [URL]


def test_svg_has_a_white_quiet_zone() -> None:
    svg = qr_render.svg(URL).decode()
    assert svg.startswith("<?xml")
    assert re.search(r'fill="#fff"', svg)


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


@pytest.mark.parametrize(
    ("codes", "copies", "pages"), [(1, 1, 1), (1, 12, 1), (2, 7, 2), (3, 1000, 20)]
)
def test_a_sheet_holds_twelve_codes_a_page_and_at_most_twenty_pages(
    codes: int, copies: int, pages: int
) -> None:
    printable = [qr_render.Printable(f"Code {i}", f"{URL}{i}") for i in range(codes)]
    pdf = qr_render.sheet(printable, copies=copies)
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == pages


def test_downloads_are_named_after_the_label() -> None:
    code = qr_render.Printable("Window poster, spring 春", URL)
    png = qr_render.download([code], fmt="png")
    assert (png.media_type, png.filename) == ("image/png", "window-poster-spring.png")
    svg = qr_render.download([code], fmt="svg")
    assert svg.filename == "window-poster-spring.svg"
    pdf = qr_render.download([code, code], fmt="pdf")
    assert (pdf.media_type, pdf.filename) == ("application/pdf", "qr-codes.pdf")
    assert (
        qr_render.download([qr_render.Printable("春季", URL)], fmt="png").filename == "qr-code.png"
    )
