"""QR code images, made in one place: the shop's collection QR, the payment code, shared
order links and marketing codes all draw through here.

Never a Micro QR: segno picks one for short data unless told not to, and phone scanners and
zbar cannot read it."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno

BORDER = 4  # the quiet zone the standard asks for, in modules


def make(data: str) -> segno.QRCode:
    # Level M (15 % recovery) survives a smudged or partly covered print and keeps a
    # 30-character URL at version 3 (29 modules), small enough to scan from a metre at 3 cm.
    return segno.make(data, error="m", micro=False)


def png(data: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    make(data).save(out, kind="png", scale=scale, border=BORDER)
    return out.getvalue()


def svg(data: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    # White light modules, not transparent: a code placed on a coloured or dark design
    # must still show its quiet zone, or scanners cannot find it.
    make(data).save(out, kind="svg", scale=scale, border=BORDER, light="#fff", xmldecl=True)
    return out.getvalue()


@dataclass(frozen=True)
class QrImage:
    uri: str  # a data: URI, so the page needs no second, authenticated request
    size: int  # pixels a side: shown at its own size, never blurred by scaling


def image(data: str, *, scale: int = 6) -> QrImage:
    qr = make(data)
    width, _height = qr.symbol_size(scale=scale, border=BORDER)
    return QrImage(str(qr.png_data_uri(scale=scale, border=BORDER)), int(width))
