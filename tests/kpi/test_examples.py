"""The worked examples of docs/kpi_definitions.md reproduced to 1e-9 relative, by the engine and by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kpi.engine import compute, load_portfolio

# The contract's examples live in ../shared beside the checkout; a copy is kept here so that a
# clone on its own still tests them. The shared folder wins when it is there (it may be newer).
_SHARED = Path(__file__).resolve().parents[3] / "shared" / "kpi" / "examples"
EXAMPLES = _SHARED if _SHARED.is_dir() else Path(__file__).resolve().parent / "examples"
CASES = sorted(EXAMPLES.glob("*/expected-*.json"))


def assert_close(got: Any, want: Any, path: str = "kpis") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {got} != {want}"
        for k in want:
            assert_close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=0 if want else 1e-12), path
    else:
        assert got == want, path


def _inputs(case: Path) -> tuple[Path, Path, Path | None]:
    d = case.parent
    company = d / "company.json"
    return d / "ledger.csv", d / "products.csv", company if company.exists() else None


def test_examples_are_present() -> None:
    assert len(CASES) >= 4, f"expected the worked examples under {EXAMPLES}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_engine_reproduces_example(case: Path) -> None:
    want = json.loads(case.read_text())
    got = compute(load_portfolio(*_inputs(case)), date.fromisoformat(want["as_of"]))
    assert {k: got[k] for k in ("as_of", "segment", "currency")} == {
        k: want[k] for k in ("as_of", "segment", "currency")
    }
    assert_close(got["kpis"], want["kpis"])


@pytest.mark.parametrize("example", sorted({c.parent for c in CASES}), ids=lambda p: p.name)
def test_cli_reproduces_every_as_of_of_an_example(example: Path, tmp_path: Path) -> None:
    cases = sorted(example.glob("expected-*.json"))
    ledger, products, company = _inputs(cases[0])
    args = [sys.executable, "-m", "paygo.cli", "kpi", "compute", "--ledger", str(ledger),
            "--products", str(products), "--format", "json"]  # fmt: skip
    if company:
        args += ["--company", str(company)]
    for c in cases:
        args += ["--as-of", json.loads(c.read_text())["as_of"]]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    results = {r["as_of"]: r for r in json.loads(out.stdout)}
    assert len(results) == len(cases)
    for c in cases:
        want = json.loads(c.read_text())
        assert results[want["as_of"]]["segment"] == "all"
        assert results[want["as_of"]]["currency"] == want["currency"]
        assert_close(results[want["as_of"]]["kpis"], want["kpis"])


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    ledger, products, company = _inputs(next(c for c in CASES if c.parent.name == "medium"))
    out = tmp_path / "kpi.html"
    args = [sys.executable, "-m", "paygo.cli", "kpi", "compute", "--ledger", str(ledger), "--products",
            str(products), "--company", str(company), "--as-of", "2023-03-31", "--as-of", "2024-06-30",
            "--by", "product_type", "--format", "html", "--out", str(out)]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    page = out.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # opens offline
    assert page.count("<tr>") == 1 + 2 * 6  # header + (all + 5 product types) per as-of date
    assert page.count('<path d="M') == 4  # the four time series
    assert "<rect" in page and "(155 units)" in page  # histograms over the latest portfolio
