"""core.config: loading, interpolation, durations/sizes, one-line errors, lookup, rendering."""

from __future__ import annotations

import itertools
import pickle
import re
import typing
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from core.config import (
    DEFAULT_RULES,
    METRICS,
    AlertRule,
    Config,
    ConfigError,
    Endpoint,
    LoggingConfig,
    default_config,
    find_config_path,
    iter_errors,
    load_config,
    loads_config,
    render_effective,
)
from core.durations import format_duration, format_size, parse_duration, parse_size
from core.logging import resolve_level
from tests.config_support import DATA, SECRETS, error_of, write

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"


# --------------------------------------------------------------------------- the required bad-input cases


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    err = error_of(path)
    assert str(err) == f"{path}: file not found"
    assert (err.file, err.line, err.key, err.message) == (str(path), None, "", "file not found")


def test_yaml_syntax_error() -> None:
    path = DATA / "bad_syntax.yaml"
    err = error_of(path)
    assert str(err) == (
        f"{path}:5: endpoints[0].url: YAML syntax error: mapping values are not allowed here (column 43)"
    )
    assert err.line == 5 and "\n" not in str(err)


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        endpoints:
          - name: health
            url: http://127.0.0.1:3000/test/health
          - name: sales
            url: http://127.0.0.1:3000/api/v1/sales
            intervall: 10s
        """,
    )
    err = error_of(path)
    assert str(err) == f"{path}:6: endpoints[1].intervall: unknown key 'intervall' (did you mean 'interval'?)"
    assert (err.line, err.key) == (6, "endpoints[1].intervall")


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "probes:\n  interval: 10s\n  max_concurrency: lots\n")
    err = error_of(path)
    assert str(err) == f"{path}:3: probes.max_concurrency: expected an integer, got 'lots'"


def test_unset_variable_without_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        notifications:
          slack:
            webhooks:
              critical: ${SLACK_WEBHOOK_CRITICAL}
        """,
    )
    err = error_of(path, env={})
    assert str(err) == (
        f"{path}:4: notifications.slack.webhooks.critical: environment variable SLACK_WEBHOOK_CRITICAL "
        "is not set (give a default: ${SLACK_WEBHOOK_CRITICAL:-...})"
    )


def test_unset_variable_inside_a_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        endpoints:
          - name: a
            url: http://127.0.0.1/a
          - name: b
            url: ${B_URL}/health
        """,
    )
    assert error_of(path).key == "endpoints[1].url"
    assert error_of(path).line == 5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid URL 'not a url': must start with http:// or https://"),
        ("http://", "invalid URL 'http://': no host name"),
        ("http://host:99999/x", "invalid URL 'http://host:99999/x': Port out of range 0-65535"),
    ],
)
def test_invalid_url_variants(tmp_path: Path, url: str, message: str) -> None:
    path = write(tmp_path, f"notifications:\n  slack:\n    webhooks:\n      warning: '{url}'\n")
    assert str(error_of(path)) == f"{path}:4: notifications.slack.webhooks.warning: {message}"


def test_duplicate_endpoint_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        endpoints:
          - name: health
            url: http://127.0.0.1:3000/test/health
          - name: sales
            url: http://127.0.0.1:3000/api/v1/sales
          - name: health
            url: http://127.0.0.1:3000/api/v1/worker/steps
        """,
    )
    err = error_of(path)
    assert str(err) == f"{path}:6: endpoints[2].name: duplicate endpoint name 'health' (also endpoints[0])"


# --------------------------------------------------------------------------- more error mapping


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "ui: !!python/object/apply:os.system [echo hi]\n")
    assert str(error_of(path)).startswith(f"{path}:1: YAML error: could not determine a constructor")


def test_config_error_is_one_line_and_picklable() -> None:
    err = ConfigError("c.yaml", 3, "probes.interval", "must be greater than zero, got '0s'")
    assert str(err) == "c.yaml:3: probes.interval: must be greater than zero, got '0s'"
    assert str(ConfigError("c.yaml", None, "", "file not found")) == "c.yaml: file not found"
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"ui:\n  theme: \xff\n")
    assert str(error_of(path)) == f"{path}:2: file is not valid UTF-8 text"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert str(error_of(tmp_path)) == f"{tmp_path}: is a directory, expected a YAML file"


