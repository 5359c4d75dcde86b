"""One-shot evaluation for ``opswatch check``: probe once, read the DB once, judge every rule.

``for`` durations cannot apply to a single look, so a rule counts as breached the moment its
threshold is crossed, and an endpoint whose probe fails right now is critical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.alerting import MetricSample
from core.config import Config
from core.db import Database
from core.metrics import endpoint_metrics, global_metrics
from core.probes import probe_all, specs_from_config
from core.rules import applies_to, severity_for, severity_rank
from core.snapshot import DbHealthView, DbStats, DlqSummary, EventSummary
from core.sources import collect_custom_metrics, collect_db_stats, dlq_summary, event_summary
from core.triage.doctor import SchemaReport, SchemaStatus, inspect_app_schema
from core.triage.schema import AppTables
from core.windows import EndpointWindow


@dataclass(frozen=True)
class Finding:
    rule: str
    scope: str
    severity: str  # warning | critical
    value: float | None
    message: str


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    endpoints_checked: int
    database_up: bool | None
    schema: SchemaReport | None = None  # the app tables vs the configured names (None: not read)

    @property
    def status(self) -> str:
        worst = max((severity_rank(f.severity) for f in self.findings), default=0)
        return {0: "ok", 1: "ok", 2: "warning", 3: "critical"}[worst]

    @property
    def exit_code(self) -> int:
        """Nagios convention: 0 ok, 1 warning, 2 critical."""
        return {"ok": 0, "warning": 1, "critical": 2}[self.status]


def schema_findings(report: SchemaReport) -> list[Finding]:
    """An unusable app schema is one finding naming the config key (its reads are skipped, so the
    check cannot judge the DLQ/event rules); a degraded one is not a finding."""
    if report.status is not SchemaStatus.UNUSABLE:
        return []
    return [Finding("app-schema", "", "critical", None, report.summary())]


async def run_check(config: Config, db: Database | None) -> CheckReport:
    now = datetime.now(UTC)
    specs = specs_from_config(config)
    samples = await probe_all(specs, max_concurrency=config.probes.max_concurrency)
    findings: list[Finding] = []
    metrics: list[MetricSample] = []
    for spec, sample in zip(specs, samples, strict=True):
        window = EndpointWindow(config.probes.window)
        window.add(sample)
        metrics.extend(endpoint_metrics(spec.name, window, now))
        if not sample.ok:
            findings.append(
                Finding(
                    "endpoint-probe",
                    spec.name,
                    "critical",
                    None,
                    f"{spec.name} is failing: {sample.error or sample.outcome}",
                )
            )
    db_view = None
    schema: SchemaReport | None = None
    if db is not None:
        health = await db.health()
        db_view = DbHealthView(health.up, health.rtt_ms, health.error, health.down_since, health.checked_at)
        if not health.up:
            findings.append(Finding("database", "", "critical", None,
                                    f"database unreachable: {health.error or 'unknown error'}"))
        stats: DbStats | None = None
        events: EventSummary | None = None
        dlq: DlqSummary | None = None
        custom: dict[str, float | None] = {}
        if health.up:
            schema = await inspect_app_schema(db, config)
            findings.extend(schema_findings(schema))
            tables = schema.apply(AppTables.from_config(config))
            stats = await collect_db_stats(db, config)
            events = None if schema.blocking("event") else await event_summary(db, config, tables)
            dlq = None if schema.blocking("dlq") else await dlq_summary(db, config, tables)
            custom = dict(await collect_custom_metrics(db, config))
        metrics.extend(
            global_metrics(
                now=now, db=db_view, stats=stats, events=events, dlq=dlq, outbox=None, custom=custom
            )
        )
    for rule in config.alerts.rules:
        for metric in metrics:
            if metric.metric != rule.metric or metric.value is None or not applies_to(rule, metric.scope):
                continue
            severity = severity_for(rule, metric.value)
            if severity is not None:
                where = f" on {metric.scope}" if metric.scope else ""
                findings.append(
                    Finding(
                        rule.name,
                        metric.scope,
                        severity,
                        metric.value,
                        f"{rule.description or rule.name}{where}: {metric.value:g}",
                    )
                )
    return CheckReport(tuple(findings), len(specs), None if db_view is None else db_view.up, schema)
