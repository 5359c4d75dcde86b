"""One-shot evaluation for ``opswatch check``: probe once, read the DB once, judge every rule.

``for`` durations cannot apply to a single look, so a rule counts as breached the moment its
threshold is crossed, and an endpoint whose probe fails right now is critical (the built-in
``endpoint-probe`` check). A rule whose metric cannot be read (no DSN, database down) is
"not judged", which makes the result UNKNOWN unless something else is already worse.
Thresholds and values in the performance data use base units (s, %, B, plain counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from core.alerting import MetricSample
from core.config import AlertRule, Config
from core.db import Database, DatabaseUnavailable
from core.metrics import endpoint_metrics, global_metrics
from core.nagios import CRITICAL, OK, STATE_NAMES, UNKNOWN, WARNING, PerfDatum, Range, worst
from core.probes import probe_all, specs_from_config
from core.rules import applies_to, format_value, metric_unit, severity_for, severity_rank
from core.snapshot import DbHealthView, DbStats, DlqSummary, EventSummary
from core.sources import collect_custom_metrics, collect_db_stats, dlq_summary, event_summary
from core.triage.doctor import SchemaReport, SchemaStatus, inspect_app_schema
from core.triage.schema import AppTables
from core.windows import EndpointWindow

PROBE_CHECK = "endpoint-probe"
"""Built-in check name (usable with ``--only``): an endpoint whose probe fails now is critical."""

_DEFAULT_ENDPOINT_PERF = ("endpoint.latency_ms", "endpoint.up")
_DB_REACHABILITY = ("db.unreachable", "db.down_for")


class CheckSetupError(Exception):
    """The check cannot judge at all (bad selection, unusable database): UNKNOWN with this reason."""


@dataclass(frozen=True)
class Finding:
    rule: str
    scope: str
    severity: str  # warning | critical
    value: float | None
    message: str


@dataclass(frozen=True)
class NotJudged:
    rule: str
    reason: str


@dataclass(frozen=True)
class Overrides:
    """``-w``/``-c``: ranges in the perfdata unit of the one metric the selected rules watch."""

    warning: Range | None = None
    critical: Range | None = None

    def __bool__(self) -> bool:
        return self.warning is not None or self.critical is not None


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    endpoints_checked: int
    database_up: bool | None
    perfdata: tuple[PerfDatum, ...] = ()
    not_judged: tuple[NotJudged, ...] = ()  # the check cannot judge these: UNKNOWN
    rules_judged: int = 0
    no_data: tuple[NotJudged, ...] = ()  # optional metric without a value (shown, not UNKNOWN)
    schema: SchemaReport | None = None  # the app tables vs the configured names (None: not read)

    @property
    def state(self) -> int:
        rank = max((severity_rank(f.severity) for f in self.findings), default=0)
        found = {3: CRITICAL, 2: WARNING}.get(rank, OK)
        return worst(found, UNKNOWN if self.not_judged else OK)

    @property
    def status(self) -> str:
        return STATE_NAMES[self.state].lower()

    @property
    def exit_code(self) -> int:
        """Nagios convention: 0 ok, 1 warning, 2 critical, 3 unknown."""
        return self.state

    def summary(self) -> str:
        if self.findings:
            ranked = sorted(self.findings, key=lambda f: -severity_rank(f.severity))
            return ", ".join(f.message for f in ranked)
        if self.not_judged:
            reasons = sorted({n.reason for n in self.not_judged})
            names = ", ".join(n.rule for n in self.not_judged)
            return f"not judged: {names} ({'; '.join(reasons)})"
        database = "" if self.database_up is None else ", database up"
        plural = "" if self.endpoints_checked == 1 else "s"
        rules = f", {self.rules_judged} rules ok" if self.rules_judged else ""
        return f"{self.endpoints_checked} endpoint{plural} up{database}{rules}"


def select_rules(config: Config, only: Sequence[str] | None) -> tuple[tuple[AlertRule, ...], bool]:
    """The rules named by ``--only`` (all without it) and whether the probe check applies."""
    rules = config.alerts.rules
    if only is None:
        return tuple(rules), True
    valid = [rule.name for rule in rules] + [PROBE_CHECK]
    unknown = [name for name in only if name not in valid]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise CheckSetupError(f"--only: unknown rule {names} (valid: {', '.join(valid)})")
    wanted = set(only)
    return tuple(r for r in rules if r.name in wanted), PROBE_CHECK in wanted


@dataclass(frozen=True)
class PerfShape:
    """How a metric appears in perfdata: label stem, unit, scale from the metric's unit, bounds."""

    stem: str
    uom: str
    scale: float = 1.0
    min: float | None = 0.0
    max: float | None = None


