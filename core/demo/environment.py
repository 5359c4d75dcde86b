"""The whole demo environment: embedded PostgreSQL, schemas, fake backend, Slack sink, simulator.

``async with DemoEnvironment(data_dir, seed=1, speed=30) as env:`` starts everything (in that
order) and stops it all on exit; ``env.config()`` is the opswatch configuration for it, with
every time threshold divided by ``speed`` so alerts fire within 30 s.

:meth:`DemoEnvironment.start` runs PostgreSQL's start-up (``initdb`` on the first run) on the
calling thread, which blocks the event loop for a few seconds: call it before a UI starts.
The postmaster is tied to that thread's life (Linux parent-death signal), so it must not be a
short-lived worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import yaml
from loguru import logger

from core.config import Config
from core.db import describe_error
from core.demo.fake_backend import FakeBackend
from core.demo.scenario import DEFAULT_SEED, DEFAULT_SPEED, Scenario
from core.demo.server import HOST, DemoError
from core.demo.simulator import TrafficSimulator
from core.demo.slack_sink import SlackSink
from core.embedded import EmbeddedError, EmbeddedPostgres
from core.migrate import init_app_schema, migrate

DEMO_DATABASE = "pos"
MARKER = ".opswatch-demo"
_LOCK = ".demo.lock"
_PORTS = "ports.json"  # written by a running demo so that `demo --print-config` elsewhere finds it
SECRET_ENV_PREFIX = "OPSWATCH_DEMO_"
# Shown by print_config() before the demo has started and ports are known.
_PLACEHOLDER_PG, _PLACEHOLDER_BACKEND, _PLACEHOLDER_SINK = 5432, 3000, 3001


class DemoEnvironment:
    def __init__(
        self,
        data_dir: Path,
        *,
        seed: int = DEFAULT_SEED,
        speed: float = DEFAULT_SPEED,
        fresh: bool = False,
        slack_webhook: str | None = None,
        progress: Callable[[str], None] | None = None,
        pg_port: int = 0,
        backend_port: int = 0,
        sink_port: int = 0,
        traffic: bool = True,
    ) -> None:
        if not speed > 0:
            raise DemoError(f"--speed must be greater than zero, got {speed:g}")
        self.data_dir = Path(data_dir).expanduser()
        self.seed = int(seed)
        self.speed = float(speed)
        self.fresh = fresh
        self.slack_webhook = slack_webhook.strip() if slack_webhook and slack_webhook.strip() else None
        self.progress = progress or (lambda _message: None)
        self.scenario = Scenario(self.seed, self.speed)
        self.postgres = EmbeddedPostgres(self.data_dir, port=pg_port, progress=self.progress)
        self._pg_port = pg_port
        self._t0 = time.monotonic()
        self.simulator = TrafficSimulator(
            "", self.seed, self.speed, scenario=self.scenario, clock=self.elapsed, traffic=traffic
        )
        self.backend = FakeBackend(self.scenario, HOST, backend_port, clock=self.elapsed,
                                   on_replay=self.simulator.replay)  # fmt: skip
        self.sink: SlackSink | None = (
            None
            if self.slack_webhook
            else SlackSink(HOST, sink_port, jsonl=self.data_dir / "slack-sink.jsonl")
        )
        self._lock: TextIO | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        return self.postgres.dsn_for(DEMO_DATABASE)

    @property
    def started(self) -> bool:
        return self._started

    def elapsed(self) -> float:
        """Real seconds since the scenario started (the fake backend came up)."""
        return time.monotonic() - self._t0

    async def start(self) -> DemoEnvironment:
        if self._started:
            return self
        try:
            self._prepare_dir()
            self._start_postgres()
            self.progress("preparing the demo database (app schema, opswatch migrations)...")
            await self._prepare_database()
            self._t0 = time.monotonic()
            url = await self.backend.start()
            self.progress(f"fake POS backend on {url}")
            if self.sink is not None:
                if self.sink.jsonl is not None:
                    self.sink.jsonl.write_text("", encoding="utf-8")
                self.progress(f"local Slack sink on {await self.sink.start()}")
            self.simulator.dsn = self.dsn
            await self.simulator.start()
            self.progress("traffic simulator running")
            self._write_ports()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, DemoError):
                raise
            if isinstance(exc, EmbeddedError):
                raise DemoError(f"{exc} (try --fresh, or another --data-dir)") from None
            if isinstance(exc, asyncpg.PostgresError | OSError):
                raise DemoError(f"demo database setup failed: {describe_error(exc)} (try --fresh)") from None
            raise
        self._started = True
        return self

    async def stop(self) -> None:
        """Stop everything that runs; safe to call twice and after a partial start."""
        self._started = False
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / _PORTS).unlink(missing_ok=True)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("simulator", self.simulator.stop),
            ("Slack sink", self.sink.stop if self.sink is not None else _nothing),
            ("fake backend", self.backend.stop),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception as exc:
                logger.warning("demo: stopping the {} failed: {}", name, describe_error(exc))
        try:
            self.postgres.stop()
        except Exception as exc:
            logger.warning("demo: stopping PostgreSQL failed: {}", describe_error(exc))
        self._release_lock()

    async def __aenter__(self) -> DemoEnvironment:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- steps -----------------------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        d = self.data_dir
        hint = "choose another with --data-dir"
        if d.exists() and not d.is_dir():
            raise DemoError(f"data directory {d} is a file, not a directory ({hint})")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DemoError(f"data directory {d} is unusable: {exc.strerror or exc} ({hint})") from None
        if not os.access(d, os.W_OK | os.X_OK):
            raise DemoError(f"data directory {d} is not writable ({hint})")
        entries = {p.name for p in d.iterdir()} - {_LOCK}
        ours = MARKER in entries or "pgdata" in entries
        if entries and not ours:
            raise DemoError(f"data directory {d} is not empty and is not an opswatch demo directory ({hint})")
        self._take_lock()
        if self.fresh and entries:
            self.progress(f"--fresh: wiping {d}")
            for entry in d.iterdir():
                if entry.name == _LOCK:
                    continue
                try:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                except OSError as exc:
                    raise DemoError(f"cannot wipe {entry}: {exc.strerror or exc} ({hint})") from None
        (d / MARKER).write_text("opswatch demo data directory; `opswatch demo --fresh` wipes it\n")

    def _take_lock(self) -> None:
        path = self.data_dir / _LOCK
        try:
            handle = path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise DemoError(f"data directory {self.data_dir} is unusable: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise DemoError(
                f"data directory {self.data_dir} is in use by another opswatch demo ({owner}); "
                "stop it first or use another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        handle, self._lock = self._lock, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _start_postgres(self) -> None:
        if self._pg_port:
            _check_port_free(self._pg_port, "PostgreSQL")
        if not self.postgres.initialized:
            self.progress("first run: creating the demo PostgreSQL cluster (takes a few seconds)...")
        self.postgres.start()

    async def _prepare_database(self) -> None:
        admin = await asyncpg.connect(self.postgres.dsn, timeout=10)
        try:
            exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DATABASE)
            if not exists:
                await admin.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await init_app_schema(conn)
            await migrate(conn)
            # the embedded server preloads pg_stat_statements; the Database screen needs the view
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()

    # -- configuration -------------------------------------------------------------------------

    def _write_ports(self) -> None:
        ports = {"postgres": self.postgres.port, "backend": self.backend.port,
                 "sink": None if self.sink is None else self.sink.port, "pid": os.getpid()}  # fmt: skip
        (self.data_dir / _PORTS).write_text(json.dumps(ports) + "\n", encoding="utf-8")

    def running_elsewhere(self) -> dict[str, int | None] | None:
        """The ports of a demo another process runs on this data directory, if one does."""
        path = self.data_dir / _PORTS
        if self._lock is not None or not path.is_file():
            return None
        try:
            with (self.data_dir / _LOCK).open("a+", encoding="utf-8") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held: a demo runs there
                    data = json.loads(path.read_text(encoding="utf-8"))
                    return {k: data.get(k) for k in ("postgres", "backend", "sink")}
                fcntl.flock(handle, fcntl.LOCK_UN)  # nobody holds it: a stale file
        except (OSError, ValueError, AttributeError):
            return None
        return None

    def _urls(self) -> tuple[str, str, str]:
        other = None if self.postgres.running else self.running_elsewhere()
        pg_port = other.get("postgres") if other else None
        backend_port = other.get("backend") if other else None
        sink_port = other.get("sink") if other else None
        pg = self.dsn if self.postgres.running else (
            f"postgresql://postgres@127.0.0.1:{pg_port or _PLACEHOLDER_PG}/{DEMO_DATABASE}")  # fmt: skip
        backend = self.backend.base_url if self.backend.running else (
            f"http://{HOST}:{backend_port or _PLACEHOLDER_BACKEND}")  # fmt: skip
        if self.sink is not None and self.sink.running:
            sink = self.sink.base_url
        else:
            sink = f"http://{HOST}:{sink_port or _PLACEHOLDER_SINK}"
        return pg, backend, sink

    @property
    def ports_known(self) -> bool:
        """True when the URLs in :meth:`config_dict` are the running demo's (here or in another process)."""
        return self._started or self.running_elsewhere() is not None

    def config_dict(self) -> dict[str, Any]:
        """The opswatch configuration for this environment (plain data, validates as :class:`Config`).

        Before :meth:`start` the ports are placeholders (5432, 3000, 3001).
        """
        s = self.speed
        dsn, backend, sink = self._urls()
        interval = min(2.0, max(1.0, 30.0 / s))
        if self.slack_webhook:
            webhooks = {"default": self.slack_webhook}
        else:
            webhooks = {sev: f"{sink}/slack/{sev}" for sev in ("critical", "warning", "info")}
        return {
            "database": {"dsn": dsn, "pool_min": 1, "pool_max": 5},
            "endpoints": [
                {"name": "health", "url": f"{backend}/test/health", "service": "api",
                 "json_field": {"path": "status", "equals": "ok"}},
                {"name": "sales", "url": f"{backend}/api/v1/sales", "service": "api"},
                {"name": "worker-steps", "url": f"{backend}/api/v1/worker/steps", "service": "worker"},
                {"name": "products", "url": f"{backend}/api/v1/products", "service": "api",
                 "interval": interval / 2},
                {"name": "auth-session", "url": f"{backend}/api/v1/auth/me", "service": "api",
                 "headers": {"Authorization": "Bearer demo-session-token"}},
            ],
            "probes": {
                "interval": interval,
                "timeout": 5.0,
                # error rate needs ~40 samples to tell 8 % from 10 %; quantiles follow the compressed clock
                "window": max(300.0 / s, 20.0 * interval),
                "flush_interval": 2.0,
            },
            "metrics": [
                {
                    "name": "message_failure_pct",
                    "sql": (
                        "SELECT COALESCE(100.0 * count(*) FILTER (WHERE status = 'failed') "
                        "/ NULLIF(count(*), 0), 0) FROM social_messages "
                        "WHERE created_at > now() - interval '10 minutes'"
                    ),
                    "interval": max(1.0, 60.0 / s),
                    "unit": "%",
                    "description": "Outbound messages that ended in the dead-letter queue, last 10 minutes",
                },
            ],
            "alerts": {
                "evaluation_interval": 1.0,
                "group_wait": 1.0,
                # Alertmanager's default: a still-firing alert is repeated every 4 (scenario) hours
                "repeat_interval": max(60.0, 14400.0 / s),
                "flapping": {"transitions": 4, "window": max(20.0, 600.0 / s)},
                "rules": _rules(s),
            },
            "notifications": {
                "slack": {"enabled": True, "webhooks": webhooks, "username": "opswatch demo"},
                "outbox": {"backoff_initial": 1.0, "backoff_max": 30.0, "poll_interval": 0.5, "lease": 10.0},
            },
            "triage": {"redrive": {"mode": "sql", "replay_url": f"{backend}/api/v1/replay"}},
            "logging": {"directory": str(self.data_dir / "logs"), "environment": "demo"},
            "ui": {"refresh_interval": 1.0},
        }  # fmt: skip

    def config(self) -> Config:
        return Config.model_validate(self.config_dict())

    def print_config(self, *, reveal: bool = False) -> str:
        """YAML of :meth:`config` that works against the running demo.

        Secrets are ``${OPSWATCH_DEMO_...}`` references (values from :meth:`secret_env`), or the
        values themselves with ``reveal``.
        """
        text, _ = self.printable_config(reveal=reveal)
        return text

    def secret_env(self) -> dict[str, str]:
        """The environment variables the printed config refers to, with their values."""
        return self.printable_config()[1]

    def printable_config(self, *, reveal: bool = False) -> tuple[str, dict[str, str]]:
        config = self.config()
        plain = config.model_dump(mode="json", by_alias=True)
        masked = config.model_dump(mode="json", by_alias=True, context={"mask_secrets": True})
        env: dict[str, str] = {}
        data = _refer_secrets(plain, plain if reveal else masked, (), env)
        lines = [
            f"# generated by `opswatch demo` (seed {self.seed}, speed {self.speed:g}x): time thresholds are",
            f"# divided by {self.speed:g}; for real use the seed plan's values (api-down critical: 300).",
        ]
        if not self.ports_known:
            lines.append(f"# ports are placeholders until the demo runs (no demo runs in {self.data_dir})")
        if env:
            lines.append("# secrets are ${...} references: export " + ", ".join(env) + " (or use --reveal)")
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(lines) + "\n" + body, env

    def summary(self) -> list[str]:
        """One line per running part, for headless output."""
        dsn, backend, sink = self._urls()
        out = [f"PostgreSQL   {dsn} (data in {self.data_dir})", f"fake backend {backend}"]
        out.append(
            f"Slack        {sink}/slack/{{critical,warning,info}}"
            if self.sink
            else "Slack        real webhook"
        )
        out.append(self.scenario.describe())
        return out


