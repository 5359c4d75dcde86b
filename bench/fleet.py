"""What the benchmarks share: helper servers in child processes (the fake fleet, the webhook sink),
process figures (CPU, RSS, PSS of a PostgreSQL tree), a JSON client and the app schema.

Every helper server listens on 127.0.0.1, says ``ok`` on ``/healthz`` when ready and is stopped
by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.embedded import free_port

__all__ = [
    "ROOT",
    "ChildServer",
    "Fleet",
    "cpu_seconds",
    "emit",
    "free_port",
    "http_json",
    "load_average",
    "postmaster_pid",
    "prepare_database",
    "rss_mb",
    "tree_usage",
]

ROOT = Path(__file__).resolve().parent.parent
SHARED_FLEET = ROOT.parent / "shared" / "peers" / "fleet_server.py"


# --------------------------------------------------------------------------- this process


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> float:
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    with _OPENER.open(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()


def emit(result: dict[str, Any], report: Callable[[dict[str, Any]], None], *, json_only: bool) -> int:
    """The human report (unless ``json_only``), then the result as one JSON line; exit code 0."""
    if not json_only:
        report(result)
    print(json.dumps(result, separators=(",", ":")))
    return 0


# --------------------------------------------------------------------------- helper servers


class ChildServer:
    """A helper server in a child process (``argv``), ready when its ``/healthz`` says ``ok``."""

    label = "server"

    def __init__(self, port: int, argv: list[str], kind: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.kind = kind
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {err[-500:]}")
            with contextlib.suppress(OSError):
                if http_json(f"{self.base}/healthz") == "ok":
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.label} did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Fleet(ChildServer):
    """The fake fleet: the peer's ``fleet_server.py`` when it exists, else ``bench.probes --serve-fleet``."""

    label = "fleet"

    def __init__(self, n: int, port: int, own: bool) -> None:
        self.n = n
        if own or not SHARED_FLEET.exists():
            argv = [sys.executable, "-m", "bench.probes", "--serve-fleet", "--n", str(n), "--port", str(port)]
            kind = "bench.probes --serve-fleet (aiohttp)"
        else:
            argv = [sys.executable, str(SHARED_FLEET), "--n", str(n), "--port", str(port)]
            kind = "../shared/peers/fleet_server.py"
        super().__init__(port, argv, kind)

    def control(self, **spec: Any) -> Any:
        return http_json(f"{self.base}/control", spec)


# --------------------------------------------------------------------------- PostgreSQL


def postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    return None


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _pss_mb(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_usage(root: int) -> tuple[float, float]:
    """(CPU seconds incl. reaped children, PSS MB) of ``root`` and its direct children."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat(root)
    if fields is None:
        return 0.0, 0.0
    cpu = sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
    pss = _pss_mb(root)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        child = _stat(int(entry))
        if child is not None and child[1] == str(root):
            cpu += (int(child[11]) + int(child[12])) / tick
            pss += _pss_mb(int(entry))
    return cpu, pss


async def prepare_database(dsn: str) -> None:
    """The app's tables (the Monitor's summaries read its DLQ and event tables) and opswatch's schema."""
    import asyncpg

    from core.migrate import init_app_schema, migrate

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await init_app_schema(conn)
        await migrate(conn)
    finally:
        await conn.close()