def perf_shape(metric: str, custom_units: Mapping[str, str] | None = None) -> PerfShape:
    custom = metric.startswith("custom.")
    if metric.startswith("endpoint."):
        stem = metric.split(".", 1)[1]
    else:
        stem = metric.replace(".", "_")
    unit = metric_unit(metric, custom_units)
    low = None if custom else 0.0
    if unit == "ms":
        return PerfShape(stem.removesuffix("_ms"), "s", 0.001, low)
    if unit in ("duration", "s"):
        return PerfShape(stem.removesuffix("_s"), "s", 1.0, low)
    if unit == "%":
        return PerfShape(stem.removesuffix("_pct"), "%", 1.0, low, None if custom else 100.0)
    if unit in ("bytes", "B"):
        return PerfShape(stem.removesuffix("_bytes"), "B", 1.0, low)
    if unit == "bool":
        return PerfShape(stem, "", 1.0, 0.0, 1.0)
    return PerfShape(stem, "", 1.0, low)


def check_overrides(rules: Sequence[AlertRule], overrides: Overrides, only: Sequence[str] | None) -> None:
    if not overrides:
        return
    if only is None or not rules:
        raise CheckSetupError("-w/-c replace the thresholds of the rules named by --only RULE; name one")
    metrics = sorted({rule.metric for rule in rules})
    if len(metrics) > 1:
        raise CheckSetupError(f"-w/-c apply to one metric; --only selects rules on {', '.join(metrics)}")


def _ranges(rule: AlertRule, shape: PerfShape, overrides: Overrides) -> tuple[Range | None, Range | None]:
    non_negative = shape.min is not None and shape.min >= 0

    def of(threshold: float | None) -> Range | None:
        if threshold is None:
            return None
        return Range.from_rule(rule.op, threshold * shape.scale, non_negative=non_negative)

    warn = overrides.warning if overrides.warning is not None else of(rule.warning)
    crit = overrides.critical if overrides.critical is not None else of(rule.critical)
    return warn, crit


def _judge(rule: AlertRule, value: float, shape: PerfShape, overrides: Overrides) -> str | None:
    if not overrides:
        return severity_for(rule, value)
    warn, crit = _ranges(rule, shape, overrides)
    if crit is not None and crit.alerts(value * shape.scale):
        return "critical"
    if warn is not None and warn.alerts(value * shape.scale):
        return "warning"
    return None


