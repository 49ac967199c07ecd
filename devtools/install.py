"""The Debian packages of the local stack's servers: which are missing, and installing them (root on Debian)."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
from pathlib import Path

from devtools.process import StackError, is_debian, is_root

log = logging.getLogger(__name__)


def pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for c in reversed(candidates):
        if (Path(c) / "postgres").exists() and (Path(c) / "initdb").exists():
            return Path(c)
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing_packages(tls: bool = False) -> list[str]:
    """Debian packages whose server binary this machine lacks (nginx only for the TLS stack)."""
    missing = ["nginx"] if tls and which("nginx") is None else []
    if pg_bindir() is None:
        missing.append("postgresql")
    if which("mosquitto") is None:
        missing.append("mosquitto")
    if which("redis-server") is None:
        missing.append("redis-server")
    return missing


# The high-availability stack's engines (``paygo stack up --ha``, docs/operations.md): Debian package
# and the program that shows it is installed.
HA_PROGRAMS = {
    "patroni": "patroni",
    "etcd-server": "etcd",
    "pgbackrest": "pgbackrest",
    "redis-sentinel": "redis-sentinel",
}


def missing_ha_packages() -> list[str]:
    """Debian packages of the HA stack (and the plain stack's) that this machine lacks."""
    return missing_packages() + [pkg for pkg, prog in HA_PROGRAMS.items() if which(prog) is None]


def ensure_installed(packages: list[str] | None = None) -> None:
    """Install missing server packages with apt-get when root on Debian, else say how."""
    pkgs = missing_packages() if packages is None else packages
    if not pkgs:
        return
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
    if not (is_root() and is_debian()):
        raise StackError(
            f"missing server packages: {' '.join(pkgs)}; install them with: sudo apt-get update && sudo {' '.join(cmd)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.warning("installing %s with apt-get", " ".join(pkgs))
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise StackError(f"'{' '.join(cmd)}' failed: {(err.stderr or '').strip()[-500:]}") from err
    still = [p for p in missing_packages(tls=True) + missing_ha_packages() if p in pkgs]
    if still:
        raise StackError(f"apt-get ran but {' '.join(still)} is still missing")
