"""``make test-dates``: the whole suite as of several instants (PAYGO_NOW) and machine time zones (TZ),
a line per run, so that a suite that turns red with the calendar is seen before the calendar gets there.

    python -m devtools.test_dates                       # the instants and zones below
    python -m devtools.test_dates --at 2029-07-01T00:10:00+03:00 --tz UTC -- tests/backoffice
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from backoffice import clock

# The dates the suite must hold on: the first of a month (00:30 in Nairobi, still the last day of the
# month before in UTC), the 15th, the last day of a month late in the evening, 29 February, and
# 31 December 23:30 UTC (already 1 January in Nairobi).
INSTANTS = [
    "2027-03-01T00:30:00+03:00",
    "2027-06-15T12:00:00+03:00",
    "2027-04-30T23:45:00+03:00",
    "2028-02-29T09:00:00+03:00",
    "2027-12-31T23:30:00Z",
]
ZONES = ["UTC", "Asia/Phnom_Penh"]

# pytest's last line: "== 3 passed in 1.2s ==", or without the rules under -q.
_SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|error|errors|skipped|deselected)\b.* in [0-9.]+s.*?)\s*=*\s*$")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(instant: str, tz: str, pytest_args: list[str], logs: Path) -> tuple[int, str]:
    """The suite as of ``instant`` with the machine's time zone ``tz``: (exit code, pytest's summary)."""
    clock.parse_instant(instant)  # refuse a bad instant before ten minutes of tests
    env = {k: v for k, v in os.environ.items() if k != clock.ANCHOR_ENV}
    env.update({clock.NOW_ENV: instant, "TZ": tz})
    log = logs / f"{re.sub(r'[^0-9A-Za-z]+', '-', instant)}_{tz.replace('/', '-')}.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                              env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # fmt: skip
    summary = next((m.group(1) for line in reversed(log.read_text().splitlines()) if (m := _SUMMARY.search(line))),
                   f"no summary (see {log})")  # fmt: skip
    return done.returncode, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", action="append", help="an instant with its offset (repeatable); default: the five")
    parser.add_argument("--tz", action="append", help="a machine time zone (repeatable); default: UTC, Asia/Phnom_Penh")
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: the whole suite)")
    args = parser.parse_args()
    logs = Path(os.environ.get("PAYGO_HOME", ".paygo")) / "test-dates"
    logs.mkdir(parents=True, exist_ok=True)
    failed = 0
    for tz in args.tz or ZONES:
        for instant in args.at or INSTANTS:
            code, summary = run(instant, tz, args.pytest_args, logs)
            failed += code != 0
            _say(f"{'ok  ' if code == 0 else 'FAIL'} PAYGO_NOW={instant:<26} TZ={tz:<16} {summary}")
    _say(f"logs in {logs}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
