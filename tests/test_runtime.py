"""The composition root: what each MonitorRole builds, and that the faces share one set of services."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Config
from core.db import Database, PoolSettings
from core.errors import ReadOnlyError
from core.runtime import MonitorRole, Services, build_services

DSN = "postgresql://ops@127.0.0.1:1/pos"  # never connected: building services does no I/O


def config(**extra: Any) -> Config:
    return Config.model_validate({
        "database": {"dsn": DSN},
        "endpoints": [{"name": "api", "url": "http://127.0.0.1:1/health"}],
        **extra,
    })  # fmt: skip


@pytest.fixture
async def db() -> Any:
    database = Database(DSN, PoolSettings(connect_timeout_s=0.2))
    yield database
    await database.close()


def flags(services: Services) -> tuple[bool, bool, bool, bool]:
    """(read-only, probes, delivers, announces a database unreachable since start)"""
    monitor = services.monitor
    return (
        monitor.read_only,
        monitor.scheduler is not None,
        monitor.deliverer is not None,
        monitor.engine.announce_unreachable_at_start,
    )


@pytest.mark.parametrize(
    ("role", "read_only", "expected"),
    [
        (MonitorRole.CONSOLE, False, (False, True, True, False)),
        (MonitorRole.CONSOLE, True, (True, True, True, False)),
        (MonitorRole.WALL, False, (True, True, True, False)),
        (MonitorRole.AGENT, False, (False, True, True, True)),
        (MonitorRole.AGENT, True, (True, True, True, False)),
        (MonitorRole.PASSIVE, False, (False, False, False, False)),
    ],
)
async def test_each_role_builds_what_it_says(
    db: Database, role: MonitorRole, read_only: bool, expected: tuple[bool, bool, bool, bool]
) -> None:
    services = build_services(config(), db, role=role, read_only=read_only)
    assert flags(services) == expected
    assert services.triage.read_only is services.alerts.read_only is expected[0]
    assert services.monitor.snapshot.read_only is expected[0]


async def test_ui_read_only_in_the_config_makes_every_service_read_only(db: Database) -> None:
    services = build_services(config(ui={"read_only": True}), db)
    assert flags(services)[0] and services.triage.read_only and services.alerts.read_only
    with pytest.raises(ReadOnlyError):
        await services.alerts.acknowledge("endpoint-down", "api")


async def test_the_monitor_reads_through_the_services_the_faces_get(db: Database) -> None:
    services = build_services(config(), db, actor="tester")
    monitor = services.monitor
    assert monitor.triage is services.triage and monitor.alerts is services.alerts
    assert services.db is db and services.audit.db is db and services.config is monitor.config
    assert services.triage.actor == services.alerts.actor == "tester"
    deliverer = monitor.deliverer
    assert deliverer is not None
    assert monitor.engine.on_enqueued is not None
    monitor.engine.on_enqueued()  # a queued notification wakes this monitor's deliverer
    assert deliverer._wake.is_set()
