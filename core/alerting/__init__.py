"""Alerting: rules -> persisted alert state -> notifications in the outbox.

``models`` (what is exchanged), ``planner`` (the pure decisions), ``store`` (the SQL), ``engine``
(lease, offline decisions, evaluation), ``offline`` (spooled decisions merged back), ``views``
(what the screens show), ``actions`` (operator actions). The names other modules import are
re-exported here.
"""

from core.alerting.actions import AlertActions
from core.alerting.engine import AlertEngine
from core.alerting.models import (
    ENGINE_NAME,
    AlertActionResult,
    AlertChange,
    HistoryEntry,
    MetricSample,
    Silence,
)
from core.alerting.planner import Plan, Planner
from core.notify.base import Notification

__all__ = [
    "ENGINE_NAME",
    "AlertActionResult",
    "AlertActions",
    "AlertChange",
    "AlertEngine",
    "HistoryEntry",
    "MetricSample",
    "Notification",
    "Plan",
    "Planner",
    "Silence",
]
