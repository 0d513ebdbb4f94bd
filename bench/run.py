"""Run every benchmark and print their figures (`make bench`, `make bench-quick`).

Each benchmark is its own script (runnable alone, `--quick` for a small size)
that prints a table and writes `bench/results/<name>.json`; this runner runs
them one after another so they never compete for the machine, and ends with
a summary of where the results are.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from common import RESULTS_DIR

# (name, script, what it measures)
BENCHMARKS: list[tuple[str, str, str]] = [
    ("pipeline", "pipeline.py", "ingest end to end vs raw COPY; freshness at a steady rate"),
    ("ingest_batch", "ingest_batch.py", "CSV batch rows/s vs raw COPY"),
    ("ledger_lag", "ledger_lag.py", "ingest acceptance to the ledger's change feed"),
    ("search", "search.py", "public search over 1,000,000 enterprises vs raw SQL"),
    ("rules", "rules.py", "credit checks (single, batch) and full re-evaluation"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    failures = []
    for name, script, what in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            print(f"== {name}: {script} not present, skipped")
            continue
        print(f"\n== {name}: {what}", flush=True)
        started = time.monotonic()
        command = [sys.executable, str(path), *(["--quick"] if args.quick else [])]
        result = subprocess.run(command, check=False)
        print(f"-- {name} took {time.monotonic() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failures.append(name)
    print(f"\nresults in {RESULTS_DIR}/")
    if failures:
        print(f"failed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
