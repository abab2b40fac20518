"""The payment gateway adapter interface and the Alipay-style "RSA2" signing it relies on.

Both directions are signed: what we send (checkout redirects, refund requests) with our private
key, what the provider sends (notifications, refund replies) with its key. Anything that arrives
unsigned or mis-signed is refused before a single field is trusted.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

SIGN_TYPE = "RSA2"
KEY_BITS = 2048  # what Alipay requires for RSA2
# Transport fields, not content: a signature cannot cover itself.
_UNSIGNED = frozenset({"sign", "sign_type"})


@dataclass(frozen=True)
class Notification:
    trade_no: str
    gateway_trade_no: str
    amount_minor: int
    currency: str
    status: str  # "paid"


@dataclass(frozen=True)
class RefundResult:
    refund_no: str
    amount_minor: int
    status: str


class Gateway(Protocol):
    name: str

    def checkout_url(
        self,
        *,
        trade_no: str,
        amount_minor: int,
        currency: str,
        subject: str,
        notify_url: str,
        return_url: str,
    ) -> str: ...

    def parse_notification(self, params: Mapping[str, str]) -> Notification: ...

    async def refund(
        self, *, trade_no: str, refund_no: str, amount_minor: int, currency: str
    ) -> RefundResult: ...


# --- signing -----------------------------------------------------------------------------------


def canonical(params: Mapping[str, str]) -> str:
    """`k=v&k=v` over the sorted keys, leaving out the signature fields and empty values."""
    return "&".join(
        f"{key}={params[key]}" for key in sorted(params) if key not in _UNSIGNED and params[key]
    )


def sign(params: Mapping[str, str], private_key: RSAPrivateKey) -> str:
    signature = private_key.sign(
        canonical(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def verify(params: Mapping[str, str], public_key: RSAPublicKey) -> bool:
    """True only for a well-formed signature by `public_key` over `params`; never raises on
    hostile input, since it runs on whatever a caller posts to us."""
    try:
        signature = base64.b64decode(params.get("sign") or "", validate=True)
        if not signature:
            return False
        public_key.verify(
            signature, canonical(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- keys --------------------------------------------------------------------------------------


def load_or_create_keypair(directory: Path, name: str) -> tuple[RSAPrivateKey, RSAPublicKey]:
    """`<name>.pem` (PKCS#8, mode 0600) and `<name>.pub.pem` (the half to give the provider)."""
    private_path = directory / f"{name}.pem"
    if not private_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_once(private_path, pem, 0o600)
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(private_key, RSAPrivateKey):
        raise ValueError(f"{private_path} does not hold an RSA private key")
    public_key = private_key.public_key()
    public_path = directory / f"{name}.pub.pem"
    if not public_path.exists():
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_once(public_path, pem, 0o644)
    return private_key, public_key


def load_public_key(pem: bytes) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def write_once(path: Path, data: bytes, mode: int) -> None:
    """Write `path` complete or not at all, never replacing it: two processes starting together
    must end up sharing one key, not each signing with a key the other overwrote."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # Created with its final mode, so the private key is never readable by others, not even
    # for the moment between write and chmod.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        # Losing the race is fine: the winner's key is the one everybody loads.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()
