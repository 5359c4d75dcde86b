"""``opswatch check`` as a Nagios / Icinga plugin: status line, perfdata grammar, exit codes, -w/-c/-t/--only.

The perfdata is read back with a small parser written from the Monitoring Plugins development
guidelines (not from opswatch's own formatter), against a real PostgreSQL and real HTTP endpoints.
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from cli.main import main
from core.nagios import Range
from tests.cli import run_in_thread
from tests.pg import with_database
from tests.servers import FleetServer
from tests.test_triage_support import add_dlq, add_events, reset_app, seed_base

# --------------------------------------------------------------------------- guideline parser

_UOM = ("us", "ms", "s", "%", "KB", "MB", "TB", "B", "c", "")
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_RANGE = rf"@?(?:(?:{_NUMBER}|~):)?(?:{_NUMBER})?"
_ITEM = re.compile(
    rf"(?P<label>'(?:[^'=]|'')+'|[^'=\s]+)=(?P<value>{_NUMBER}|U)(?P<uom>us|ms|s|%|KB|MB|TB|B|c)?"
    rf"(?:;(?P<warn>{_RANGE})?(?:;(?P<crit>{_RANGE})?(?:;(?P<min>{_NUMBER})?(?:;(?P<max>{_NUMBER})?)?)?)?)?"
)


@dataclass(frozen=True)
class Perf:
    label: str
    value: float | None
    uom: str
    warn: str
    crit: str
    min: float | None
    max: float | None


def parse_perfdata(text: str) -> dict[str, Perf]:
    """Space-separated ``'label'=value[UOM];[warn];[crit];[min];[max]`` items; raises on anything else."""
    out: dict[str, Perf] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _ITEM.match(text, pos)
        assert match is not None, f"not perfdata at {text[pos : pos + 40]!r}"
        end = match.end()
        assert end == len(text) or text[end] == " ", f"junk after item: {text[end : end + 20]!r}"
        label = match["label"]
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        assert label not in out, f"duplicate label {label}"
        num = lambda s: None if s is None else float(s)  # noqa: E731
        out[label] = Perf(
            label,
            None if match["value"] == "U" else float(match["value"]),
            match["uom"] or "",
            match["warn"] or "",
            match["crit"] or "",
            num(match["min"]),
            num(match["max"]),
        )
        pos = end + 1
    return out


def split_output(out: str) -> tuple[str, str, dict[str, Perf], list[str]]:
    """(state, summary, perfdata, long-output lines) of plugin output."""
    first, *rest = out.rstrip("\n").split("\n")
    text, _, perf = first.partition(" | ")
    match = re.fullmatch(r"OPSWATCH (OK|WARNING|CRITICAL|UNKNOWN) - (.+)", text)
    assert match, first
    assert "|" not in match[2]
    return match[1], match[2], parse_perfdata(perf), rest


def guideline_alerts(spec: str, value: float) -> bool:
    """The guidelines' table: ``10`` outside 0..10, ``10:`` < 10, ``~:10`` > 10, ``@10:20`` inside."""
    inside = spec.startswith("@")
    body = spec.lstrip("@")
    if ":" in body:
        lo, hi = body.split(":")
        start = -math.inf if lo == "~" else float(lo or 0)
        end = math.inf if hi == "" else float(hi)
    else:
        start, end = 0.0, float(body)
    within = start <= value <= end
    return within if inside else not within


# --------------------------------------------------------------------------- helpers


async def run_check(capsys: Any, *argv: str) -> tuple[int, str, str]:
    return await run_in_thread(capsys, "check", *argv)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def fleet() -> AsyncIterator[FleetServer]:
    async with FleetServer() as server:
        yield server


