"""A handle on a whole system started the way `make run` does (`ecips up` on
chosen ports and data directory), for tests and benchmarks that drive it over
HTTP and inject faults into its processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecips.stack import SERVICES


@dataclass
class RunningSystem:
    data_dir: Path
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

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
        env.update(self.env)
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
                # Keep draining the supervisor's output so it never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        self.stop()
        raise AssertionError("the system did not start:\n" + "".join(output))

    def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
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

    def pid(self, name: str) -> int:
        """The pid of a service, ``postgres`` or ``broker`` (from ``<data-dir>/run``)."""
        return int((self.data_dir / "run" / f"{name}.pid").read_text())
