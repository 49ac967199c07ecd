"""``paygo users``: staff logins and roles, and API tokens for integrations (run on the server, by an
operator; what it does is in the audit trail as ``cli:<os user>``)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Annotated, TypeVar

import psycopg
import typer
from rich.table import Table

from backoffice.audit.schemas import Actor
from paygo.cli.common import console, err_console, settings_or_exit

app = typer.Typer(help="Staff logins, roles and API tokens.", no_args_is_help=True)

T = TypeVar("T")
ROLE_HELP = "admin, finance, call_centre, field_agent or viewer (repeat for several)"


def _staff(work: Callable[[psycopg.Connection, Actor], T]) -> T:
    """``work`` in one transaction, as the operator; a refusal is printed and exits 1."""
    from backoffice.db import connect
    from backoffice.staff import service

    with connect(settings_or_exit(), "users") as conn:
        try:
            with conn.transaction():
                return work(conn, Actor(f"cli:{getpass.getuser()}"))
        except service.StaffError as err:
            err_console.print(f"[red]{err}[/]")
            raise typer.Exit(1) from None


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the login (lower-case letters, digits, '.', '_', '-')")],
    role: Annotated[list[str], typer.Option("--role", help=ROLE_HELP)],
) -> None:
    """Add a member of staff; prints a one-time password, which they must change at their first login."""
    from backoffice.staff import service

    password = _staff(lambda conn, actor: service.add_user(conn, name, role, actor))
    console.print(f"added {name.strip().lower()} ({', '.join(sorted(set(role)))}); one-time password: {password}")


@app.command("reset")
def reset(name: Annotated[str, typer.Argument(help="the login")]) -> None:
    """Give a user a new one-time password (a forgotten password); their sessions end."""
    from backoffice.staff import service

    password = _staff(lambda conn, actor: service.reset_password(conn, name, actor))
    console.print(f"{name}: one-time password {password}")


@app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="the login")]) -> None:
    """Disable a user: their sessions end at once and they cannot log in."""
    _set_disabled(name, True)


@app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="the login")]) -> None:
    """Let a disabled user log in again."""
    _set_disabled(name, False)


def _set_disabled(name: str, disabled: bool) -> None:
    from backoffice.staff import service

    _staff(lambda conn, actor: service.set_disabled(conn, name, disabled, actor))
    console.print(f"{name} {'disabled' if disabled else 'enabled'}")


@app.command("list")
def list_users() -> None:
    """Every user, their roles and state."""
    from backoffice.db import connect
    from backoffice.staff import repository

    table = Table("user", "roles", "state")
    with connect(settings_or_exit(), "users") as conn:
        for u in repository.list_users(conn):
            state = "disabled" if u.disabled_at else "must change password" if u.must_change_password else "active"
            table.add_row(u.username, ", ".join(u.roles), state)
    console.print(table)


@app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="the integration the token is for")],
    role: Annotated[list[str], typer.Option("--role", help=ROLE_HELP)],
    owner: Annotated[str, typer.Option("--owner", help="the member of staff it answers to: disabling them stops it")],
) -> None:
    """Create an API token (Authorization: Bearer …) for an integration; it is shown once. It works while
    its owner's login is enabled."""
    from backoffice.staff import service

    token_id, value = _staff(lambda conn, actor: service.create_token(conn, name, role, actor, owner))
    console.print(f"token {token_id} for {name}: {value}")
    console.print("[dim]shown once: only its hash is kept[/]")


@app.command("revoke-token")
def revoke_token(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    """Revoke an API token: it stops working at once."""
    from backoffice.staff import service

    _staff(lambda conn, actor: service.revoke_token(conn, token_id, actor))
    console.print(f"token {token_id} revoked")
