"""Cross-service fixtures: one running system per session, shared by the
end-to-end, security and fuzz tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ecips.runtime.ports import free_port
from tests.system import RELAXED_RATE_LIMITS, SERVICES, RunningSystem, private_data_dir


@pytest.fixture(scope="session")
def system() -> Iterator[RunningSystem]:
    ports = {name: free_port() for name in (*SERVICES, "postgres", "kafka")}
    running = RunningSystem(private_data_dir("ecips-e2e-"), ports, env=RELAXED_RATE_LIMITS)
    elapsed = running.start()
    print(f"\nall five services ready {elapsed:.1f} s after `ecips up`")
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()
    shutil.rmtree(running.data_dir.parent, ignore_errors=True)
