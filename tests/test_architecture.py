"""The shape of the code that the import contracts (.importlinter, run by ``make lint``) do not cover."""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def test_system_of_record_modules_stay_small_or_say_why() -> None:
    """A back-office module over 400 lines says in its docstring why it is one module."""
    too_long = []
    for path in sorted((ROOT / "backoffice").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "over 400 lines" not in doc.lower():
                too_long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not too_long, f"split these, or give the reason ('over 400 lines because …'): {too_long}"


MACHINE_CLOCK_SQL = re.compile(
    r"(?<![\w.])(now\(\)|current_date|current_timestamp|localtimestamp|clock_timestamp\(\))", re.IGNORECASE
)


def test_sql_reads_the_platforms_clock() -> None:
    """SQL says paygo_now() (the platform's clock, which PAYGO_NOW and pinned tests move: migration 0032),
    never the server's now(): ruff's banned-api rule covers Python, this covers the SQL in it and the
    migrations from 0032 on."""
    found = []
    sources = [p for pkg in ("backoffice", "ingest", "kpi", "paygo", "devtools") for p in (ROOT / pkg).rglob("*.py")]
    sources += [p for p in (ROOT / "backoffice" / "migrations").glob("*.sql") if p.name >= "0032"]
    for path in sorted(sources):
        if path.name in ("clock.py", "db.py", "migrate.py") or path.name.startswith("0032_"):
            continue  # the clock itself, the connection that tells the server the offset, migrations' own bookkeeping
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if MACHINE_CLOCK_SQL.search(line.split("--")[0]) and "datetime" not in line:
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "use paygo_now() (or a parameter from backoffice.clock):\n" + "\n".join(found)


# One deliberate violation per import contract of .importlinter: (contract id, module that gains the
# import, the import). Each must break its contract, so that a contract that can no longer fail is seen.
VIOLATIONS = [
    ("protocol-stands-alone", "protocol/topics.py", "import backoffice.config"),
    ("simulator-speaks-only-the-protocol", "firmware_sim/__init__.py", "import backoffice.config"),
    ("system-of-record", "backoffice/money.py", "import kpi"),
    ("ingest", "ingest/__init__.py", "import backoffice.tickets"),
    ("kpi", "kpi/__init__.py", "import backoffice.payments"),
    ("devtools", "backoffice/money.py", "import devtools.process"),
    ("packages-acyclic", "protocol/topics.py", "import paygo"),
    ("backoffice-domains", "backoffice/ledger/__init__.py", "import backoffice.tickets"),
]


def _lint_imports(tree: Path, contract: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--contract", contract],
        cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)},
    )  # fmt: skip


def test_every_import_contract_fails_on_a_deliberate_violation(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    config = configparser.ConfigParser()
    config.read(root / ".importlinter")
    prefix = "importlinter:contract:"
    ids = {s.removeprefix(prefix) for s in config.sections() if s.startswith(prefix)}
    assert ids == {contract for contract, _, _ in VIOLATIONS}, "every contract needs a violation here"
    packages = config["importlinter"]["root_packages"].split()
    for package in packages:
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
    shutil.copy(root / ".importlinter", tmp_path / ".importlinter")
    clean = _lint_imports(tmp_path, "ingest")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for contract, module, line in VIOLATIONS:
        path = tmp_path / module
        before = path.read_text()
        path.write_text(before + f"\n{line}  # deliberate violation\n")
        try:
            broken = _lint_imports(tmp_path, contract)
        finally:
            path.write_text(before)
        assert broken.returncode != 0, f"{contract} kept with {line!r} in {module}:\n{broken.stdout}"
        assert "BROKEN" in broken.stdout, broken.stdout
