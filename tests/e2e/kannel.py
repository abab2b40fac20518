"""A real Kannel (bearerbox + smsbox from Debian) for tests, configured from deploy/kannel.

The test process plays the SMSC: it connects to the fake-SMSC port as Kannel's
`fakesmsc` would and reads one line per outbound message: `sender receiver type payload`.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import absent
from tests.e2e.conftest import free_port

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "kannel" / "kannel.conf"


@dataclass
class Kannel:
    sendsms_url: str
    username: str
    password: str
    smsc: socket.socket

    def receive(self, sender: str, receiver: str, text: str) -> None:
        """A message from a phone to the service number, as the SMSC hands it to Kannel.
        Kannel 1.4.5's fake SMSC takes plain text (and 8-bit data) from phones, not UCS-2:
        Chinese inbound text is covered by the API tests."""
        assert text.isascii()
        assert "\n" not in text
        self.smsc.sendall(f"{sender} {receiver} text {text}\n".encode())

    def next_text(self, timeout: float = 10) -> tuple[str, str, str]:
        """Like next_message, joining the parts of a concatenated (long) message. Parts come as
        `udh <header> data <bytes>`; the header's last three bytes are reference, count and
        sequence number. Long replies here are UCS-2 (they carry “quotes”)."""
        parts: dict[int, bytes] = {}
        while True:
            sender, receiver, kind, payload = self._line(timeout)
            if kind != "udh":
                return sender, receiver, self._decode(kind, payload)
            header, _, rest = payload.partition(" ")
            udh = urllib.parse.unquote_to_bytes(header.replace("+", " "))
            data = urllib.parse.unquote_to_bytes(rest.removeprefix("data ").replace("+", " "))
            total, seq = udh[-2], udh[-1]
            parts[seq] = data
            if len(parts) == total:
                joined = b"".join(parts[i] for i in sorted(parts))
                return sender, receiver, joined.decode("utf-16-be")

    def _line(self, timeout: float) -> tuple[str, str, str, str]:
        self.smsc.settimeout(timeout)
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = self.smsc.recv(1)
            if not chunk:
                raise ConnectionError("Kannel closed the SMSC link")
            buffer += chunk
        sender, receiver, kind, payload = buffer.decode().rstrip("\n").split(" ", 3)
        return sender, receiver, kind, payload

    @staticmethod
    def _decode(kind: str, payload: str) -> str:
        if kind == "text":
            return payload
        raw = urllib.parse.unquote_to_bytes(payload.replace("+", " "))
        return raw.decode("utf-16-be" if kind == "ucs-2" else "latin-1")

    def next_message(self, timeout: float = 10) -> tuple[str, str, str]:
        """(sender, receiver, text) of the next message Kannel hands to the SMSC."""
        sender, receiver, kind, payload = self._line(timeout)
        return sender, receiver, self._decode(kind, payload)


INBOUND = "http://127.0.0.1:8000/api/v1/sms/inbound?secret=change-me-inbound"


def _config(var: Path, ports: dict[str, int], password: str, inbound: str | None) -> str:
    text = DEPLOY_CONF.read_text()
    if inbound is not None:
        assert INBOUND in text
        text = text.replace(INBOUND, inbound)
    replacements = {
        r"admin-port = \d+": f"admin-port = {ports['admin']}",
        r"smsbox-port = \d+": f"smsbox-port = {ports['box']}",
        r"bearerbox-port = \d+": f"bearerbox-port = {ports['box']}",
        r"sendsms-port = \d+": f"sendsms-port = {ports['sendsms']}",
        r"(?m)^port = \d+": f"port = {ports['smsc']}",
        r'log-file = "/var/log/kannel/(\w+)\.log"': rf'log-file = "{var}/\1.log"',
        r"password = change-me-sendsms": f"password = {password}",
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text)
        assert n, pattern
    return text


@contextmanager
def running_kannel(var: Path, inbound: str | None = None) -> Iterator[Kannel]:
    """Kannel from deploy/kannel.conf on free ports; `inbound` replaces the sms-service
    callback's base (URL and secret) to reach a server under test."""
    if not (shutil.which("bearerbox") or Path("/usr/sbin/bearerbox").exists()):
        absent("Kannel not installed (apt-get install kannel)")
    ports = {name: free_port() for name in ("admin", "box", "sendsms", "smsc")}
    conf = var / "kannel.conf"
    conf.write_text(_config(var, ports, "sendsms-test-pw", inbound))
    procs = [
        subprocess.Popen(
            ["/usr/sbin/bearerbox", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    ]
    try:
        _wait_port(ports["smsc"])
        smsc = socket.create_connection(("127.0.0.1", ports["smsc"]))
        procs.append(
            subprocess.Popen(
                ["/usr/sbin/smsbox", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_port(ports["sendsms"])
        _wait_status(ports["admin"])
        yield Kannel(
            f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms",
            "mobimart",
            "sendsms-test-pw",
            smsc,
        )
        smsc.close()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port}")


def _wait_status(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(
            f"http://127.0.0.1:{port}/status.txt", params={"password": "change-me-status"}
        )
        if "fake" in status.text and "online" in status.text:
            return
        time.sleep(0.1)
    raise TimeoutError("Kannel SMSC link not online")
