"""The shape of the code that the import contracts (.importlinter, run by ``make lint``) do not cover."""

from __future__ import annotations

import ast
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
