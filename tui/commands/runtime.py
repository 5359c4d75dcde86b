"""Moved to :mod:`core.runtime` (composition) and :mod:`core.agent`; re-exported while callers move."""

from core.agent import report_app_schema, run_until_stopped
from core.runtime import database_for, start_cli_logging, start_exporter, start_observability

__all__ = [
    "database_for",
    "report_app_schema",
    "run_until_stopped",
    "start_cli_logging",
    "start_exporter",
    "start_observability",
]
