"""Private file storage for uploads: content type sniffed from the bytes, size-limited, and
encrypted at rest (KYC documents carry identity photos)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from mobimart.errors import DomainError
from mobimart.infra.pii import get_vault

# Magic numbers of the types we accept; the client's Content-Type and file name are not trusted.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"%PDF-", 0, "application/pdf"),
    (b"WEBP", 8, "image/webp"),
)
DOCUMENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/pdf"})


def sniff_content_type(data: bytes) -> str | None:
    for magic, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if content_type == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return content_type
    return None


@dataclass(frozen=True)
class StoredFile:
    key: str
    content_type: str
    size: int
    sha256: str


class PrivateStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError("bad storage key")
        return self.root / key[:2] / key

    def save(self, data: bytes, *, allowed: frozenset[str], max_bytes: int) -> StoredFile:
        if not data:
            raise DomainError("empty_file", "The file is empty.", 422)
        if len(data) > max_bytes:
            raise DomainError(
                "file_too_large",
                f"The file is {len(data)} bytes; the limit is {max_bytes} bytes.",
                413,
            )
        content_type = sniff_content_type(data)
        if content_type not in allowed:
            raise DomainError(
                "unsupported_file_type",
                "Only " + ", ".join(sorted(allowed)) + " files are accepted.",
                415,
            )
        key = secrets.token_hex(16)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(get_vault().encrypt_bytes(data))
        return StoredFile(key, content_type, len(data), hashlib.sha256(data).hexdigest())

    def read(self, key: str) -> bytes:
        return get_vault().decrypt_bytes(self._path(key).read_bytes())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def rotate(self, key: str) -> bool:
        """Re-encrypt one file under the primary key; True when it was rewritten."""
        vault = get_vault()
        path = self._path(key)
        blob = path.read_bytes()
        if vault.key_id_of(blob) == vault.primary_id:
            return False
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(vault.encrypt_bytes(vault.decrypt_bytes(blob)))
        tmp.replace(path)
        return True
