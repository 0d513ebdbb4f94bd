"""Small TCP helpers shared by the embedded runtime pieces."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["free_port", "port_is_free", "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on *host* that nothing listens on right now.

    The port is only reserved while this function runs, so there is a small window in
    which another process may grab it; callers spawning a server should still treat a
    bind failure as a possible (if rare) outcome.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind *host*:*port* now.

    SO_REUSEADDR mirrors what PostgreSQL and tansu do, so sockets of a just-stopped server
    lingering in TIME_WAIT don't count as "in use"; a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    check: Callable[[], None] | None = None,
    interval: float = 0.05,
) -> None:
    """Block until a TCP connection to *host*:*port* succeeds.

    *check* is called before every attempt and may raise to abort early (e.g. when the
    child process that should open the port has exited).

    Raises:
        TimeoutError: if the port is not accepting connections within *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while True:
        if check is not None:
            check()
        try:
            with socket.create_connection((host, port), timeout=min(1.0, max(timeout, 0.1))):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"nothing accepted TCP connections on {host}:{port} within {timeout:.1f}s "
                f"(last error: {last_error})"
            )
        time.sleep(interval)
