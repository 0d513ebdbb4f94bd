"""Cross-service fixtures: one running system per session, shared by the
end-to-end, security and fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecips.runtime.ports import free_port
from tests.system import RELAXED_RATE_LIMITS, SERVICES, RunningSystem


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    ports = {name: free_port() for name in (*SERVICES, "postgres", "kafka")}
    running = RunningSystem(
        tmp_path_factory.mktemp("ecips-e2e") / "data", ports, env=RELAXED_RATE_LIMITS
    )
    elapsed = running.start()
    print(f"\nall five services ready {elapsed:.1f} s after `ecips up`")
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()
