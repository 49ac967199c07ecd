"""``paygo tls``: certificates for the outside doors (the broker's device listener, nginx in front of
the web app and the device API): a CA, the server certificate, per-device client certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devtools import tls
from paygo.cli.common import console, settings_or_exit

app = typer.Typer(help="TLS certificates for the device listener and the HTTPS doors.", no_args_is_help=True)


@app.command("init")
def tls_init(
    directory: Annotated[Path | None, typer.Option("--dir", help="where to write them (default PAYGO_TLS_DIR)")] = None,
    host: Annotated[
        list[str] | None, typer.Option(help="a name or address the server certificate is valid for (repeat)")
    ] = None,
    device: Annotated[list[str] | None, typer.Option(help="a unit serial to make a client certificate for")] = None,
    force: Annotated[bool, typer.Option(help="make everything again, a new CA included")] = False,
) -> None:
    """Make what is missing: ca.crt/ca.key, server.crt/server.key (default hosts: localhost, 127.0.0.1,
    ::1) and devices/SERIAL.crt/.key. Units get ca.crt to verify the broker; keep ca.key offline."""
    target = directory or tls.tls_dir(settings_or_exit())
    written = tls.init(target, host or (), device or (), force=force)
    for path in written:
        console.print(f"wrote {path}")
    if not written:
        console.print(f"nothing to do: {target} has its certificates (--force makes new ones)")
