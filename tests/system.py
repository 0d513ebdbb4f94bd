"""The whole system as the tests see it: started the way `make run` does
(`ecips up` on free ports and a temporary data directory) and driven over HTTP."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecips_common.identifiers import USCC_ALPHABET, make_uscc

SERVICES = ("ingest", "ledger", "publicity", "coordination", "rules")


@dataclass
class RunningSystem:
    data_dir: Path
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ecips.cli", *args]

    def start(self, timeout: float = 120.0) -> float:
        args = ["up", "--data-dir", str(self.data_dir)]
        for name in (*SERVICES, "postgres", "kafka"):
            args += [f"--{name}-port", str(self.ports[name])]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        }
        # The fuzz and matrix tests send hundreds of requests from one address;
        # the public rate limit itself is tested in the services' own suites.
        for service in ("PUBLICITY", "RULES", "COORDINATION"):
            env[f"ECIPS_{service}_RATE_LIMIT_PER_SECOND"] = "1000"
            env[f"ECIPS_{service}_RATE_LIMIT_BURST"] = "2000"
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(*args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        output = []
        for line in self.process.stdout:
            output.append(line)
            if "all services ready" in line:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        self.stop()
        raise AssertionError("the system did not start:\n" + "".join(output))

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
        return code

    def token(self, department: str, *scopes: str) -> dict[str, str]:
        token = subprocess.run(
            self.command(
                "token",
                "issue",
                "--data-dir",
                str(self.data_dir),
                "--department",
                department,
                "--scopes",
                ",".join(scopes),
            ),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until ``check`` returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


def new_uscc() -> str:
    return make_uscc(org_body="".join(random.choices(USCC_ALPHABET, k=8)), division="500103")
