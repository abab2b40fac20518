import base64
from typing import Any

from sqlalchemy import text

from mobimart.db import Database
from mobimart.infra import pii, rotation
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from tests import factories

NEW_KEY = "t2:" + base64.urlsafe_b64encode(b"N" * 32).decode()


async def test_rotation_reencrypts_every_value_and_file(db: Database, make_user: Any) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    merchant = await factories.merchant(db, owner, admin=admin)
    assert ("users", "phone") in rotation.encrypted_columns()
    assert ("merchants", "legal_rep_id_number") in rotation.encrypted_columns()

    settings = get_settings()
    old_keys = settings.pii_keys
    settings.pii_keys = type(old_keys)(f"{NEW_KEY},{old_keys.get_secret_value()}")
    pii.get_vault.cache_clear()
    try:
        first = await rotation.rotate_all(db)
        again = await rotation.rotate_all(db)
        async with db.session() as s:
            tokens = [
                t
                for (t,) in (
                    await s.execute(
                        text(
                            "SELECT phone FROM users UNION ALL SELECT contact_phone FROM merchants"
                        )
                    )
                ).all()
            ]
            docs = await merchants.documents(s, merchant_id=merchant.id)
            _, data = await merchants.read_document(
                s, merchant_id=merchant.id, document_id=docs[0].id
            )
        assert first.key_id == "t2"
        assert first.values >= 5
        assert first.files == 1
        assert again.values == 0
        assert again.files == 0
        assert all(t.startswith("t2:") for t in tokens)
        assert data == factories.PNG

        # The old key can now be dropped: everything still reads.
        settings.pii_keys = type(old_keys)(NEW_KEY)
        pii.get_vault.cache_clear()
        async with db.session() as s:
            m = await merchants.get(s, merchant_id=merchant.id)
            assert m.legal_rep_id_number == factories.resident_id(1)
    finally:
        settings.pii_keys = old_keys
        pii.get_vault.cache_clear()
