"""``paygo db`` and ``paygo ledger``: the schema, the demo company, the ledger in the KPI format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paygo.cli.common import console, settings_or_exit, setup_logging

app = typer.Typer(help="Database schema and data.", no_args_is_help=True)
ledger_app = typer.Typer(help="The ledger of expected and received payments.", no_args_is_help=True)


@app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (safe to re-run), as the owner role: PAYGO_DATABASE_URL's user becomes
    paygo_owner, whose password the URL holds when it names that role (deploy/database.md)."""
    from backoffice.db import connect
    from backoffice.migrate import migrate

    settings = settings_or_exit()
    setup_logging(settings)
    with connect(settings, "migrate", autocommit=True) as conn:
        applied = migrate(conn)
    console.print(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@app.command("roles")
def db_roles() -> None:
    """Print the SQL that creates the platform's database roles, for a superuser to run once per cluster
    (`paygo db roles | psql -U postgres`); deploy/database.md."""
    from backoffice.migrate import ROLES_SQL

    print(ROLES_SQL.read_text(), end="")  # noqa: T201  (SQL for psql, not a message)


@app.command("seed-demo")
def db_seed_demo(customers: Annotated[int, typer.Option(help="customers, each with a unit")] = 50) -> None:
    """Seed the demo company (products, customers, units, contracts) into an empty database."""
    from backoffice.db import connect
    from devtools import demo_data

    settings = settings_or_exit()
    with connect(settings, "seed") as conn:
        created = demo_data.seed(conn, settings.secret_key, customers)
        conn.commit()
    console.print(f"seeded {created} customers with units" if created else "database already has products: left as is")


@ledger_app.command("export")
def ledger_export(
    out: Annotated[Path, typer.Option(help="directory for ledger.csv and products.csv", file_okay=False)],
    as_of: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD: received rows up to this date (the schedule is always whole)")
    ] = None,
) -> None:
    """Write the ledger and products table in the KPI engine's format (docs/kpi_definitions.md §1), for
    `paygo kpi compute`, auditors and investors."""
    from datetime import date

    from backoffice.db import connect
    from backoffice.ledger.export import export

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None
    with connect(settings_or_exit(), "export") as conn:
        ledger, products = export(conn, out, day)
    rows = sum(1 for _ in ledger.open("rb")) - 1
    console.print(f"wrote {rows:,} ledger rows to {ledger} and the products to {products}")