def test_all_errors_are_collected_first_by_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ui:\n  theme: drak\nprobes:\n  interval: soon\n")
    err = error_of(path)
    assert (
        str(err)
        == f"{path}:2: ui.theme: must be one of dark, light, high-contrast, got 'drak' (did you mean 'dark'?)"
    )
    assert [str(e) for e in err.others] == [
        f"{path}:4: probes.interval: invalid duration 'soon' "
        "(use a number of seconds or units ms, s, m, h, d, w: '500ms', '5m')"
    ]
    assert len(list(iter_errors(err))) == 2


RULE_ERRORS = [
    ("metric: endpoint.latency\n    warning: 1", 2, "metric",
     "unknown metric 'endpoint.latency' (did you mean 'endpoint.latency_ms'?)"),
    ("metric: db.rtt_ms", 1, "warning", "a rule needs a warning or a critical threshold (or both)"),
    ("metric: db.rtt_ms\n    warning: 10\n    critical: 5", 4, "critical",
     "must be at or above warning (10) for op '>'"),
    ("metric: db.rtt_ms\n    op: '<'\n    warning: 5\n    critical: 10", 5, "critical",
     "must be at or below warning (5) for op '<'"),
    ("metric: db.rtt_ms\n    warning: 10\n    recovery: 12", 4, "recovery",
     "must be at or below the lowest threshold (10)"),
    ("metric: db.rtt_ms\n    warning: 10\n    scope: health", 4, "scope",
     "scope applies only to endpoint.* metrics"),
    ("metric: db.rtt_ms\n    warning: 10\n    depends_on: [api-dwn]", 4, "depends_on[0]",
     "unknown rule 'api-dwn' (did you mean 'api-down'?)"),
    ("metric: endpoint.latency_ms\n    warning: 10\n    scope: helth", 4, "scope",
     "unknown endpoint 'helth' (did you mean 'health'?)"),
    ("metric: custom.auth_failure_rat\n    critical: 10", 2, "metric",
     "no custom metric named 'auth_failure_rat' under metrics (did you mean 'auth_failure_rate'?)"),
    ("metric: db.rtt_ms\n    op: '!='\n    warning: 1", 3, "op",
     "must be one of >, >=, <, <=, got '!='"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "key", "message"), RULE_ERRORS)
def test_rule_validation(tmp_path: Path, body: str, line: int, key: str, message: str) -> None:
    head = (
        "endpoints:\n- {name: health, url: 'http://127.0.0.1/h'}\n"
        "metrics:\n- {name: auth_failure_rate, sql: SELECT 1}\n"
        "alerts:\n  rules:\n  - {name: api-down, metric: endpoint.down_for, critical: 300}\n"
    )
    path = write(tmp_path, head + "  - name: mine\n    " + body + "\n")
    # `line` counts from the rule's "- name: mine" (line 8 of the file)
    assert str(error_of(path)) == f"{path}:{line + 7}: alerts.rules[1].{key}: {message}"


def test_loads_config_names_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        loads_config("probes:\n  windw: 5m\n", source="<demo>", env={})
    assert str(info.value) == "<demo>:2: probes.windw: unknown key 'windw' (did you mean 'window'?)"


# --------------------------------------------------------------------------- interpolation


