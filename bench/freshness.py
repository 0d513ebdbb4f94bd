"""Freshness: how long from ingest's 202 to the enterprise being found by
the public search, against a running system (`make run`).

    .venv/bin/python bench/freshness.py --count 50

Prints p50/p95/max in milliseconds; figures, not assertions.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time

import httpx

from ecips_common.identifiers import USCC_ALPHABET, make_uscc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--publicity", default="http://127.0.0.1:8003")
    parser.add_argument("--data-dir", default=".ecips")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=50.0,
        help="search polling interval (stay under the public rate limit)",
    )
    args = parser.parse_args()
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecips.cli",
            "token",
            "issue",
            "--data-dir",
            args.data_dir,
            "--department",
            "CQ-SAMR",
            "--scopes",
            "records:write",
            "--ttl-days",
            "1",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    delays: list[float] = []
    with httpx.Client(timeout=10) as http:
        for n in range(args.count):
            uscc = make_uscc(
                org_body="".join(random.choices(USCC_ALPHABET, k=8)), division="500106"
            )
            name = f"重庆测速{n:04d}科技有限公司"
            body = {
                "category": "registration",
                "source_id": f"BENCH-{uscc}",
                "uscc": uscc,
                "enterprise_name": name,
                "occurred_on": "2025-01-02",
                "data": {
                    "name": name,
                    "legal_representative": "王五",
                    "enterprise_type": "有限责任公司",
                    "established_on": "2025-01-02",
                    "address": "重庆市沙坪坝区",
                    "business_scope": "一般项目：软件开发",
                    "registration_authority": "沙坪坝区市场监督管理局",
                },
            }
            response = http.post(f"{args.ingest}/v1/records", json=body, headers=headers)
            response.raise_for_status()
            accepted = time.perf_counter()
            while True:
                found = http.get(f"{args.publicity}/v1/search", params={"q": uscc})
                if found.status_code == 429:  # the public rate limit: wait as told
                    time.sleep(float(found.headers.get("Retry-After", "1")))
                    continue
                if found.json()["items"]:
                    delays.append((time.perf_counter() - accepted) * 1000)
                    break
                if time.perf_counter() - accepted > 60:
                    print(f"{uscc} not public after 60 s", file=sys.stderr)
                    return 1
                time.sleep(args.poll_ms / 1000)
    print(f"(the search is polled every {args.poll_ms:.0f} ms; that is the resolution)")
    delays.sort()
    p95 = delays[max(0, int(len(delays) * 0.95) - 1)]
    print(
        f"202 → public search, {len(delays)} registrations: "
        f"p50 {statistics.median(delays):.0f} ms, p95 {p95:.0f} ms, max {delays[-1]:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
