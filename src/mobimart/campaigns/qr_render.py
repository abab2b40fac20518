"""Marketing QR codes as files to print: PNG and SVG of one code, and an A4 PDF sheet of
codes with their labels and short addresses under them. No database, no request."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fpdf import FPDF

from mobimart.infra import qr as qrimage

# PNG pixels per module: 4 is the least a phone reads from a screen, 40 makes a 1.3k-pixel
# image of a 33-module code, a poster from a print shop (more is only a bigger file).
MIN_SCALE, MAX_SCALE, DEFAULT_SCALE = 4, 40, 10
# A sheet: 3 columns by 4 rows of 50 mm codes on A4 (210 x 297 mm). 50 mm scans from about
# 2 m, the distance across a shop counter or a shelf; 20 pages is the most one request makes.
COLUMNS, ROWS = 3, 4
PER_PAGE = COLUMNS * ROWS
MAX_CELLS = 20 * PER_PAGE
_PAGE_W, _PAGE_H, _MARGIN = 210.0, 297.0, 10.0
_CODE_MM = 50.0
# Fonts that can print Chinese labels, then one for other scripts; the first one installed
# is used (Debian: fonts-noto-cjk or fonts-wqy-zenhei). Without any, labels print in
# Helvetica with the characters it lacks as "?".
_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)


@dataclass(frozen=True)
class Printable:
    label: str
    url: str  # what the code encodes, printed under it for people without a scanner


def png(url: str, *, scale: int = DEFAULT_SCALE) -> bytes:
    return qrimage.png(url, scale=max(MIN_SCALE, min(MAX_SCALE, scale)))


def svg(url: str) -> bytes:
    return qrimage.svg(url, scale=DEFAULT_SCALE)


def _font(pdf: FPDF) -> str:
    for path in _FONTS:
        if path.is_file():
            pdf.add_font("label", fname=str(path))
            return "label"
    return ""


def _fit(pdf: FPDF, text: str, width: float, unicode_font: bool) -> str:
    """The text, shortened with an ellipsis to fit the cell's width."""
    if not unicode_font:
        text = text.encode("latin-1", "replace").decode("latin-1")
    ellipsis = "…" if unicode_font else "..."
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + ellipsis) > width:
        text = text[:-1]
    return text + ellipsis


def sheet(codes: Sequence[Printable], *, copies: int = 1) -> bytes:
    """An A4 PDF: each code `copies` times, in a grid, label and address under each."""
    cells = [code for code in codes for _ in range(copies)][:MAX_CELLS]
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_creator("Mobimart")
    pdf.set_title("QR codes")
    family = _font(pdf)
    cell_w = (_PAGE_W - 2 * _MARGIN) / COLUMNS
    cell_h = (_PAGE_H - 2 * _MARGIN) / ROWS
    images: dict[str, bytes] = {}
    for index, code in enumerate(cells):
        if index % PER_PAGE == 0:
            pdf.add_page()
        row, column = divmod(index % PER_PAGE, COLUMNS)
        x = _MARGIN + column * cell_w
        y = _MARGIN + row * cell_h
        # 12 px a module: crisp at 300 dpi for a 50 mm code of up to 50 modules.
        image = images.setdefault(code.url, qrimage.png(code.url, scale=12))
        pdf.image(io.BytesIO(image), x=x + (cell_w - _CODE_MM) / 2, y=y + 4, w=_CODE_MM)
        pdf.set_font(family or "helvetica", size=11)
        pdf.set_xy(x, y + 4 + _CODE_MM + 1)
        text = _fit(pdf, code.label, cell_w - 4, bool(family))
        pdf.cell(w=cell_w, h=6, text=text, align="C")
        pdf.set_font(family or "helvetica", size=8)
        pdf.set_xy(x, y + 4 + _CODE_MM + 7)
        pdf.cell(w=cell_w, h=5, text=_fit(pdf, code.url, cell_w - 4, bool(family)), align="C")
    if not cells:
        pdf.add_page()
    return bytes(pdf.output())


Format = Literal["png", "svg", "pdf"]
MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}
MAX_COPIES = MAX_CELLS


@dataclass(frozen=True)
class File:
    data: bytes
    media_type: str
    filename: str


def download(
    codes: Sequence[Printable], *, fmt: Format, scale: int = DEFAULT_SCALE, copies: int = 1
) -> File:
    """One code as PNG or SVG, or codes on a PDF sheet, with a name to save it under."""
    if fmt == "pdf":
        name = _filename(codes[0].label) if len(codes) == 1 else "qr-codes"
        return File(sheet(codes, copies=copies), MEDIA_TYPES["pdf"], f"{name}.pdf")
    code = codes[0]
    data = png(code.url, scale=scale) if fmt == "png" else svg(code.url)
    return File(data, MEDIA_TYPES[fmt], f"{_filename(code.label)}.{fmt}")


def _filename(label: str) -> str:
    """An ASCII file name from the label (Content-Disposition quoting stays trivial)."""
    name = "".join(c if c.isascii() and c.isalnum() else "-" for c in label).strip("-")
    return "-".join(filter(None, name.split("-")))[:40].lower() or "qr-code"
