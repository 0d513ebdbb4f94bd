"""`make bench` keeps working: every benchmark runs in its quick size from this
checkout and writes its figures (what they are is the benchmark's business,
never asserted here; that they exist, and that nothing was lost on the way, is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("pipeline", "ingest_batch", "ledger_lag", "search", "rules")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench-results")
    # Results go to a directory of their own: the committed full-size figures stay.
    env = {**os.environ, "ECIPS_BENCH_RESULTS_DIR": str(out)}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"results in {out}/" in run.stdout
    return {name: json.loads((out / f"{name}.json").read_text()) for name in BENCHMARKS}


def test_every_benchmark_writes_its_figures_with_the_machine(
    results: dict[str, dict[str, Any]],
) -> None:
    for name, result in results.items():
        assert result["benchmark"] == name
        assert result["machine"]["cpus"] >= 1


def test_pipeline_counts_every_record_to_the_public_read_model(
    results: dict[str, dict[str, Any]],
) -> None:
    pipeline = results["pipeline"]
    through, fresh = pipeline["throughput"], pipeline["freshness"]
    assert (through["records"], through["rejected"]) == (5000, 0)
    assert through["records_per_second"] > 0 and through["raw_copy_rows_per_second"] > 0
    assert fresh["not_accepted"] == {}
    assert fresh["to_public_search"]["samples"] > 0
    assert fresh["to_public_search"]["not_seen_within_60_s"] == 0
    assert fresh["to_credit_check"]["not_seen_within_60_s"] == 0


def test_ingest_and_the_ledger_lose_nothing_on_the_way(
    results: dict[str, dict[str, Any]],
) -> None:
    batch = results["ingest_batch"]
    assert batch["accepted"] + batch["rejected"] == batch["rows"]
    assert batch["events"] == batch["accepted"]
    lag = results["ledger_lag"]
    assert lag["accepted"] > 0
    assert (lag["rejected"], lag["not_on_feed"], lag["duplicates"]) == (0, 0, 0)


def test_queries_are_measured_beside_their_raw_limit(results: dict[str, dict[str, Any]]) -> None:
    assert set(results["search"]["under_load"]) >= {"name fragment", "USCC", "profile"}
    checks = results["rules"]["checks"]
    assert any(key.startswith("raw asyncpg") for key in checks)
    assert any(key.startswith("batch POST") for key in checks)
