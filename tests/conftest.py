"""Shared fixtures. Integration and API tests run once on SQLite and once on PostgreSQL.

PostgreSQL is found at MOBIMART_TEST_PG (default: the local server, trust auth, database
`test`); each run creates its own database and drops it at the end. Where it is absent, the
PostgreSQL half is skipped with one line, except under CI=true, where absence fails.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

_VAR = Path(tempfile.mkdtemp(prefix="mobimart-test-"))
os.environ.update(
    {
        "MOBIMART_ENVIRONMENT": "test",
        "MOBIMART_VAR_DIR": str(_VAR),
        "MOBIMART_DATABASE_URL": f"sqlite+aiosqlite:///{_VAR}/unused.db",
        "MOBIMART_DB_POOL": "null",
        "MOBIMART_SMS_BACKEND": "outbox",
        "MOBIMART_PII_KEYS": "t1:" + base64.urlsafe_b64encode(b"T" * 32).decode(),
        "MOBIMART_PII_HASH_KEY": "test-hash-key",
        "MOBIMART_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }
)

import httpx  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from mobimart import models  # noqa: E402
from mobimart.accounts import service as accounts  # noqa: E402
from mobimart.accounts.models import User  # noqa: E402
from mobimart.app import create_app  # noqa: E402
from mobimart.db import Base, Database  # noqa: E402
from mobimart.migrate import upgrade  # noqa: E402
from mobimart.settings import get_settings  # noqa: E402

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "MOBIMART_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
_ = models


def call_in_thread(fn: Callable[[], T]) -> T:
    """Call `fn` on a thread of its own: it may start an event loop whatever the caller runs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def run_in_thread(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own loop, whatever loop the caller is in."""
    return call_in_thread(lambda: asyncio.run(factory()))


def absent(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    call_in_thread(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def _pg_execute(url: str, *statements: str) -> None:
    database = Database(url, null_pool=True)
    try:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await database.dispose()


def _pg_reachable() -> bool:
    try:
        run_in_thread(lambda: _pg_execute(PG_ADMIN_URL, "SELECT 1"))
        return True
    except Exception:
        return False


def _start_local_pg() -> None:
    if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in os.listdir("/etc/postgresql"):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                check=False,
                timeout=60,
            )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _pg_reachable():
        _start_local_pg()
        if not _pg_reachable():
            absent(f"PostgreSQL not reachable at {PG_ADMIN_URL.split('@')[-1]}")
    name = f"mobimart_test_{uuid.uuid4().hex[:10]}"
    run_in_thread(lambda: _pg_execute(PG_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    call_in_thread(lambda: upgrade(url))
    yield url
    run_in_thread(lambda: _pg_execute(PG_ADMIN_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    empty_pg(url)
    return url


# A PostgreSQL database's rows, table by table in dependency order, as the driver reads them.
PgSnapshot = list[tuple[str, list[str], list[tuple[Any, ...]]]]


async def _pg_driver(url: str) -> Any:
    """A plain asyncpg connection: SQLAlchemy's decode JSON into objects, which COPY's binary
    format cannot take back."""
    import asyncpg

    return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))


def pg_snapshot(url: str) -> PgSnapshot:
    """Every row of every table, to put back with `pg_restore` after `empty_pg`: much faster
    than building the same rows again through the services, and than copying the database
    (DROP DATABASE forces a checkpoint, a second or more each)."""

    async def read() -> PgSnapshot:
        driver = await _pg_driver(url)
        try:
            snapshot: PgSnapshot = []
            for table in Base.metadata.sorted_tables:
                rows = await driver.fetch(f'SELECT * FROM "{table.name}"')  # noqa: S608
                if rows:
                    snapshot.append((table.name, list(rows[0].keys()), [tuple(r) for r in rows]))
            return snapshot
        finally:
            await driver.close()

    return run_in_thread(read)


def pg_restore(url: str, snapshot: PgSnapshot) -> None:
    """Put a snapshot back into emptied tables and move each id sequence past its rows."""

    async def write() -> None:
        driver = await _pg_driver(url)
        try:
            for name, columns, records in snapshot:
                await driver.copy_records_to_table(name, records=records, columns=columns)
                if "id" in columns:
                    move = f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                    await driver.execute(move + f'(SELECT max(id) FROM "{name}"))')  # noqa: S608
        finally:
            await driver.close()

    run_in_thread(write)


def empty_pg(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # TRUNCATE skips row triggers, so the append-only audit log can be emptied between tests.
    run_in_thread(lambda: _pg_execute(url, f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's database. Whatever money the test moved, the ledger must balance after it
    (what `mobimart ledger check` checks)."""
    from mobimart.payments import ledger

    database = Database(database_url, null_pool=True)
    yield database
    async with database.session() as session:
        report = await ledger.check(session)
    await database.dispose()
    assert report.ok, report.problems


@pytest.fixture(autouse=True)
def _fresh_catalogue_replicas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Catalogue replicas are per process and database; PostgreSQL tests reuse one database.
    The change feed is read at every request unless a test sets the interval."""
    from mobimart.catalog import feed

    monkeypatch.setattr(feed, "FEED_POLL_S", 0.0)
    feed.reset()
    yield
    feed.reset()


@pytest.fixture(scope="session")
def _payment_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    """The gateway's RSA key pairs, made once (as `sandbox_keys` makes them in var/keys):
    two 2048-bit pairs for every app would cost more than most tests."""
    from mobimart.payments import service as payments

    return payments._keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(autouse=True)
def _fresh_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _payment_keys: tuple[object, ...]
) -> None:
    """Each test may change settings in place; they are restored after it."""
    from mobimart.payments import service as payments

    settings = get_settings()
    for name, value in settings.model_dump().items():
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setattr(settings, "var_dir", tmp_path / "var")
    monkeypatch.setattr(payments, "sandbox_keys", lambda: _payment_keys)


# --- the app and its callers -------------------------------------------------------------------


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    application = create_app(get_settings().model_copy(update={"database_url": database_url}))
    yield application
    await application.state.db.dispose()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


_phones = itertools.count(1)


@pytest.fixture
def new_phone() -> Callable[[], str]:
    """Fresh valid Chinese mobile numbers (+86 138 ...)."""
    return lambda: f"+86138{next(_phones):08d}"


def user_maker(db: Database) -> Callable[..., Any]:
    """`await make(admin=, name=, phone=)`: a user with a fresh number unless given one."""

    async def make(*, admin: bool = False, name: str = "", phone: str | None = None) -> User:
        phone = phone or f"+86138{next(_phones):08d}"
        async with db.session() as session:
            user = User(
                phone=phone,
                phone_hash=accounts.phone_hash(phone),
                display_name=name,
                is_admin=admin,
            )
            session.add(user)
            await session.commit()
            return user

    return make


def header_maker(db: Database) -> Callable[[User], Any]:
    """`await headers(user)`: a bearer token header for the user."""

    async def headers(user: User) -> dict[str, str]:
        async with db.session() as session:
            fresh = await session.get(User, user.id)
            assert fresh is not None
            token, _ = await accounts.issue_token(session, user=fresh, kind="api")
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def make_user(db: Database) -> Callable[..., Any]:
    return user_maker(db)


@pytest.fixture
def auth_headers(db: Database) -> Callable[[User], Any]:
    return header_maker(db)


@pytest.fixture
def read_code(db: Database) -> Callable[[str], Any]:
    """The newest one-time code texted to a number, read from the SMS outbox."""
    import re

    from sqlalchemy import select

    from mobimart.infra.pii import get_vault
    from mobimart.infra.sms.models import SmsMessage

    async def read(phone: str) -> str:
        async with db.session() as session:
            message = await session.scalar(
                select(SmsMessage)
                .where(SmsMessage.to_hash == get_vault().lookup_hash(phone))
                .order_by(SmsMessage.id.desc())
                .limit(1)
            )
        assert message is not None, f"no SMS to {phone}"
        found = re.search(r"\b(\d{6})\b", message.text)
        assert found, message.text
        return found.group(1)

    return read
