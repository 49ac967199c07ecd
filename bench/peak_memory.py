"""Run a Python script and write its peak resident memory (VmHWM, in kB) to a file when it exits.

The kernel's ru_maxrss of a child also counts what the parent had when it forked, so a parent that
grew (say, by generating the benchmark data) inflates it; VmHWM belongs to the new program alone.

    python bench/peak_memory.py OUT.txt SCRIPT [ARGS...]
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def _report(out: Path) -> None:
    status = Path("/proc/self/status").read_text()
    out.write_text(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


if __name__ == "__main__":
    out_file = Path(sys.argv[1])
    sys.argv = sys.argv[2:]
    atexit.register(_report, out_file)
    runpy.run_path(sys.argv[0], run_name="__main__")
