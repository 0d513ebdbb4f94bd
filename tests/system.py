"""The whole system as the tests see it: started the way `make run` does
(`ecips up` on free ports and a temporary data directory) and driven over HTTP."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecips.stack import SERVICES
from ecips.system import RunningSystem
from ecips_common.identifiers import USCC_ALPHABET, make_uscc

__all__ = [
    "RELAXED_RATE_LIMITS",
    "SERVICES",
    "RunningSystem",
    "eventually",
    "new_uscc",
    "private_data_dir",
]

# The fuzz and matrix tests send hundreds of requests from one address; the
# public rate limit itself is tested in the services' own suites.
RELAXED_RATE_LIMITS = {
    f"ECIPS_{service}_RATE_LIMIT_{knob}": value
    for service in ("PUBLICITY", "RULES", "COORDINATION")
    for knob, value in (("PER_SECOND", "1000"), ("BURST", "2000"))
}


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


def private_data_dir(prefix: str) -> Path:
    """A data directory outside pytest's temporary tree: as root the embedded
    PostgreSQL runs as another user, and pytest resets its own base directory
    to 0700 whenever another session starts, which would lock the server out."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o711)
    return base / "data"
