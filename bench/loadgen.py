"""A load generator in a process of its own: keep-alive HTTP/1.1 over plain
asyncio streams (a client library would be the bottleneck) at a fixed
concurrency, cycling through a file of requests; prints one JSON line with
requests, errors, elapsed seconds, requests/s and p50/p95/p99 in ms.

    .venv/bin/python bench/loadgen.py --port 8003 --requests reqs.ndjson \
        --concurrency 8 --seconds 10

Each line of the requests file: {"method": "GET", "path": "/v1/search?q=..."}
with an optional "body" (sent as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import percentile


def latency_figures(latencies: Sequence[float], elapsed: float) -> dict[str, float]:
    """Requests/s and p50/p95/p99 in milliseconds, from latencies in seconds."""
    figures = {f"p{q}": percentile(latencies, q) * 1000 for q in (50, 95, 99)}
    figures["per_second"] = len(latencies) / elapsed if elapsed > 0 else 0.0
    return figures


def encode(request: dict[str, Any]) -> bytes:
    method, path = request.get("method", "GET"), request["path"]
    if "body" not in request:
        return f"{method} {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    body = json.dumps(request["body"], ensure_ascii=False).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def generate(
    port: int, requests: list[bytes], concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        writer.write(random.choice(requests))
        status = int((await reader.readline()).split()[1])
        length, chunked = 0, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            await reader.readexactly(length)
            return status
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status

    async def worker(until: float, record: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                status = await exchange(reader, writer)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                if record:
                    latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    if warmup > 0:
        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(warm_until, False) for _ in range(concurrency)))
        errors.clear()
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + seconds, True) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed": elapsed,
        "concurrency": concurrency,
        **latency_figures(latencies, elapsed),
    }


def run_load(
    port: int,
    requests: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 0.5,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the generator in a second process against ``port`` and return its figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False, encoding="utf-8") as out:
        for request in requests:
            out.write(json.dumps(request, ensure_ascii=False) + "\n")
        path = out.name
    try:
        output = subprocess.run(
            [sys.executable, __file__, "--port", str(port), "--requests", path,
             "--concurrency", str(concurrency), "--seconds", str(seconds),
             "--warmup", str(warmup)],
            env=env if env is not None else dict(os.environ),
            check=True,
            capture_output=True,
            text=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(path)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="file of JSON request lines")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    lines = Path(args.requests).read_text(encoding="utf-8").splitlines()
    requests = [encode(json.loads(line)) for line in lines if line.strip()]
    result = asyncio.run(generate(args.port, requests, args.concurrency, args.seconds, args.warmup))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