def test_interpolation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        database:
          dsn: postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST:-localhost}:${DB_PORT:-5432}/pos
          pool_max: ${POOL_MAX:-7}
        endpoints:
          - name: health
            url: ${POS_BASE_URL:-http://127.0.0.1:3000}/test/health
            headers:
              Authorization: Bearer ${TOKEN}
              X-Empty: ${UNSET:-}
            body_contains: literal $${NOT_A_VAR} and $$HOME
        notifications:
          slack:
            webhooks:
              critical: ${SLACK_CRITICAL:-}
              warning: ${SLACK_WARNING-https://hooks.slack.com/services/default}
        """,
    )
    env = {"DB_USER": "ops", "DB_PASSWORD": "pw", "DB_PORT": "", "TOKEN": "abc", "SLACK_WARNING": ""}
    config = load_config(path, env=env)
    assert config.database.dsn == "postgres://ops:pw@localhost:5432/pos"  # ":-" also covers empty
    assert config.database.pool_max == 7  # interpolated strings still coerce to the field type
    assert config.endpoints[0].url == "http://127.0.0.1:3000/test/health"
    assert config.endpoints[0].headers == {"Authorization": "Bearer abc"}  # empty header dropped
    assert config.endpoints[0].body_contains == "literal ${NOT_A_VAR} and $$HOME"
    assert config.notifications.slack.webhooks.critical is None  # empty string -> not configured
    assert config.notifications.slack.webhooks.warning is None  # "-" keeps an empty value: None
    env["DB_PORT"] = "6543"
    assert load_config(path, env=env).database.dsn == "postgres://ops:pw@localhost:6543/pos"


def test_interpolation_default_only_when_unset_with_single_dash(tmp_path: Path) -> None:
    path = write(tmp_path, "ui:\n  theme: ${THEME-light}\n")
    assert load_config(path, env={}).ui.theme == "light"
    assert load_config(path, env={"THEME": "high-contrast"}).ui.theme == "high-contrast"


def test_interpolation_does_not_touch_keys_or_non_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "ui:\n  keymap:\n    ${KEY}: ctrl+r\n  read_only: true\n")
    assert load_config(path, env={}).ui.keymap == {"${KEY}": "ctrl+r"}


def test_interpolation_value_is_not_reparsed_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "triage:\n  actor: ${ACTOR}\n")
    assert load_config(path, env={"ACTOR": "[not, a, list]"}).triage.actor == "[not, a, list]"


def test_interpolation_uses_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWATCH_TEST_ACTOR", "alice@example")
    path = write(tmp_path, "triage:\n  actor: ${OPSWATCH_TEST_ACTOR}\n")
    assert load_config(path).triage.actor == "alice@example"


# --------------------------------------------------------------------------- durations and sizes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        (" 2 m ", 120.0),
        ("10S", 10.0),
        ("-5s", -5.0),
        (45, 45.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5x", "ms", "5 minutes", "1h-5m", True, None, [1], "inf", float("nan")])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (30, "30s"), (90, "90s"), (300, "5m"), (5400, "90m"), (86400, "1d"),
     (604800, "7d"), (0.0005, "0.0005s"), (-60, "-1m")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [("5MB", 5 * 1024 * 1024), ("512KB", 524288), ("1GB", 1024**3), ("1.5GiB", 1610612736),
     ("100", 100), (2048, 2048), ("10 mb", 10485760), ("3k", 3072), ("7B", 7)],
)  # fmt: skip
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["5XB", "MB", "", "0.5B", True, None, "1.1KB"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size() -> None:
    assert [format_size(n) for n in (5242880, 1024, 1536, 0, 1024**3)] == ["5MB", "1KB", "1536B", "0B", "1GB"]


def test_durations_and_sizes_in_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        probes: {interval: 500ms, timeout: 2, window: 1h30m, retention: 1d}
        logging: {rotation: 512KB}
        alerts: {group_wait: 0}
        """,
    )
    config = load_config(path, env={})
    assert (config.probes.interval, config.probes.timeout, config.probes.window) == (0.5, 2.0, 5400.0)
    assert config.probes.retention == 86400.0
    assert config.logging.rotation == 524288
    assert config.alerts.group_wait == 0.0  # zero is fine where only "not negative" is required


# --------------------------------------------------------------------------- defaults and fields


def test_default_config() -> None:
    config = default_config()
    assert config.database.dsn is None
    assert (config.database.pool_min, config.database.pool_max) == (1, 5)
    assert config.database.statement_timeout == 5.0 and config.database.app_schema == "public"
    assert dict(config.database.tables) == {
        name: name
        for name in (
            "businesses",
            "social_channels",
            "social_messages",
            "event_failures",
            "dead_letter_messages",
        )
    }
    assert config.endpoints == ()
    assert (config.probes.interval, config.probes.timeout, config.probes.max_concurrency) == (30.0, 5.0, 200)
    assert (config.probes.window, config.probes.retention, config.probes.flush_interval) == (
        300.0,
        604800.0,
        5.0,
    )
    assert (config.alerts.evaluation_interval, config.alerts.group_wait, config.alerts.repeat_interval) == (
        5.0, 2.0, 3600.0,
    )  # fmt: skip
    assert (config.alerts.flapping.transitions, config.alerts.flapping.window) == (4, 600.0)
    slack = config.notifications.slack
    assert (slack.enabled, slack.username, slack.timeout) == (False, "opswatch", 5.0)
    outbox = config.notifications.outbox
    assert (outbox.max_attempts, outbox.backoff_initial, outbox.backoff_max) == (8, 2.0, 300.0)
    assert (outbox.poll_interval, outbox.lease) == (1.0, 10.0)
    assert config.notifications.pagerduty.url == "https://events.pagerduty.com/v2/enqueue"
    assert config.notifications.pagerduty.severities == ("critical",)
    assert not config.notifications.pagerduty.enabled and not config.notifications.email.enabled
    assert config.notifications.email.severities == ("warning", "critical")
    assert config.triage.redrive.mode == "sql" and config.triage.batch_size == 500
    assert config.triage.confirm_typed_over == 1000 and config.triage.rate_limit is None
    assert (config.sentry.dsn, config.sentry.environment, config.sentry.traces_sample_rate) == (
        None, "production", 0.1,
    )  # fmt: skip
    log = config.logging
    assert (log.level, log.directory, log.rotation, log.retention) == ("INFO", "logs", 5242880, 5)
    assert (log.service, log.environment) == ("opswatch", "production")
    assert (config.ui.refresh_interval, config.ui.theme, config.ui.read_only) == (1.0, "dark", False)
    assert config.ui.wall.cycle_interval == 15.0
    assert config.ui.wall.screens == ("overview", "endpoints", "alerts")


def test_empty_file_and_empty_sections_give_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing yet\n"), env={}) == default_config()
    path = write(tmp_path, "database:\nprobes:\n  interval:\nui: {}\n", name="b.yaml")
    assert load_config(path, env={}) == default_config()


def test_default_rules_reproduce_the_seed() -> None:
    rules = {rule.name: rule for rule in DEFAULT_RULES}
    summary = {name: (r.metric, r.op, r.warning, r.critical) for name, r in rules.items()}
    assert summary == {
        "api-down": ("endpoint.down_for", ">", None, 300),  # down > 5 min, critical
        "slow-response": ("endpoint.latency_ms", ">", 2000, 5000),  # > 2 s warning, > 5 s critical
        "error-rate": ("endpoint.error_rate", ">", 5, 10),  # > 5 % warning, > 10 % critical
        "auth-failures": ("custom.auth_failure_rate", ">", None, 10),  # > 10 % critical
        "db-unreachable": ("db.unreachable", ">", None, 0),  # critical
        "slow-queries": ("db.slowest_mean_ms", ">", 1000, None),  # > 1 s warning
        "event-failures": ("events.failures_last_hour", ">", 5, None),  # > 5 per hour warning
    }
    assert rules["api-down"].scope == "*" and rules["db-unreachable"].scope is None
    assert set(rules["error-rate"].depends_on) == {"api-down", "db-unreachable"}


def test_omitted_rules_use_defaults_auth_rule_only_with_its_metric(tmp_path: Path) -> None:
    names = [rule.name for rule in default_config().alerts.rules]
    assert names == [r.name for r in DEFAULT_RULES if r.name != "auth-failures"]
    path = write(tmp_path, "metrics:\n  - name: auth_failure_rate\n    sql: SELECT 0\n")
    assert load_config(path, env={}).alerts.rules == DEFAULT_RULES
    explicit = write(tmp_path, "alerts:\n  rules: []\n", name="none.yaml")
    assert load_config(explicit, env={}).alerts.rules == ()


def test_endpoint_defaults_and_inheritance(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        probes: {interval: 10s, timeout: 2s}
        endpoints:
          - name: health
            url: http://127.0.0.1:3000/test/health
          - name: sales
            url: https://pos.example.com/api/v1/sales
            method: post
            interval: 1m
            expect_status: [2xx, 301, 400-402]
            json_field: {path: data.status, equals: ok}
            service: payments
        """,
    )
    health, sales = load_config(path, env={}).endpoints
    assert (health.interval, health.timeout, health.method) == (10.0, 2.0, "GET")
    assert health.expect_status == frozenset(range(200, 300))
    assert (health.verify_tls, health.follow_redirects, health.service) == (True, False, "api")
    assert health.body_contains is None and health.json_field is None
    assert (sales.interval, sales.timeout, sales.method, sales.service) == (60.0, 2.0, "POST", "payments")
    assert sales.accepts_status(204) and sales.accepts_status(301) and sales.accepts_status(401)
    assert not sales.accepts_status(302) and not sales.accepts_status(500)
    assert sales.json_field is not None and (sales.json_field.path, sales.json_field.equals) == (
        "data.status",
        "ok",
    )


def test_endpoint_inherits_probe_defaults_for_empty_values(tmp_path: Path) -> None:
    path = write(tmp_path, "probes: {interval: 10s}\nendpoints:\n- {name: a, url: 'http://x', interval: }\n")
    assert load_config(path, env={}).endpoints[0].interval == 10.0


def test_endpoint_rules_default_scope_to_all(tmp_path: Path) -> None:
    path = write(
        tmp_path, "alerts:\n  rules:\n    - {name: slow, metric: endpoint.latency_p95_ms, warning: 800}\n"
    )
    assert load_config(path, env={}).alerts.rules[0].scope == "*"


def test_slack_routing_and_enabled() -> None:
    config = loads_config(
        "notifications:\n  slack:\n    webhooks:\n"
        "      critical: https://hooks.slack.com/services/C\n      default: https://hooks.slack.com/services/D\n",
        env={},
    )
    slack = config.notifications.slack
    assert slack.enabled
    assert slack.webhooks.for_severity("critical") == "https://hooks.slack.com/services/C"
    assert slack.webhooks.for_severity("warning") == "https://hooks.slack.com/services/D"
    assert slack.webhooks.for_severity("bogus") == "https://hooks.slack.com/services/D"
    off = loads_config(
        "notifications:\n  slack:\n    enabled: false\n    webhooks: {critical: 'https://x/y'}\n"
    )
    assert not off.notifications.slack.enabled


def test_database_columns_and_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        database:
          app_schema: pos
          tables: {dead_letter_messages: dlq}
          columns:
            dead_letter_messages: {error_message: last_error}
        """,
    )
    db = load_config(path, env={}).database
    assert db.table("dead_letter_messages") == "dlq" and db.table("businesses") == "businesses"
    assert db.column("dead_letter_messages", "error_message") == "last_error"
    assert db.column("dead_letter_messages", "status") == "status"


def test_log_level_normalised_and_env_override() -> None:
    config = loads_config("logging:\n  level: warn\n", env={})
    assert config.logging.level == "WARNING"
    assert resolve_level(config.logging.level, {}) == "WARNING"
    assert resolve_level(config.logging.level, {"LOG_LEVEL": "debug"}) == "DEBUG"
    assert resolve_level(LoggingConfig().level, {"LOG_LEVEL": ""}) == "INFO"
    # an unknown LOG_LEVEL is ignored (setup_logging logs a warning), the configured level holds
    assert resolve_level(config.logging.level, {"LOG_LEVEL": "chatty"}) == "WARNING"
    with pytest.raises(ConfigError) as info:
        loads_config("logging:\n  level: chatty\n", source="opswatch.yaml", env={})
    assert str(info.value) == (
        "opswatch.yaml:2: logging.level: invalid log level 'chatty' "
        "(one of trace, debug, info, success, warning, error, critical)"
    )


def test_models_are_frozen_and_strict() -> None:
    config = default_config()
    with pytest.raises(pydantic.ValidationError):
        config.probes.interval = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Endpoint.model_validate({"name": "x", "url": "http://x", "bogus": 1})
    rule = AlertRule(name="r", metric="db.rtt_ms", warning=1, for_=30)
    assert rule.for_ == 30.0


def _models(model: type[pydantic.BaseModel], seen: set[type[pydantic.BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for arg in _flatten(info.annotation):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                _models(arg, seen)


def _flatten(annotation: Any) -> list[Any]:
    out = [annotation]
    for arg in typing.get_args(annotation):
        out.extend(_flatten(arg))
    return out


def test_every_field_has_a_description_and_forbids_extras() -> None:
    models: set[type[pydantic.BaseModel]] = set()
    _models(Config, models)
    assert len(models) >= 20
    for model in models:
        assert model.model_config.get("extra") == "forbid", model
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no docstring"


def test_metrics_catalogue_covers_the_default_rules() -> None:
    assert all(r.metric in METRICS or r.metric.startswith("custom.") for r in DEFAULT_RULES)


# --------------------------------------------------------------------------- the example file


def test_example_loads_without_environment() -> None:
    config = load_config(EXAMPLE, env={})
    assert [e.name for e in config.endpoints] == ["health", "sales", "worker-steps"]
    assert [e.url for e in config.endpoints] == [
        "http://127.0.0.1:3000/test/health",
        "http://127.0.0.1:3000/api/v1/sales",
        "http://127.0.0.1:3000/api/v1/worker/steps",
    ]
    assert config.alerts.rules == DEFAULT_RULES
    assert config.database.dsn is None and not config.notifications.slack.enabled
    assert config.sentry.dsn is None and config.notifications.pagerduty.routing_key is None
    assert config.endpoints[1].headers == {}


def test_example_uses_environment() -> None:
    env = {
        "POS_BASE_URL": "https://pos.example.com",
        "SLACK_WEBHOOK_CRITICAL": "https://hooks.slack.com/services/T/B/c",
    }
    config = load_config(EXAMPLE, env=env)
    assert config.endpoints[0].url == "https://pos.example.com/test/health"
    assert config.notifications.slack.enabled


def _field_paths(model: type[pydantic.BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, key) of every field, through nested models and lists of models."""
    out: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        out.append((path, key))
        for arg in _flatten(info.annotation):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                out.extend(_field_paths(arg, path + "."))
                break
    return out


def _present(data: Any, path: list[str]) -> bool:
    if not path:
        return True
    if isinstance(data, list):
        return any(_present(item, path) for item in data)
    return isinstance(data, dict) and path[0] in data and _present(data[path[0]], path[1:])


def _commented_keys(lines: list[str]) -> set[str]:
    """Keys written on a line right after a comment line (``# ...`` or ``- # ...``)."""
    keys = set()
    for previous, line in itertools.pairwise(lines):
        match = re.match(r"\s*(?:- )?([A-Za-z_][\w-]*):", line)
        if match and previous.lstrip().lstrip("- ").startswith("#"):
            keys.add(match.group(1))
    return keys


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    lines = text.splitlines()
    comments = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    commented = _commented_keys(lines)
    for path, key in _field_paths(Config):
        if _present(data, path.split(".")):
            assert key in commented, f"{path} is set in config.example.yaml without a comment above it"
        else:  # e.g. the fields of a generic webhook: shown in a commented-out example
            assert re.search(rf"[\s{{,]{re.escape(key)}:", comments), f"{path} is not documented"


# --------------------------------------------------------------------------- lookup order


def test_find_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    xdg = tmp_path / "xdg"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path / "home")}
    assert find_config_path(None, env) is None
    user = xdg / "opswatch" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("{}\n")
    assert find_config_path(None, env) == user
    (work / "opswatch.yaml").write_text("{}\n")
    assert find_config_path(None, env) == Path("opswatch.yaml")
    env["OPSWATCH_CONFIG"] = str(tmp_path / "from-env.yaml")  # explicit: returned even if missing
    assert find_config_path(None, env) == tmp_path / "from-env.yaml"
    assert find_config_path("cli.yaml", env) == Path("cli.yaml")


def test_find_config_path_defaults_to_home_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "home" / ".config" / "opswatch" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("{}\n")
    assert find_config_path(None, {"HOME": str(tmp_path / "home")}) == user
    assert find_config_path(None, {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": "relative"}) == user


# --------------------------------------------------------------------------- render_effective


def test_render_effective_masks_every_secret() -> None:
    config = load_config(DATA / "secrets.yaml", env={})
    text = render_effective(config)
    for secret in SECRETS:
        assert secret in repr(config) or secret in str(config.model_dump())  # the model keeps real values
        assert secret not in text, secret
    assert "postgres://ops:***@db/pos" in text
    assert "https://hooks.slack.com/services/***" in text
    assert "Authorization: '***'" in text and "Accept: application/json" in text
    assert "https://***@o123.ingest.sentry.io/456" in text
    assert "password: '***'" in text and "routing_key: '***'" in text
    assert "username: alerts" in text
    assert "https://pos.example.com/api/v1/sales?api_key=***" in text
    assert (
        config.notifications.slack.webhooks.critical
        == "https://hooks.slack.com/services/T000/B000/sl4ck-critical"
    )


def test_render_effective_round_trips(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    text = render_effective(config)
    assert text.startswith("# opswatch effective configuration (secrets masked)\n")
    assert "interval: 30s" in text and "rotation: 5MB" in text and "retention: 7d" in text
    assert "- 2xx" in text and "for: 0s" in text
    again = loads_config(text, source="<effective>", env={})
    assert again == config


def test_render_effective_of_defaults_loads_back() -> None:
    assert loads_config(render_effective(default_config()), env={}) == default_config()


@pytest.mark.parametrize(
    ("yaml_text", "secret"),
    [
        ('endpoints: [{name: a, url: "http://u:hunter22@h:99999/x"}]', "hunter22"),
        ('database: {dsn: "postgresql://u:secretpw@127.0.0.1:99999/x"}', "secretpw"),
        (
            'notifications: {slack: {webhooks: {critical: "ftp://hooks.slack.com/services/T/B/sekrit"}}}',
            "sekrit",
        ),
        ('sentry: {dsn: "gopher://abc123key@o1.ingest.sentry.io/5"}', "abc123key"),
    ],
)
def test_invalid_urls_are_reported_without_their_secrets(yaml_text: str, secret: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_config(yaml_text, "x.yaml")
    assert secret not in str(info.value)
    assert str(info.value).startswith("x.yaml:1: ")


# --------------------------------------------------------------------------- one-line errors

# Each bad input is reported as one line `file:line: key: message` (`expected` follows the file).

ONE_LINE_ERRORS = [
    pytest.param(
        "probes:\n  interval: [1, 2\nui:\n  theme: dark\n",
        ":3: probes.interval[1]: YAML syntax error: expected ',' or ']', but got ':' (column 3)",
        id="yaml_syntax_error_in_flow_list",
    ),
    pytest.param(
        "databse:\n  dsn: postgres://ops@db/pos\n",
        ":1: databse: unknown key 'databse' (did you mean 'database'?)",
        id="unknown_section_suggests_the_nearest",
    ),
    pytest.param(
        "probes:\n  zzz: 1\n",
        ":2: probes.zzz: unknown key 'zzz' (expected one of: interval, timeout, max_concurrency, "
        "window, down_after, retention, flush_interval)",
        id="unknown_key_without_close_match_lists_allowed_keys",
    ),
    pytest.param(
        "ui:\n  theme: dark\nendpoints:\n  health: http://x\n",
        ":3: endpoints: expected a list, got a mapping (value not shown: it may hold secrets)",
        id="wrong_type_section_is_a_mapping_not_a_list",
    ),
    pytest.param(
        "ui:\n  read_only: maybe\n",
        ":2: ui.read_only: expected true or false, got 'maybe'",
        id="wrong_type_boolean",
    ),
    pytest.param(
        "endpoints:\n  - name: health\n    url: http://127.0.0.1:3000/test/health\n    interval: 0s\n",
        ":4: endpoints[0].interval: must be greater than zero, got '0s'",
        id="zero_interval",
    ),
    pytest.param(
        "alerts:\n  evaluation_interval: -5s\n",
        ":2: alerts.evaluation_interval: must be greater than zero, got '-5s'",
        id="negative_interval",
    ),
    pytest.param(
        "probes:\n  timeout: -1\n",
        ":2: probes.timeout: must be greater than zero, got -1",
        id="negative_plain_number_timeout",
    ),
    pytest.param(
        """
        alerts:
          rules:
            - name: slow
              metric: endpoint.latency_ms
              warning: 2000
              for: -1m
        """,
        ":6: alerts.rules[0].for: must not be negative, got '-1m'",
        id="negative_for_duration",
    ),
    pytest.param(
        "endpoints:\n  - name: health\n    url: htp://127.0.0.1:3000/test/health\n",
        ":3: endpoints[0].url: invalid URL 'htp://127.0.0.1:3000/test/***': must start with http:// or https://",
        id="invalid_url",
    ),
    pytest.param(
        "endpoints:\n  - name: health\n",
        ":2: endpoints[0].url: required key is missing",
        id="missing_required_key_points_at_the_item",
    ),
    pytest.param(
        "probes:\n  interval: 10s\n  timeout: 1s\n  interval: 20s\n",
        ":4: probes.interval: duplicate key (first defined on line 2)",
        id="duplicate_yaml_key",
    ),
    pytest.param(
        "ui:\n  keymap:\n    off: ctrl+o\n",
        ":3: ui.keymap.off: keys must be text; quote it: 'off'",
        id="keys_must_be_text",
    ),
    pytest.param(
        "- a\n- b\n",
        ":1: expected a mapping of sections at the top, got list",
        id="top_level_must_be_a_mapping",
    ),
    pytest.param(
        "triage:\n  redrive:\n    mode: http\n",
        ":2: triage.redrive.replay_url: required when mode is 'http' (the backend's replay URL)",
        id="redrive_http_needs_replay_url",
    ),
    pytest.param(
        "database:\n  dsn: mysql://ops:pw@db/pos\n",
        ":2: database.dsn: invalid DSN 'mysql://ops:***@db/pos': must start with postgresql:// or postgres://",
        id="invalid_dsn",
    ),
    pytest.param(
        "database:\n  pool_min: 9\n  pool_max: 5\n",
        ":2: database.pool_min: must not exceed pool_max (5)",
        id="pool_min_above_max",
    ),
    pytest.param(
        "database:\n  columns:\n    dead_letters:\n      error_message: last_error\n",
        ":3: database.columns.dead_letters: unknown table 'dead_letters' "
        "(did you mean 'dead_letter_messages'?)",
        id="unknown_table_in_columns",
    ),
    pytest.param(
        """
        alerts:
          rules:
            - {name: a, metric: db.rtt_ms, warning: 1, depends_on: [b]}
            - {name: b, metric: db.rtt_ms, warning: 1, depends_on: [a]}
        """,
        ":3: alerts.rules[0].depends_on: depends_on forms a cycle",
        id="rule_dependency_cycle",
    ),
    pytest.param(
        """
        alerts:
          rules:
            - {name: a, metric: db.rtt_ms, warning: 1}
            - {name: a, metric: dlq.pending, warning: 1}
        """,
        ":4: alerts.rules[1].name: duplicate rule name 'a' (also rules[0])",
        id="duplicate_rule_names",
    ),
    pytest.param(
        "notifications:\n  slack:\n    enabled: true\n",
        ":3: notifications.slack.enabled: Slack is enabled but no webhook URL is set under webhooks",
        id="slack_enabled_without_webhook",
    ),
    pytest.param(
        "notifications:\n  email:\n    smtp_host: smtp.example.com\n    recipients: [a@b.c]\n",
        ":2: notifications.email.sender: required when smtp_host is set",
        id="email_needs_sender_and_recipients",
    ),
    pytest.param(
        "ui:\n  wall:\n    screens: []\n",
        ":3: ui.wall.screens: needs at least 1 item",
        id="too_short_list",
    ),
    pytest.param(
        "sentry:\n  traces_sample_rate: 1.5\n",
        ":2: sentry.traces_sample_rate: input should be less than or equal to 1, got 1.5",
        id="traces_sample_rate_range",
    ),
    pytest.param(
        "triage:\n  actor: ${not valid}\n",
        ":2: triage.actor: malformed variable reference '${not valid}' (use ${NAME} or ${NAME:-default})",
        id="malformed_reference",
    ),
    pytest.param(
        "logging:\n  rotation: 5 megs\n",
        ":2: logging.rotation: invalid size '5 megs' (use bytes or a unit: '512KB', '5MB', '1GB')",
        id="bad_size_in_config",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ONE_LINE_ERRORS)
def test_one_line_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert str(error_of(path)) == f"{path}{expected}"
