"""Scope matching: precision and recall on the scope table, and speed.

    .venv/bin/python services/coordination/bench/scope_matching.py [--quick]

Precision/recall count (scope, approval item) pairs: a true positive is an
expected item the matcher found. Speed: business scopes matched per second,
against the raw limit measured in the same run (a bare substring scan of every
keyword over the whole scope text, with no normalising, sections or clauses).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from ecips_coordination.catalogue import ApprovalCatalogue, load_approval_catalogue

TABLE = Path(__file__).resolve().parents[1] / "tests" / "scope_table.yaml"


def score(catalogue: ApprovalCatalogue, rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp = fp = fn = 0
    misses: list[str] = []
    for row in rows:
        found = {m.item.key for m in catalogue.match(row["scope"])}
        expected = set(row["expected"])
        tp += len(found & expected)
        fp += len(found - expected)
        fn += len(expected - found)
        if found != expected:
            misses.append(
                f"  {row['scope'][:60]}…  extra={sorted(found - expected)} "
                f"missing={sorted(expected - found)}"
            )
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"rows": len(rows), "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "misses": misses}  # fmt: skip


def speed(catalogue: ApprovalCatalogue, scopes: list[str], seconds: float) -> tuple[float, float]:
    keywords = [k for item in catalogue.items.values() for k in item.keywords]

    def rate(work: Any) -> float:
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            for scope in scopes:
                work(scope)
            count += len(scopes)
        return count / (time.perf_counter() - started)

    matched = rate(catalogue.match)
    raw = rate(lambda scope: [k for k in keywords if k in scope])
    return matched, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="0.5 s per speed figure")
    args = parser.parse_args()
    catalogue = load_approval_catalogue()
    table = yaml.safe_load(TABLE.read_text("utf-8"))
    print(f"catalogue {catalogue.version}: {len(catalogue.items)} approval items")
    for name in ("dev", "holdout", "holdout_blind"):
        result = score(catalogue, table[name])
        print(
            f"{name:13s} {result['rows']:3d} scopes  precision {result['precision']:.3f}  "
            f"recall {result['recall']:.3f}  (tp {result['tp']}, fp {result['fp']}, "
            f"fn {result['fn']})"
        )
        for miss in result["misses"]:
            print(miss)
    scopes = [row["scope"] for name in ("dev", "holdout", "holdout_blind") for row in table[name]]
    matched, raw = speed(catalogue, scopes, 0.5 if args.quick else 3.0)
    print(
        f"speed    {matched:,.0f} scopes/s matched; raw keyword scan {raw:,.0f} scopes/s; "
        f"ratio {matched / raw:.2f}"
    )


if __name__ == "__main__":
    main()
