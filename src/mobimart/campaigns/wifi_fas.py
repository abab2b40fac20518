"""The openNDS forwarding-authentication (FAS) protocol, pure: read what the gateway sends,
build the address that lets the visitor online.

How openNDS calls a FAS (its `fas_secure_enabled` option):
- level 1 (the default): `?fas=<base64>`, the base64 of `hid=..., clientip=..., clientmac=...,
  gatewayname=..., gatewayaddress=..., originurl=..., clientif=...` (comma-space separated;
  gatewayname and originurl URL-encoded). openNDS 5-7 sent the same fields as plain
  parameters: `?clientip=&gatewayname=&hid=&gatewayaddress=&redir=`; both are read.
- level 2: `?fas=<base64 of openssl's base64 of AES-256-CBC>&iv=<16 characters>`, the same
  list plus `authdir`, encrypted with `faskey` (PHP's openssl: the key NUL-padded or cut to
  32 bytes, the IV's 16 characters used as its bytes, PKCS#7 padding).
- levels 3 and 4 need the `authmon` daemon polling an https FAS; not supported (say so).
- level 0 sends the client's token in clear: refused, anyone could skip the portal.

`hid` is sha256(client token); the FAS answers with `rhid = sha256(hid + faskey)` at
`http://<gatewayaddress>/<authdir>/?tok=<rhid>&redir=<landing page>`, which openNDS checks
against its own hash before opening the firewall for that client.

The redirect rule (no open redirect): the browser is sent only to an address that a gateway
on the visitor's own network can have: `gatewayaddress` must be a private IPv4 literal
(10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16) with an optional port; `authdir` is
`opennds_auth` unless the encrypted level-2 data names another (letters, digits, - and _);
the path and parameters are ours, and `redir` is always the portal's own welcome page, never
the URL the visitor or the query string asked for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mobimart.web.i18n import stored as _  # marks the messages for the catalogue

DEFAULT_AUTHDIR = "opennds_auth"
MAX_FAS_LEN = 4096  # openNDS's QUERYMAXLEN is 4096 bytes
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AUTHDIR = re.compile(r"[A-Za-z0-9_-]{1,32}")
_GATEWAY_NETS = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
)


class FasError(ValueError):
    """The gateway's parameters are missing, garbled or point somewhere they must not."""


@dataclass(frozen=True)
class FasParams:
    hid: str
    gatewayaddress: str  # "192.168.8.1:2050"
    authdir: str = DEFAULT_AUTHDIR
    clientip: str = ""
    clientmac: str = ""
    gatewayname: str = ""
    originurl: str = ""
    level: int = 1


@dataclass(frozen=True)
class AlreadyOnline:
    """openNDS sends `status=authenticated` when an online client opens the portal again."""

    gatewayname: str


def rhid(hid: str, fas_key: str) -> str:
    """The return hash openNDS expects as `tok`: sha256 of hid followed by faskey, in hex."""
    return hashlib.sha256((hid + fas_key).encode()).hexdigest()


def check_gateway(address: str) -> str:
    host, sep, port = address.strip().partition(":")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        raise FasError(_("The gateway address is not an IPv4 address.")) from None
    if not any(ip in net for net in _GATEWAY_NETS):
        raise FasError(_("The gateway address is not on a private network."))
    if sep:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise FasError(_("The gateway port is not a port number."))
        return f"{ip}:{int(port)}"
    return str(ip)


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(", "):
        name, sep, value = item.partition("=")
        if sep and name.strip() and name.strip() not in out:
            out[name.strip()] = value.strip()
    return out


def _b64(text: str) -> bytes:
    # openNDS puts standard base64 in the query string unescaped: its "+" arrives as a space.
    data = text.strip().replace(" ", "+")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise FasError(_("The gateway's data is not base64.")) from None


def decrypt(fas: str, iv: str, fas_key: str) -> str:
    """Level 2: the inverse of openNDS's `openssl_encrypt(..., 'aes-256-cbc', faskey, 0, iv)`
    wrapped in one more base64."""
    iv_bytes = iv.encode()
    if len(iv_bytes) != 16:
        raise FasError(_("The gateway's initialisation vector is not 16 characters."))
    ciphertext = _b64(_b64(fas).decode("ascii", "replace"))
    if not ciphertext or len(ciphertext) % 16:
        raise FasError(_("The gateway's encrypted data is garbled."))
    key = fas_key.encode()[:32].ljust(32, b"\0")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return (unpadder.update(padded) + unpadder.finalize()).decode()
    except (ValueError, UnicodeDecodeError):
        raise FasError(_("The gateway's data does not decrypt with this portal's key.")) from None


def encrypt(text: str, iv: str, fas_key: str) -> str:
    """What openNDS sends at level 2 (tests and the gateway simulator use it)."""
    key = fas_key.encode()[:32].ljust(32, b"\0")
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv.encode())).encryptor()
    ciphertext = encryptor.update(data) + encryptor.finalize()
    return base64.b64encode(base64.b64encode(ciphertext)).decode()


def parse(query: Mapping[str, str], fas_key: str) -> FasParams | AlreadyOnline:
    """Read the gateway's redirect, whatever level sent it; FasError when it cannot be used."""
    if query.get("status") == "authenticated":
        return AlreadyOnline(unquote(query.get("gatewayname", ""))[:80])
    if "tok" in query or "authaction" in query:
        raise FasError(
            _(
                "This gateway sends its client tokens in clear (fas_secure_enabled 0); "
                "set fas_secure_enabled to 1 or 2."
            )
        )
    fas = query.get("fas", "")
    if len(fas) > MAX_FAS_LEN:
        raise FasError(_("The gateway's data is too long."))
    level = 1
    authdir = DEFAULT_AUTHDIR
    if fas and query.get("iv"):
        fields = _fields(decrypt(fas, query["iv"], fas_key))
        level = 2
        authdir = fields.get("authdir") or DEFAULT_AUTHDIR
    elif fas:
        fields = _fields(_b64(fas).decode("utf-8", "replace"))
    else:
        fields = {k: query.get(k, "") for k in ("hid", "clientip", "gatewayname", "gatewayaddress")}
        fields["originurl"] = query.get("redir", "")
    hid = fields.get("hid", "").lower()
    if not hid or not fields.get("gatewayaddress"):
        raise FasError(_("Open this page through the Wi-Fi's sign-in screen."))
    if not _HEX64.fullmatch(hid):
        raise FasError(_("The gateway's client id is garbled."))
    if not _AUTHDIR.fullmatch(authdir):
        raise FasError(_("The gateway's authentication path is garbled."))
    return FasParams(
        hid=hid,
        gatewayaddress=check_gateway(fields["gatewayaddress"]),
        authdir=authdir,
        clientip=fields.get("clientip", "")[:45],
        clientmac=fields.get("clientmac", "")[:17],
        gatewayname=unquote(fields.get("gatewayname", ""))[:80],
        originurl=unquote(fields.get("originurl", ""))[:500],
        level=level,
    )


def auth_url(params: FasParams, fas_key: str, *, landing: str) -> str:
    """Where the browser goes once the visitor is verified: openNDS's authentication
    directory on the gateway, with the return hash and our landing page."""
    if not landing.startswith(("http://", "https://")):
        raise FasError(_("The landing page must be an absolute http(s) URL."))
    return (
        f"http://{check_gateway(params.gatewayaddress)}/{params.authdir}/"
        f"?tok={rhid(params.hid, fas_key)}&redir={quote(landing, safe='')}"
    )
