"""The whole system on one machine: embedded Postgres and broker (unless
external ones are given), then the five services as supervised processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from ecips.runtime.broker import EmbeddedBroker
from ecips.runtime.postgres import EmbeddedPostgres
from ecips_common.auth import generate_signing_key, issue_token
from ecips_common.contracts import TOPIC_PARTITIONS

logger = logging.getLogger("ecips.stack")

SERVICES: tuple[str, ...] = ("ingest", "ledger", "publicity", "coordination", "rules")
DEFAULT_PORTS: dict[str, int] = {
    "ingest": 8001,
    "ledger": 8002,
    "publicity": 8003,
    "coordination": 8004,
    "rules": 8005,
}
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_KAFKA_PORT = 19092
# Services follow each other's change feeds and look up enterprises in the ledger.
SERVICE_TOKEN_SCOPES = ("changes:read", "ledger:read")


@dataclass(frozen=True)
class SigningKeyFiles:
    private: Path
    public: Path


def ensure_signing_key(data_dir: Path) -> SigningKeyFiles:
    """The data directory's Ed25519 key pair, created on first use."""
    keys = data_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    files = SigningKeyFiles(keys / "signing-key.pem", keys / "signing-key.pub.pem")
    if not files.private.exists():
        private, public = generate_signing_key()
        fd = os.open(files.private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        files.public.write_bytes(public)
    return files


def issue_data_dir_token(
    data_dir: Path,
    *,
    department: str,
    scopes: list[str],
    ttl_seconds: int,
    subject: str | None = None,
) -> str:
    files = ensure_signing_key(data_dir)
    return issue_token(
        files.private.read_bytes(),
        department=department,
        scopes=scopes,
        ttl_seconds=ttl_seconds,
        subject=subject,
    )


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
        self.log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"ecips_{self.name}.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "10",
            ],
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_file is not None:
            self.log_file.close()


@dataclass
class StackConfig:
    data_dir: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    postgres_port: int = DEFAULT_POSTGRES_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    log_level: str = "INFO"


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.services: list[ServiceProcess] = []
        self._stopping = threading.Event()

    def start(self, *, ready_timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        keys = ensure_signing_key(self.data_dir)
        database_url = self.config.database_url
        if database_url is None:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres", self.config.postgres_port)
            _say(
                f"starting PostgreSQL on 127.0.0.1:{self.config.postgres_port} "
                f"(data in {self.data_dir / 'postgres'})"
            )
            self.postgres.start()
            database_url = self.postgres.url
        bootstrap = self.config.kafka_bootstrap_servers
        if bootstrap is None:
            self.broker = EmbeddedBroker(
                self.config.kafka_port, log_path=self.data_dir / "logs" / "broker.log"
            )
            _say(f"starting the Kafka-protocol broker on 127.0.0.1:{self.config.kafka_port}")
            self.broker.start(TOPIC_PARTITIONS)
            bootstrap = self.broker.bootstrap_servers
        service_token = issue_token(
            keys.private.read_bytes(),
            department="SYSTEM",
            scopes=SERVICE_TOKEN_SCOPES,
            subject="service:ecips",
            ttl_seconds=365 * 24 * 3600,
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ECIPS_JWT_PUBLIC_KEY_FILE": str(keys.public),
            "ECIPS_SERVICE_TOKEN": service_token,
            "ECIPS_LOG_LEVEL": self.config.log_level,
            "PYTHONUNBUFFERED": "1",
        }
        for name in SERVICES:
            env[f"ECIPS_{name.upper()}_URL"] = f"http://127.0.0.1:{self.config.ports[name]}"
        # The workbench (ingest's /workbench) calls coordination from the browser.
        ingest_port = self.config.ports["ingest"]
        env.setdefault(
            "ECIPS_COORDINATION_WORKBENCH_ORIGINS",
            f"http://127.0.0.1:{ingest_port},http://localhost:{ingest_port}",
        )
        env.setdefault("ECIPS_INGEST_WORKBENCH_COORDINATION_URL", env["ECIPS_COORDINATION_URL"])
        for name in SERVICES:
            service = ServiceProcess(
                name, self.config.ports[name], env, self.data_dir / "logs" / f"{name}.log"
            )
            service.start()
            self.services.append(service)
        self._write_pid_files()
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {s.name: s for s in self.services}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name, service in list(pending.items()):
                    assert service.process is not None
                    if service.process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {service.process.returncode} while starting; "
                            f"see {service.log_path}\n{_tail(service.log_path)}"
                        )
                    try:
                        if client.get(f"{service.url}/readyz").status_code == 200:
                            del pending[name]
                            _say(f"{name:<13} ready  {service.url}  (docs: {service.url}/docs)")
                    except httpx.HTTPError:
                        pass
                time.sleep(0.3)
        if pending:
            raise RuntimeError(
                f"not ready after {timeout:.0f} s: {', '.join(pending)}; "
                f"logs in {self.data_dir / 'logs'}"
            )

    def _write_pid_files(self) -> None:
        """``<data-dir>/run/<name>.pid`` for every process, so operators (and the
        fault-injection tests) can find them."""
        run = self.data_dir / "run"
        run.mkdir(exist_ok=True)
        pids: dict[str, int | None] = {
            s.name: s.process.pid if s.process else None for s in self.services
        }
        if self.postgres is not None:
            pids["postgres"] = self.postgres.pid
        if self.broker is not None:
            pids["broker"] = self.broker.pid
        for name, pid in pids.items():
            if pid is not None:
                (run / f"{name}.pid").write_text(f"{pid}\n")

    def supervise(self) -> None:
        """Keep everything running until asked to stop: a service, the broker or
        the database that dies is started again."""
        while not self._stopping.wait(1.0):
            restarted = False
            if self.postgres is not None and not self.postgres.is_running():
                restarted |= self._restart("PostgreSQL", self.postgres.start)
            if self.broker is not None and not self.broker.is_running():
                # The embedded broker keeps nothing: its topics are created again
                # and consumers recover lost events from the producers' change feeds.
                restarted |= self._restart("the broker", self._start_broker)
            for service in self.services:
                if not service.is_running() and not self._stopping.is_set():
                    service.restarts += 1
                    delay = min(2 ** (service.restarts - 1), 30)
                    code = service.process.returncode if service.process else None
                    _say(
                        f"{service.name} exited with {code}; "
                        f"restarting in {delay} s (see {service.log_path})"
                    )
                    if self._stopping.wait(delay):
                        return
                    service.start()
                    restarted = True
            if restarted:
                self._write_pid_files()

    def _start_broker(self) -> None:
        assert self.broker is not None
        self.broker.start(TOPIC_PARTITIONS)

    def _restart(self, what: str, start: Callable[[], None]) -> bool:
        _say(f"{what} stopped; starting it again")
        for attempt in range(1, 31):
            if self._stopping.is_set():
                return False
            try:
                start()
                _say(f"{what} is back")
                return True
            except Exception as exc:
                _say(f"{what} did not start (attempt {attempt}): {exc}")
                self._stopping.wait(1.0)
        return False

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        for service in reversed(self.services):
            service.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _say(message: str) -> None:
    print(f"ecips: {message}", flush=True)
