"""The openNDS FAS protocol: what the gateway sends at each level, the answer we build, and
what is refused (no open redirects, no clear-text tokens)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from mobimart.campaigns import wifi_fas
from mobimart.campaigns.wifi_fas import AlreadyOnline, FasError, FasParams

KEY = "c775e7b757ede630cd0aa1113bd10266"
TOKEN = "770bfe05"  # openNDS's client token: 8 hex characters
HID = hashlib.sha256(TOKEN.encode()).hexdigest()
# sha256(HID + KEY), computed with coreutils: `printf %s "$HID$KEY" | sha256sum`.
RHID = "004ac5b6dca4f9d1517126711d7eca80d8a1b224ef73abbb719e16d943b78a75"
LANDING = "https://shop.example/wifi/abc/welcome"


def opennds_fields(**override: str) -> str:
    """The comma-space list openNDS 10 builds (http_microhttpd.c, construct_querystring)."""
    fields = {
        "hid": HID,
        "clientip": "192.168.8.23",
        "clientmac": "04:15:52:6a:e4:ad",
        "client_type": "cpd_can",
        "cpi_query": "",
        "gatewayname": "Mall%20Wi-Fi",
        "gatewayurl": "http%3A%2F%2F192.168.8.1",
        "version": "10.3.0",
        "gatewayaddress": "192.168.8.1:2050",
        "gatewaymac": "0a:1b:2c:3d:4e:5f",
        "originurl": "http%3A%2F%2Fconnectivitycheck.gstatic.com%2Fgenerate_204",
        "clientif": "br-lan",
        "themespec": "",
        **override,
    }
    return ", ".join(f"{k}={v}" for k, v in fields.items()) + ", "


def level1(**override: str) -> dict[str, str]:
    return {"fas": base64.b64encode(opennds_fields(**override).encode()).decode()}


def test_rhid_is_sha256_of_hid_and_key() -> None:
    assert wifi_fas.rhid(HID, KEY) == RHID


def test_level_1_base64_is_read() -> None:
    params = wifi_fas.parse(level1(), KEY)
    assert params == FasParams(
        hid=HID,
        gatewayaddress="192.168.8.1:2050",
        authdir="opennds_auth",
        clientip="192.168.8.23",
        clientmac="04:15:52:6a:e4:ad",
        gatewayname="Mall Wi-Fi",
        originurl="http://connectivitycheck.gstatic.com/generate_204",
        level=1,
    )


def test_a_plus_in_the_base64_that_arrived_as_a_space_is_restored() -> None:
    # openNDS writes standard base64 into the URL unescaped; form decoding turns "+" into " ".
    for n in range(40):
        encoded = level1(clientif=f"br-lan ?>{'~' * n}")["fas"]
        if "+" in encoded:
            break
    else:
        pytest.fail("no sample with a '+' in its base64")
    params = wifi_fas.parse({"fas": encoded.replace("+", " ")}, KEY)
    assert isinstance(params, FasParams)
    assert params.hid == HID


def test_level_2_decrypts_with_the_key_and_takes_its_authdir() -> None:
    iv = "0123456789abcdef"
    fas = wifi_fas.encrypt(opennds_fields(authdir="my_auth"), iv, KEY)
    params = wifi_fas.parse({"fas": fas, "iv": iv}, KEY)
    assert isinstance(params, FasParams)
    assert (params.level, params.authdir, params.hid) == (2, "my_auth", HID)
    with pytest.raises(FasError, match="key"):
        wifi_fas.parse({"fas": fas, "iv": iv}, "another-key-entirely-0000000000")
    with pytest.raises(FasError):
        wifi_fas.parse({"fas": fas, "iv": "short"}, KEY)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_level_2_matches_openssl_as_php_calls_it() -> None:
    """openNDS encrypts with PHP's openssl_encrypt(text, 'aes-256-cbc', faskey, 0, iv): OpenSSL
    with the key NUL-padded to 32 bytes and the IV's characters as its bytes, base64 out."""
    iv = "fedcba9876543210"
    text = opennds_fields()
    key_hex = KEY.encode()[:32].ljust(32, b"\0").hex()
    inner = subprocess.run(
        [
            "openssl",
            "enc",
            "-aes-256-cbc",
            "-K",
            key_hex,
            "-iv",
            iv.encode().hex(),
            "-A",
            "-base64",
        ],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout.strip()
    fas = base64.b64encode(inner).decode()
    assert fas == wifi_fas.encrypt(text, iv, KEY)
    assert wifi_fas.decrypt(fas, iv, KEY) == text


def test_openNDS_5_to_7_plain_parameters_are_read() -> None:
    params = wifi_fas.parse(
        {
            "clientip": "10.1.0.7",
            "gatewayname": "Cafe",
            "hid": HID.upper(),
            "gatewayaddress": "10.1.0.1:2050",
            "redir": "http%3A%2F%2Fexample.com%2F",
        },
        KEY,
    )
    assert isinstance(params, FasParams)
    assert (params.hid, params.gatewayaddress, params.originurl) == (
        HID,
        "10.1.0.1:2050",
        "http://example.com/",
    )


def test_an_online_client_is_recognised() -> None:
    query = {"clientip": "192.168.8.23", "gatewayname": "Mall%20Wi-Fi", "status": "authenticated"}
    assert wifi_fas.parse(query, KEY) == AlreadyOnline("Mall Wi-Fi")


def test_the_auth_url_has_openNDS_shape() -> None:
    params = wifi_fas.parse(level1(), KEY)
    assert isinstance(params, FasParams)
    url = wifi_fas.auth_url(params, KEY, landing=LANDING)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "192.168.8.1:2050",
        "/opennds_auth/",
    )
    assert parse_qs(parts.query) == {"tok": [RHID], "redir": [LANDING]}
    with pytest.raises(FasError):
        wifi_fas.auth_url(params, KEY, landing="/relative")


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8:2050",  # a public host: the portal would be a redirector
        "evil.example:80",
        "192.168.8.1@evil.example",
        "192.168.8.1:99999",
        "192.168.8.1:80/x",
        "127.0.0.1:2050",
        "[fd00::1]:2050",
        "",
    ],
)
def test_gateway_addresses_off_the_local_network_are_refused(address: str) -> None:
    with pytest.raises(FasError):
        wifi_fas.parse(level1(gatewayaddress=address), KEY)


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "172.31.255.1:8080", "100.64.3.1:2050", "169.254.1.1:1"]
)
def test_private_gateway_addresses_are_accepted(address: str) -> None:
    params = wifi_fas.parse(level1(gatewayaddress=address), KEY)
    assert isinstance(params, FasParams)
    assert params.gatewayaddress == address


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"fas": "!!!not base64!!!"},
        {"fas": base64.b64encode(b"clientip=1.2.3.4, gatewayname=x").decode()},
        level1(hid="1234"),
        level1(hid="z" * 64),
        {"fas": "A" * (wifi_fas.MAX_FAS_LEN + 1)},
        # fas_secure_enabled 0: the token in clear, anyone could skip the portal.
        {"clientip": "10.0.0.2", "gatewayname": "x", "tok": TOKEN, "redir": "http://a/"},
        {"authaction": "http://10.0.0.1:2050/opennds_auth/", "tok": TOKEN},
    ],
)
def test_missing_or_garbled_parameters_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(FasError):
        wifi_fas.parse(query, KEY)


def test_an_encrypted_authdir_cannot_leave_its_directory() -> None:
    iv = "0123456789abcdef"
    for authdir in ("../admin", "a/b", "x?y=1", "a" * 40):
        fas = wifi_fas.encrypt(opennds_fields(authdir=authdir), iv, KEY)
        with pytest.raises(FasError):
            wifi_fas.parse({"fas": fas, "iv": iv}, KEY)