@pytest_asyncio.fixture
async def seeded(db_dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
        base = await seed_base(conn)
        dlq = await add_dlq(conn, 12, business_id=base["b1"], channel_id=base["c1"])
        events = await add_events(conn, 7, business_id=base["b1"])
    finally:
        await conn.close()
    return {"dlq": dlq, "events": events}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "opswatch.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def fleet_config(tmp_path: Path, dsn: str | None, fleet: FleetServer, *names: str, extra: str = "") -> str:
    body = f"database:\n  dsn: {dsn}\n" if dsn else ""
    body += "endpoints:\n" + "".join(
        f"  - name: {name}\n    url: {fleet.url(name)}\n    timeout: 3\n" for name in names
    )
    return write(tmp_path, body + extra)


# --------------------------------------------------------------------------- output and perfdata


async def test_perfdata_follows_the_guidelines(
    tmp_path: Path, db_dsn: str, seeded: dict[str, Any], fleet: FleetServer, capsys: Any
) -> None:
    fleet.set("health", delay_s=0.05)
    config = fleet_config(tmp_path, db_dsn, fleet, "health", "sales")
    code, out, err = await run_check(capsys, "--config", config)
    state, summary, perf, details = split_output(out)
    # 7 event failures in the last hour breach the seed's event-failures warning (> 5)
    assert (code, state) == (1, "WARNING"), out
    assert summary == "event-failures (7)" and details[0] == "WARNING: event-failures (7)"
    assert "Traceback" not in err

    latency = perf["health_latency"]
    assert latency.uom == "s" and 0.05 <= (latency.value or 0) < 3
    assert (latency.warn, latency.crit, latency.min, latency.max) == ("2", "5", 0, None)  # 2000/5000 ms
    assert perf["health_up"] == Perf("health_up", 1, "", "", "", 0, 1)
    assert perf["sales_up"].value == 1 and "sales_latency" in perf
    assert perf["dlq_pending"] == Perf("dlq_pending", 12, "", "", "", 0, None)
    assert perf["events_failures_last_hour"] == Perf("events_failures_last_hour", 7, "", "5", "", 0, None)
    assert perf["db_unreachable"] == Perf("db_unreachable", 0, "", "", "0", 0, 1)
    assert perf["db_connections_used"].uom == "%" and perf["db_connections_used"].max == 100
    assert perf["db_size"].uom == "B" and (perf["db_size"].value or 0) > 1_000_000
    assert perf["db_rtt"].uom == "s" and (perf["db_rtt"].value or 1) < 1
    for item in perf.values():  # every threshold judges the value as the check did
        if item.value is not None and item.warn:
            assert guideline_alerts(item.warn, item.value) == (item.label == "events_failures_last_hour")


async def test_failing_endpoint_is_critical_with_details(
    tmp_path: Path, db_dsn: str, seeded: dict[str, Any], fleet: FleetServer, capsys: Any
) -> None:
    fleet.set("health", status=503)
    config = fleet_config(tmp_path, db_dsn, fleet, "health")
    code, out, _ = await run_check(capsys, "--config", config)
    state, summary, perf, details = split_output(out)
    assert (code, state) == (2, "CRITICAL")
    assert summary.startswith("endpoint-probe on health (HTTP 503")
    assert details[0].startswith("CRITICAL: endpoint-probe on health") and details[1].startswith("WARNING: ")
    assert perf["health_up"].value == 0


async def test_all_ok(tmp_path: Path, db_dsn: str, fleet: FleetServer, capsys: Any) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
    finally:
        await conn.close()
    config = fleet_config(tmp_path, db_dsn, fleet, "health")
    code, out, _ = await run_check(capsys, "--config", config)
    state, summary, perf, details = split_output(out)
    assert (code, state) == (0, "OK")
    # without pg_stat_statements the slowest-statement metric has no value: said, not UNKNOWN
    assert details == ["NO DATA: slow-queries (db.slowest_mean_ms has no value)"]
    assert summary == "1 endpoint up, database up, 4 rules ok"  # error-rate needs more than one probe
    assert perf["dlq_pending"].value == 0


# --------------------------------------------------------------------------- UNKNOWN


def one_unknown_line(code: int, out: str, err: str) -> str:
    assert code == 3, out
    assert out.count("\n") == 1 and out.startswith("OPSWATCH UNKNOWN - "), out
    assert "Traceback" not in out + err
    return out.strip()


async def test_no_config_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPSWATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    line = one_unknown_line(*await run_check(capsys))
    assert "no config file found" in line


async def test_bad_config_names_file_and_line(tmp_path: Path, capsys: Any) -> None:
    config = write(tmp_path, "probes:\n  interval: 5s\n  timeout: soon\n")
    line = one_unknown_line(*await run_check(capsys, "--config", config))
    assert f"{config}:3" in line and "timeout" in line


@pytest.mark.parametrize("argv", [["--bogus"], ["-w", "ten"], ["-t", "0"], ["--only"]])
async def test_usage_errors_are_unknown(argv: list[str], capsys: Any) -> None:
    line = one_unknown_line(*await run_check(capsys, *argv))
    assert "usage:" in line and "opswatch check --help" in line


async def test_other_commands_keep_exit_2(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dlq", "list", "--bogus"])
    assert exc.value.code == 2 and capsys.readouterr().out == ""


async def test_unknown_rule_names_the_valid_ones(tmp_path: Path, fleet: FleetServer, capsys: Any) -> None:
    config = fleet_config(tmp_path, None, fleet, "health")
    line = one_unknown_line(*await run_check(capsys, "--config", config, "--only", "api-down,nope"))
    assert "unknown rule 'nope'" in line and "api-down, slow-response" in line and "endpoint-probe" in line


async def test_unreachable_database(tmp_path: Path, fleet: FleetServer, capsys: Any) -> None:
    port = closed_port()
    dsn = f"postgresql://watcher:hunter2secret@127.0.0.1:{port}/posdb"
    config = fleet_config(tmp_path, dsn, fleet, "health")
    # a rule that watches reachability judges the outage: CRITICAL, naming where
    code, out, _ = await run_check(capsys, "--config", config)
    state, summary, _, _ = split_output(out)
    assert (code, state) == (2, "CRITICAL")
    assert f"db-unreachable (connection refused (database posdb on 127.0.0.1:{port}))" in summary
    assert "hunter2secret" not in out
    # a rule that needs the data cannot be judged: UNKNOWN, one line
    line = one_unknown_line(*await run_check(capsys, "--config", config, "--only", "event-failures"))
    assert f"database posdb on 127.0.0.1:{port}" in line and "hunter2secret" not in line


async def test_database_without_app_tables(
    tmp_path: Path, pg_admin_dsn: str, fleet: FleetServer, capsys: Any
) -> None:
    name = f"ow_empty_{int(time.time() * 1000) % 10_000_000}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        config = fleet_config(tmp_path, with_database(pg_admin_dsn, name), fleet, "health")
        line = one_unknown_line(*await run_check(capsys, "--config", config))
        assert f"cannot read the app's tables in database {name} on 127.0.0.1:" in line
        assert "app schema unusable: database.tables." in line and "not found" in line
    finally:
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()


async def test_timeout_is_unknown(tmp_path: Path, fleet: FleetServer, capsys: Any) -> None:
    fleet.set("slow", delay_s=2.5)
    config = fleet_config(tmp_path, None, fleet, "slow")
    started = time.monotonic()
    argv = ("--config", config, "--only", "endpoint-probe", "-t", "0.3")
    line = one_unknown_line(*await run_check(capsys, *argv))
    assert time.monotonic() - started < 2.0
    assert line == "OPSWATCH UNKNOWN - check timed out after 0.3s (-t 0.3)"


# --------------------------------------------------------------------------- --only, -w, -c


async def test_only_one_rule_with_overrides(
    tmp_path: Path, db_dsn: str, seeded: dict[str, Any], fleet: FleetServer, capsys: Any
) -> None:
    config = fleet_config(tmp_path, db_dsn, fleet, "health")
    code, out, _ = await run_check(capsys, "--config", config, "--only", "slow-response")
    state, _, perf, _ = split_output(out)
    assert (code, state, list(perf)) == (0, "OK", ["health_latency"])  # event-failures not judged here

    # thresholds in the perfdata unit (seconds), replacing the rule's 2000/5000 ms
    code, out, _ = await run_check(capsys, "--config", config, "--only", "slow-response", "-w", "0.000001")
    state, summary, perf, _ = split_output(out)
    assert (code, state) == (1, "WARNING") and summary.startswith("slow-response on health (")
    assert (perf["health_latency"].warn, perf["health_latency"].crit) == ("0.000001", "5")

    code, out, _ = await run_check(capsys, "--config", config, "--only", "slow-response", "-c", "@0:60")
    assert code == 2 and split_output(out)[2]["health_latency"].crit == "@60"

    code, out, _ = await run_check(capsys, "--config", config, "--only", "event-failures", "-w", "10:")
    state, _, perf, _ = split_output(out)
    assert (code, state, perf["events_failures_last_hour"].warn) == (1, "WARNING", "10:")  # 7 < 10

    line = one_unknown_line(*await run_check(capsys, "--config", config, "-w", "5"))
    assert "--only" in line
    line = one_unknown_line(
        *await run_check(capsys, "--config", config, "--only", "slow-response,event-failures", "-c", "5")
    )
    assert "one metric" in line


@pytest.mark.parametrize(
    ("spec", "text"),
    [("10", "10"), ("10:", "10:"), ("~:10", "~:10"), ("10:20", "10:20"), ("@10:20", "@10:20"), ("@5", "@5")],
)
def test_ranges_match_the_guidelines(spec: str, text: str) -> None:
    parsed = Range.parse(spec)
    assert str(parsed) == text
    for value in (-1, 0, 5, 9.99, 10, 10.01, 15, 20, 20.5, 1e6):
        assert parsed.alerts(value) == guideline_alerts(spec, value), (spec, value)


@pytest.mark.parametrize("spec", ["", "@", "abc", "1e3", "20:10", "inf", "1:2:3"])
def test_bad_ranges(spec: str) -> None:
    with pytest.raises(ValueError):
        Range.parse(spec)


@pytest.mark.parametrize(("op", "expect"), [(">", "5"), (">=", "@5:"), ("<", "5:"), ("<=", "@~:5")])
def test_rule_thresholds_as_ranges(op: str, expect: str) -> None:
    rng = Range.from_rule(op, 5, non_negative=True)
    assert str(rng) == expect
    compare = {">": lambda v: v > 5, ">=": lambda v: v >= 5, "<": lambda v: v < 5, "<=": lambda v: v <= 5}[op]
    for value in (0, 4.9, 5, 5.1, 100):
        assert rng.alerts(value) == compare(value) == guideline_alerts(expect, value)