@dataclass
class _Reading:
    metrics: list[MetricSample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    db_view: DbHealthView | None = None
    db_problem: str | None = None  # why database metrics are missing
    schema: SchemaReport | None = None


async def _read_endpoints(
    config: Config, reading: _Reading, names: set[str] | None, probe_check: bool
) -> int:
    now = datetime.now(UTC)
    specs = [s for s in specs_from_config(config) if names is None or s.name in names]
    samples = await probe_all(specs, max_concurrency=config.probes.max_concurrency)
    for spec, sample in zip(specs, samples, strict=True):
        window = EndpointWindow(config.probes.window)
        window.add(sample)
        reading.metrics.extend(endpoint_metrics(spec.name, window, now))
        if not sample.ok:
            reading.failing.add(spec.name)
            if probe_check:
                reading.findings.append(
                    Finding(PROBE_CHECK, spec.name, "critical", None,
                            f"{PROBE_CHECK} on {spec.name} ({sample.error or sample.outcome})")
                )  # fmt: skip
    return len(specs)


async def _read_database(config: Config, db: Database, reading: _Reading) -> None:
    health = await db.health()
    now = datetime.now(UTC)  # after the health check: down_for is never negative
    reading.db_view = DbHealthView(
        health.up, health.rtt_ms, health.error, health.down_since, health.checked_at
    )
    stats: DbStats | None = None
    events: EventSummary | None = None
    dlq: DlqSummary | None = None
    custom: dict[str, float | None] = {}
    if not health.up:
        reading.db_problem = f"database unavailable: {health.error or 'unknown error'}"
    else:
        try:
            schema = reading.schema = await inspect_app_schema(db, config)
            tables = schema.apply(AppTables.from_config(config))
            stats = await collect_db_stats(db, config)
            events = None if schema.blocking("event") else await event_summary(db, config, tables)
            dlq = None if schema.blocking("dlq") else await dlq_summary(db, config, tables)
            custom = dict(await collect_custom_metrics(db, config))
            if schema.status is SchemaStatus.UNUSABLE:
                # the DLQ/event rules cannot be judged: UNKNOWN unless something else is worse
                reading.db_problem = (
                    f"cannot read the app's tables in {db.where}: {schema.summary()} "
                    f"(see database.app_schema, database.tables and database.columns)"
                )
        except DatabaseUnavailable as exc:
            reading.db_problem = f"database unavailable: {exc.reason}"
        except asyncpg.PostgresError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckSetupError(
                f"cannot read the app's tables in {db.where}: {first} "
                f"(see database.app_schema, database.tables and database.columns)"
            ) from None
    reading.metrics.extend(
        global_metrics(now=now, db=reading.db_view, stats=stats, events=events, dlq=dlq, outbox=None,
                       custom=custom)
    )  # fmt: skip


def _value_text(rule: AlertRule, value: float, custom_units: Mapping[str, str]) -> str:
    metric = rule.metric
    if metric == "endpoint.down_for":
        return f"down {format_value(value, 'duration')}"
    return format_value(value, metric_unit(metric, custom_units), metric)


async def run_check(
    config: Config,
    db: Database | None,
    *,
    only: Sequence[str] | None = None,
    overrides: Overrides = Overrides(),
    no_dsn_reason: str = "database.dsn is not set",
) -> CheckReport:
    rules, probe_check = select_rules(config, only)
    check_overrides(rules, overrides, only)
    custom_units = {m.name: m.unit for m in config.metrics}
    reading = _Reading()
    endpoint_rules = [r for r in rules if r.metric.startswith("endpoint.")]
    names: set[str] | None = None
    if only is not None and not probe_check:
        names = {e.name for e in config.endpoints if any(applies_to(r, e.name) for r in endpoint_rules)}
    checked = await _read_endpoints(config, reading, names, probe_check or only is not None)
    needs_db = any(not r.metric.startswith("endpoint.") for r in rules)
    if db is not None and (needs_db or only is None):
        await _read_database(config, db, reading)
    elif needs_db:
        reading.db_problem = no_dsn_reason

    findings = list(reading.findings)
    not_judged: list[NotJudged] = []
    no_data: list[NotJudged] = []
    judged: set[str] = set()
    db_error = reading.db_view.error if reading.db_view is not None else None
    for rule in rules:
        samples = [m for m in reading.metrics if m.metric == rule.metric and applies_to(rule, m.scope)]
        missing = NotJudged(rule.name, reading.db_problem or f"{rule.metric} has no value")
        if not samples and not rule.metric.startswith("endpoint."):
            not_judged.append(missing)
            continue
        shape = perf_shape(rule.metric, custom_units)
        for sample in samples:
            if sample.value is None:
                if sample.metric.startswith("endpoint."):
                    continue
                if reading.db_problem or only is not None:
                    not_judged.append(missing)
                else:  # an optional source (e.g. pg_stat_statements) is missing: said, not UNKNOWN
                    no_data.append(missing)
                continue
            judged.add(rule.name)
            severity = _judge(rule, sample.value, shape, overrides)
            if severity is None:
                continue
            where = f" on {sample.scope}" if sample.scope else ""
            text = _value_text(rule, sample.value, custom_units)
            if rule.metric in _DB_REACHABILITY and db_error:
                text = db_error
            findings.append(Finding(rule.name, sample.scope, severity, sample.value,
                                    f"{rule.name}{where} ({text})"))  # fmt: skip
    perfdata = _perfdata(rules, reading.metrics, only, overrides, custom_units, probe_check)
    return CheckReport(
        tuple(findings),
        checked,
        None if reading.db_view is None else reading.db_view.up,
        tuple(perfdata),
        tuple(not_judged),
        len(judged),
        tuple(no_data),
        reading.schema,
    )


def _perfdata(
    rules: Sequence[AlertRule],
    metrics: Sequence[MetricSample],
    only: Sequence[str] | None,
    overrides: Overrides,
    custom_units: Mapping[str, str],
    probe_check: bool,
) -> list[PerfDatum]:
    watched = {r.metric for r in rules} | ({"endpoint.up"} if probe_check else set())
    wanted = (
        watched
        if only is not None
        else watched
        | set(_DEFAULT_ENDPOINT_PERF)
        | {m.metric for m in metrics if not m.metric.startswith("endpoint.")}
    )
    out: list[PerfDatum] = []
    seen: set[str] = set()
    for sample in metrics:
        if sample.metric not in wanted:
            continue
        shape = perf_shape(sample.metric, custom_units)
        label = f"{sample.scope}_{shape.stem}" if sample.scope else shape.stem
        if label in seen:
            continue
        seen.add(label)
        rule = next((r for r in rules if r.metric == sample.metric and applies_to(r, sample.scope)), None)
        warn, crit = (None, None) if rule is None else _ranges(rule, shape, overrides)
        value = None if sample.value is None else sample.value * shape.scale
        out.append(PerfDatum(label, value, shape.uom, warn, crit, shape.min, shape.max))
    return out
