"""mobimart serve | worker | migrate | demo | createadmin | words | rotate-keys | keygen"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mobimart.settings import get_settings

app = typer.Typer(
    help="Mobimart: mobile-first commerce and interactive marketing.", no_args_is_help=True
)
console = Console()


def _setup_logging() -> None:
    from mobimart.logs import configure

    configure()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from mobimart.migrate import upgrade

    settings = get_settings()
    if settings.database_url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    console.print("[green]Database is up to date.[/green]")


@app.command()
def demo() -> None:
    """Load demo data once (an admin, a shopper, 3 approved merchants, 240 products)."""
    from mobimart.db import Database
    from mobimart.demo.load import load

    if get_settings().is_production:
        console.print("[red]Demo data has a known admin password; refused in production.[/red]")
        raise typer.Exit(2)

    async def run() -> None:
        database = Database(get_settings().database_url)
        try:
            with console.status("Loading demo data…"):
                accounts = await load(database)
        finally:
            await database.dispose()
        table = Table(title="Demo sign-in (code from /dev/outbox, or the password)")
        table.add_column("who")
        table.add_column("mobile number")
        table.add_row("platform admin", accounts.admin)
        table.add_row("shopper", accounts.consumer)
        for phone in accounts.merchants:
            table.add_row("merchant owner", phone)
        console.print(table)
        console.print(f"Password for every demo account: [bold]{accounts.password}[/bold]")
        if not accounts.created:
            console.print("(demo data was already loaded)")

    asyncio.run(run())


@app.command()
def serve(
    host: str = typer.Option(None, help="Default: MOBIMART_HOST"),
    port: int = typer.Option(None, help="Default: MOBIMART_PORT"),
    workers: int = typer.Option(1, min=1, help="Processes (PostgreSQL for more than one)"),
) -> None:
    """Serve the API and the mobile site."""
    import uvicorn

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    _setup_logging()
    console.print(f"Mobimart is serving on [bold]http://{host}:{port}[/bold]")
    uvicorn.run(
        "mobimart.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_config=None,
    )


@app.command()
def worker(workers: int = typer.Option(2, min=1, help="Worker threads")) -> None:
    """Run background jobs (Huey)."""
    from mobimart.accounts import tasks  # noqa: F401  (registers the jobs)
    from mobimart.campaigns import tasks as campaign_tasks  # noqa: F401
    from mobimart.checkout import tasks as checkout_tasks  # noqa: F401
    from mobimart.infra.jobs import huey

    _setup_logging()
    console.print(f"Worker running on {type(huey.storage).__name__}")
    huey.create_consumer(workers=workers, periodic=True).run()


@app.command()
def createadmin(
    phone: str = typer.Argument(..., help="Mobile number, e.g. +8613900139000"),
) -> None:
    """Make the owner of a mobile number a platform admin (creating the account if needed)."""
    from mobimart.accounts import service as accounts
    from mobimart.db import Database
    from mobimart.errors import DomainError

    async def run() -> int:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                user = await accounts.ensure_admin(session, phone=phone)
                return user.id
        finally:
            await database.dispose()

    try:
        user_id = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"User {user_id} is a platform admin. They sign in with a code sent to the number."
    )


catalog_app = typer.Typer(help="Catalogue tools.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("import")
def catalog_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header row"),
    merchant: int = typer.Option(..., "--merchant", help="Merchant id (must be approved)"),
    publish: bool = typer.Option(False, help="Publish the products at once (else drafts)"),
) -> None:
    """Import products: name, price (e.g. 12.50), stock, category (slug), description."""
    from mobimart.catalog.importing import import_products, lines_of
    from mobimart.db import Database
    from mobimart.errors import DomainError
    from mobimart.merchants import service as merchants

    data = file.read_bytes()
    rows = max(data.count(b"\n") - 1, 0)

    async def run() -> None:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                owner = await merchants.get(session, merchant_id=merchant)
                with Progress(console=console) as progress:
                    task = progress.add_task("importing", total=rows)
                    report = await import_products(
                        session,
                        merchant=owner,
                        lines=lines_of(data),
                        publish=publish,
                        progress=lambda n: progress.advance(task, n),
                    )
        finally:
            await database.dispose()
        console.print(f"[green]{report.imported} products imported.[/green]")
        if report.errors:
            table = Table(title=f"{len(report.errors)} rows not imported")
            table.add_column("line", justify="right")
            table.add_column("reason")
            for line, reason in report.errors[:200]:
                table.add_row(str(line), reason)
            console.print(table)

    try:
        asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from None


ledger_app = typer.Typer(help="The money ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def ledger_check() -> None:
    """Check the ledger: all entries add up to zero, per currency and per transaction; every
    balance is the sum of its entries; no wallet or merchant account is below zero."""
    from mobimart.db import Database
    from mobimart.payments import ledger

    async def run() -> ledger.Report:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                return await ledger.check(session)
        finally:
            await database.dispose()

    report = asyncio.run(run())
    totals = ", ".join(f"{c} {t}" for c, t in sorted(report.total_by_currency.items())) or "none"
    console.print(
        f"{report.transactions} transactions, {report.entries} entries, {report.accounts} "
        f"accounts; sum of entries: {totals}"
    )
    for problem in report.problems:
        console.print(f"[red]✗[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)
    console.print("[green]✓[/green] the ledger balances")


words_app = typer.Typer(help="The blocked-word list.", no_args_is_help=True)
app.add_typer(words_app, name="words")


@words_app.command("import")
def words_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="UTF-8, one word or phrase a line; # comments"
    ),
) -> None:
    """Add words to the list; words listed already, or containing a listed one, are skipped."""
    from mobimart.db import Database
    from mobimart.moderation import wordlist

    lines = wordlist.lines_of(file.read_text(encoding="utf-8"))

    async def run() -> wordlist.ImportReport:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                with Progress(console=console) as progress:
                    task = progress.add_task("importing", total=len(lines))
                    return await wordlist.import_words(
                        session,
                        lines=lines,
                        admin_id=None,
                        progress=lambda n: progress.advance(task, n),
                    )
        finally:
            await database.dispose()

    report = asyncio.run(run())
    console.print(
        f"[green]{report.added} words added[/green]; {report.listed} listed already, "
        f"{len(report.covered)} blocked already by a shorter word, {len(report.invalid)} invalid."
    )
    for word, inside in report.covered[:50]:
        console.print(f"  {word} (blocked by {inside})", highlight=False)
    for line, reason in report.invalid[:50]:
        console.print(f"  line {line}: {reason}", highlight=False)


@words_app.command("export")
def words_export(
    file: Path | None = typer.Argument(None, dir_okay=False, help="Default: standard output"),
) -> None:
    """Write the list, one word a line, in a form `words import` reads back."""
    from mobimart.db import Database
    from mobimart.moderation import wordlist

    async def run() -> list[str]:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                return await wordlist.export_words(session)
        finally:
            await database.dispose()

    text = "".join(f"{word}\n" for word in asyncio.run(run()))
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        console.print(f"{text.count(chr(10))} words written to {file}.")


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt personal data under the first key of MOBIMART_PII_KEYS."""
    from mobimart.db import Database
    from mobimart.infra import rotation

    async def run() -> None:
        database = Database(get_settings().database_url)
        try:
            with Progress(console=console) as progress:
                result = await rotation.rotate_all(database, progress)
        finally:
            await database.dispose()
        console.print(
            f"Re-encrypted {result.values} values and {result.files} files under key "
            f"[bold]{result.key_id}[/bold]; {result.unchanged} were already current."
        )

    asyncio.run(run())


@app.command()
def keygen(key_id: str = typer.Argument(..., help="A short name for the new key, e.g. k2")) -> None:
    """Print a new PII key; put it first in MOBIMART_PII_KEYS, then run rotate-keys."""
    from mobimart.infra.pii import new_key_spec

    console.print(new_key_spec(key_id), soft_wrap=True, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
