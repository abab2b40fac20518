from pathlib import Path

import pytest

from mobimart.errors import DomainError
from mobimart.infra.storage import DOCUMENT_TYPES, PrivateStore, sniff_content_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
PDF = b"%PDF-1.7\n" + b"\x00" * 20
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (WEBP, "image/webp"),
        (b"<html><script>", None),
        (b"MZ\x90\x00", None),
        (b"RIFF....WAVE", None),
    ],
)
def test_sniffing_reads_the_bytes(data: bytes, kind: str | None) -> None:
    assert sniff_content_type(data) == kind


def test_store_encrypts_at_rest_and_reads_back(tmp_path: Path) -> None:
    store = PrivateStore(tmp_path)
    stored = store.save(PDF, allowed=DOCUMENT_TYPES, max_bytes=1000)
    on_disk = next(p for p in tmp_path.rglob("*") if p.is_file()).read_bytes()
    assert b"%PDF" not in on_disk
    assert store.read(stored.key) == PDF
    assert stored.content_type == "application/pdf"
    assert stored.size == len(PDF)


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty_file", 422),
        (PNG * 100, "file_too_large", 413),
        (b"GIF89a" + b"\x00" * 10, "unsupported_file_type", 415),
    ],
)
def test_store_refuses_bad_uploads(tmp_path: Path, data: bytes, code: str, status: int) -> None:
    with pytest.raises(DomainError) as err:
        PrivateStore(tmp_path).save(data, allowed=DOCUMENT_TYPES, max_bytes=1000)
    assert (err.value.code, err.value.status) == (code, status)
    assert not list(tmp_path.rglob("*"))


def test_storage_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad storage key"):
        PrivateStore(tmp_path).read("../../etc/passwd")