def _rules(speed: float) -> list[dict[str, Any]]:
    """The seed's alert rules; thresholds measured in seconds are divided by ``speed``."""
    return [
        {"name": "api-down", "metric": "endpoint.down_for", "critical": round(300.0 / speed, 3),
         "description": "Endpoint down for more than 5 minutes (scenario time)",
         "runbook": "Check the POS backend process and host; GET /test/health must answer 200."},
        {"name": "slow-response", "metric": "endpoint.latency_ms", "warning": 2000, "critical": 5000,
         "description": "Response time above 2 s (warning) / 5 s (critical)", "depends_on": ["api-down"]},
        {"name": "error-rate", "metric": "endpoint.error_rate", "warning": 5, "critical": 10,
         "description": "Error rate above 5 % (warning) / 10 % (critical)",
         # sustained for longer than an outage plus the probe window: the errors a 7-minute outage
         # leaves in the window fade before this fires (no "error-rate" right after "resolved")
         "for": round(1200.0 / speed, 3),
         "recovery": 4, "recovery_samples": 3, "depends_on": ["api-down", "db-unreachable"]},
        {"name": "db-unreachable", "metric": "db.unreachable", "critical": 0,
         "description": "Database connection failures",
         "runbook": "Check PostgreSQL, the network path and connection limits."},
        {"name": "slow-queries", "metric": "db.slowest_mean_ms", "warning": 1000,
         "description": "Database query time above 1 s", "depends_on": ["db-unreachable"]},
        {"name": "event-failures", "metric": "events.failures_last_hour", "warning": 5,
         "description": "More than 5 event failures per hour", "depends_on": ["db-unreachable"]},
        {"name": "dlq-backlog", "metric": "dlq.pending", "warning": 50, "critical": 150,
         "description": "Dead-letter messages waiting for triage", "depends_on": ["db-unreachable"],
         "runbook": "Dead letters screen (3): filter by error, retry what is transient, abandon the rest."},
    ]  # fmt: skip


def _check_port_free(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"port {port} on {HOST} for the demo {what} is already in use "
                    "(stop whatever uses it, or choose another port; 0 picks a free one)"
                ) from None
            raise DemoError(f"cannot use port {port} for the demo {what}: {exc.strerror or exc}") from None


async def _nothing() -> None:
    return None


def _refer_secrets(plain: Any, masked: Any, path: tuple[str, ...], env: dict[str, str]) -> Any:
    """``plain`` with every value that masking changes replaced by a ``${VAR}`` reference."""
    if isinstance(plain, dict) and isinstance(masked, dict):
        return {k: _refer_secrets(v, masked.get(k), (*path, str(k)), env) for k, v in plain.items()}
    if isinstance(plain, list) and isinstance(masked, list) and len(plain) == len(masked):
        return [
            _refer_secrets(v, m, (*path, str(v.get("name", i)) if isinstance(v, dict) else str(i)), env)
            for i, (v, m) in enumerate(zip(plain, masked, strict=True))
        ]
    if not isinstance(plain, str):
        return plain
    if plain == masked:
        return plain.replace("${", "$${")  # literal text, not a reference
    name = SECRET_ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", "_".join(path).upper()).strip("_")
    env[name] = plain
    return "${" + name + "}"
