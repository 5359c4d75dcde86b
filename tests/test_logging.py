"""Tests for core.logging (loguru sinks, JSON files, ring buffer, redaction)."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from core.config import default_config, loads_config
from core.logging import LEVELS, LogBuffer, LogLine, reset_logging, resolve_level, setup_logging
from core.redact import clear_secrets, register_secret
from core.runtime import start_observability

ROOT = Path(__file__).resolve().parent.parent
DSN = "postgres://ops:Pg-Secret-1@db.internal/pos"
WEBHOOK = "https://hooks.slack.com/services/T0SECRET/B0SECRET/WebhookSecretXYZ"
SECRETS = ("Pg-Secret-1", "T0SECRET", "B0SECRET", "WebhookSecretXYZ")


@pytest.fixture(autouse=True)
def _restore_loguru() -> Iterator[None]:
    logger.remove()
    yield
    reset_logging()
    logger.remove()
    clear_secrets()


def read_lines(path: Path) -> list[dict[str, Any]]:
    logger.complete()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_all(directory: Path) -> str:
    logger.complete()
    return "".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.log")))


# --------------------------------------------------------------------------- JSON files


def test_json_lines_have_standard_fields_and_context(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, service="opswatch-test", environment="staging", env={})
    logger.bind(endpoint="sales", rule="latency").info("probe slow {ms} ms", ms=5100)
    with logger.contextualize(dlq_id=17):
        logger.warning("dlq backlog")

    first, second = read_lines(tmp_path / "combined.log")
    assert first["message"] == "probe slow 5100 ms"
    assert first["level"] == "info"
    assert first["service"] == "opswatch-test"
    assert first["environment"] == "staging"
    assert first["endpoint"] == "sales"
    assert first["rule"] == "latency"
    assert first["ms"] == 5100  # keyword arguments are captured as context
    assert first["logger"] == __name__
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert first["timestamp"].endswith("Z") and stamp.utcoffset() is not None
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert second["dlq_id"] == 17 and second["level"] == "warning"
    assert "exception" not in first


def test_exception_is_serialised(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, env={})
    try:
        raise ValueError("bad value 42")
    except ValueError:
        logger.exception("handler failed")

    (line,) = read_lines(tmp_path / "error.log")
    assert line["message"] == "handler failed"
    assert line["exception"]["type"] == "ValueError"
    assert line["exception"]["value"] == "bad value 42"
    assert "Traceback (most recent call last)" in line["exception"]["traceback"]
    assert "test_exception_is_serialised" in line["exception"]["traceback"]


def test_context_colliding_with_standard_fields(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, env={})
    logger.bind(message="ctx", level="ctx-level", endpoint="e").info("real")
    (line,) = read_lines(tmp_path / "combined.log")
    assert line["message"] == "real" and line["level"] == "info"
    assert line["extra_message"] == "ctx" and line["extra_level"] == "ctx-level"


def test_error_log_gets_only_errors(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, level="DEBUG", env={})
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")
    assert [x["message"] for x in read_lines(tmp_path / "combined.log")] == ["d", "i", "w", "e", "c"]
    assert [x["level"] for x in read_lines(tmp_path / "error.log")] == ["error", "critical"]


def test_level_filters_combined_log(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, level="WARNING", env={})
    logger.info("dropped")
    logger.warning("kept")
    assert [x["message"] for x in read_lines(tmp_path / "combined.log")] == ["kept"]


@pytest.mark.parametrize("rotation", [400, 2_000])
def test_size_rotation_and_retention(tmp_path: Path, rotation: int) -> None:
    setup_logging(directory=tmp_path, rotation=rotation, retention=3, env={})
    for i in range(300):
        logger.error("message number {i} " + "x" * 60, i=i)
    logger.complete()

    combined = sorted(tmp_path.glob("combined*.log"))
    errors = sorted(tmp_path.glob("error*.log"))
    assert len(combined) == 3, combined  # active file + 2 rotated (Winston's maxFiles)
    assert len(errors) == 3, errors
    assert (tmp_path / "combined.log") in combined
    for path in combined:
        assert path.stat().st_size <= rotation + 500
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line)  # rotation never splits a line
    # the newest record is in the active file
    assert read_lines(tmp_path / "combined.log")[-1]["i"] == 299


def test_files_do_not_contain_raw_control_characters(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path, env={})
    logger.bind(payload="\x9b2J").error("evil \x1b[2J\u202e title")
    logger.complete()
    raw = (tmp_path / "combined.log").read_text(encoding="utf-8")
    assert "\\u001b[2J" in raw and "\\u009b" in raw and "\\u202e" in raw
    assert "\x1b" not in raw and "\x9b" not in raw and "\u202e" not in raw
    (line,) = read_lines(tmp_path / "combined.log")
    assert line["message"] == "evil \x1b[2J\u202e title"  # escaped, not lost


def test_setup_twice_replaces_sinks(tmp_path: Path) -> None:
    first = setup_logging(directory=tmp_path, env={})
    second = setup_logging(directory=tmp_path, env={})
    logger.info("once")
    assert [x["message"] for x in read_lines(tmp_path / "combined.log")] == ["once"]
    assert [line.message for line in second.snapshot()] == ["once"]
    assert first.snapshot() == []


def test_directory_none_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    buffer = setup_logging(directory=None, env={})
    logger.error("no files")
    logger.complete()
    assert list(tmp_path.iterdir()) == []
    assert [line.message for line in buffer.snapshot()] == ["no files"]


def test_unusable_directory_falls_back_to_buffer(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file")
    buffer = setup_logging(directory=blocker / "logs", env={})
    logger.info("still logging")
    lines = buffer.snapshot()
    assert lines[0].level == "WARNING"
    assert "file logging disabled" in lines[0].message and "not-a-dir" in lines[0].message
    assert lines[1].message == "still logging"


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        setup_logging(directory=None, level="LOUD", env={})
    with pytest.raises(ValueError):
        setup_logging(directory=None, rotation=0, env={})
    with pytest.raises(ValueError):
        setup_logging(directory=None, retention=0, env={})
    with pytest.raises(ValueError):
        setup_logging(directory=None, buffer_size=0, env={})


# --------------------------------------------------------------------------- redaction


def test_secrets_are_redacted_in_every_sink(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    register_secret("Registered-Secret-77")
    buffer = setup_logging(directory=tmp_path, console=True, json_console=True, env={})
    bound = logger.bind(
        endpoint="sales",
        dsn=DSN,
        note=f"webhook {WEBHOOK}",
        nested={"deep": {"password": "Nested-Pass-1"}, "list": [DSN]},
        obj=Path("/x/Registered-Secret-77"),
    )
    bound.error("cannot reach {} via {}", DSN, WEBHOOK)
    bound.info("Authorization: Bearer Tok-Bearer-99 for jane@example.com")
    try:
        raise ConnectionError(f"connect {DSN} failed, key Registered-Secret-77")
    except ConnectionError:
        bound.exception("probe crashed")
    logging.getLogger("asyncpg.pool").warning("stdlib says password=Std-Pass-5")

    files = read_all(tmp_path)
    console = capfd.readouterr().err
    panel = json.dumps([dataclasses.asdict(line) for line in buffer.snapshot()], default=str)
    planted = (*SECRETS, "Registered-Secret-77", "Nested-Pass-1", "Tok-Bearer-99", "jane@", "Std-Pass-5")
    for where, text in (("files", files), ("console", console), ("buffer", panel)):
        for secret in planted:
            assert secret not in text, f"{secret!r} leaked into {where}"
        assert "sales" in text and "cannot reach" in text and "probe crashed" in text
        assert "postgres://ops:***@db.internal/pos" in text
        assert "https://hooks.slack.com/services/***" in text
        assert "stdlib says password=***" in text


def test_logging_never_raises_on_odd_context(tmp_path: Path) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("nope")

    buffer = setup_logging(directory=tmp_path, env={})
    logger.bind(lock=threading.Lock(), bad=Unprintable(), nan=float("nan"), when=datetime(2026, 1, 8)).error(
        "odd {}", "context"
    )
    (line,) = read_lines(tmp_path / "combined.log")
    assert line["message"] == "odd context"
    assert line["bad"] == "<unprintable Unprintable>"
    assert line["nan"] == "nan" and line["when"] == "2026-01-08T00:00:00"
    assert buffer.snapshot()[-1].extra["bad"] == "<unprintable Unprintable>"


# --------------------------------------------------------------------------- buffer


def test_buffer_keeps_last_n_records() -> None:
    buffer = setup_logging(directory=None, buffer_size=5, env={})
    assert buffer.capacity == 5
    for i in range(12):
        logger.bind(endpoint="sales", i=i).info("record {}", i)
    lines = buffer.snapshot()
    assert [line.message for line in lines] == [f"record {i}" for i in range(7, 12)]
    assert buffer.version == 12
    assert len(buffer) == 5
    last = lines[-1]
    assert isinstance(last, LogLine)
    assert last.level == "INFO"
    assert last.extra == {"endpoint": "sales", "i": "11"}
    assert last.time.tzinfo is not None and last.time.utcoffset() == UTC.utcoffset(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        last.message = "changed"  # type: ignore[misc]


def test_buffer_records_exception_summary() -> None:
    buffer = setup_logging(directory=None, env={})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("math")
    assert buffer.snapshot()[-1].extra["exception"] == "ZeroDivisionError: division by zero"


def test_buffer_is_thread_safe() -> None:
    buffer = LogBuffer(capacity=100)
    line = LogLine(time=datetime.now(UTC), level="INFO", message="m")

    def work() -> None:
        for _ in range(1_000):
            buffer.append(line)
            buffer.snapshot()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert buffer.version == 8_000
    assert len(buffer.snapshot()) == 100
    version = buffer.version
    buffer.clear()
    assert buffer.snapshot() == [] and buffer.version == version + 1


def test_stdlib_logging_is_routed_to_loguru() -> None:
    buffer = setup_logging(directory=None, env={})
    logging.getLogger("httpx").warning("library %s", "warning")
    assert [line.message for line in buffer.snapshot()] == ["library warning"]
    reset_logging()
    assert not any(type(h).__name__ == "_InterceptHandler" for h in logging.getLogger().handlers)


# --------------------------------------------------------------------------- levels


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        ("INFO", {}, "INFO"),
        ("info", {}, "INFO"),
        ("warn", {}, "WARNING"),
        ("INFO", {"LOG_LEVEL": "debug"}, "DEBUG"),
        ("INFO", {"LOG_LEVEL": " ERROR "}, "ERROR"),
        ("DEBUG", {"LOG_LEVEL": ""}, "DEBUG"),
        ("INFO", {"LOG_LEVEL": "chatty"}, "INFO"),  # invalid override is ignored
        ("error", {"LOG_LEVEL": "fatal"}, "CRITICAL"),
    ],
)
def test_resolve_level(configured: str, env: dict[str, str], expected: str) -> None:
    assert resolve_level(configured, env) == expected


def test_resolve_level_rejects_unknown_configured_level() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        resolve_level("LOUD", {})


def test_log_level_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    buffer = setup_logging(directory=None, level="WARNING")
    logger.debug("visible")
    assert [line.message for line in buffer.snapshot()] == ["visible"]


def test_invalid_log_level_env_is_reported() -> None:
    buffer = setup_logging(directory=None, level="INFO", env={"LOG_LEVEL": "chatty"})
    logger.debug("hidden")
    (warning,) = buffer.snapshot()
    assert warning.level == "WARNING" and "LOG_LEVEL='chatty'" in warning.message


def _lowest_recorded_level(buffer: LogBuffer) -> str:
    for name in LEVELS:
        logger.log(name, "level probe {}", name)
    return next(line.level for line in buffer.snapshot() if line.message.startswith("level probe "))


@pytest.mark.parametrize(
    "spelling", ["trace", "Debug", " info ", "success", "warn", "WARNING", "err", "fatal", "verbose"]
)
def test_config_level_and_log_level_override_resolve_alike_everywhere(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = resolve_level(spelling, {})
    from_file = loads_config(f"logging:\n  level: '{spelling}'\n", env={})
    assert from_file.logging.level == expected
    assert resolve_level("INFO", {"LOG_LEVEL": spelling}) == expected

    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert _lowest_recorded_level(start_observability(from_file, console=False, log_dir=tmp_path)) == expected
    monkeypatch.setenv("LOG_LEVEL", spelling)
    assert _lowest_recorded_level(start_observability(default_config(), console=False, log_dir=tmp_path)) == (
        expected
    )
    assert _lowest_recorded_level(setup_logging(directory=None, level="INFO")) == expected


# --------------------------------------------------------------------------- terminal


def test_nothing_reaches_the_terminal_without_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    setup_logging(directory=tmp_path, level="TRACE", console=False, env={})
    logger.trace("t")
    logger.info("i")
    logger.error("e")
    try:
        raise RuntimeError("x")
    except RuntimeError:
        logger.exception("boom")
    logging.getLogger("some.library").error("stdlib error")
    logger.complete()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_fresh_process_prints_nothing() -> None:
    # In a fresh interpreter loguru's default stderr sink exists; setup_logging removes it.
    code = (
        "import logging\n"
        "from loguru import logger\n"
        "from core.logging import setup_logging\n"
        "setup_logging(directory=None)\n"
        "logger.error('should not be printed')\n"
        "logging.getLogger('lib').warning('nor this')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "" and result.stderr == ""


def test_json_console(capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging(directory=None, console=True, json_console=True, environment="ci", env={})
    logger.bind(endpoint="health").warning("slow \x1b[31m")
    out, err = capfd.readouterr()
    assert out == ""
    (line,) = [json.loads(x) for x in err.splitlines()]
    assert line["message"] == "slow \x1b[31m" and line["endpoint"] == "health"
    assert line["environment"] == "ci" and line["service"] == "opswatch"
    assert "\x1b" not in err


def test_text_console_is_sanitised(capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging(directory=None, console=True, json_console=False, env={})
    logger.bind(endpoint="sales").error("title \x1b]0;pwned\x07 red \x1b[31mx")
    _, err = capfd.readouterr()
    assert "\x1b" not in err and "\x07" not in err
    assert "| ERROR    | title  red x | endpoint=sales" in err


def test_patcher_failure_still_logs_redacted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import core.logging as core_logging

    def broken(*_args: object) -> None:
        raise RuntimeError("bug in record preparation")

    monkeypatch.setattr(core_logging, "_prepare", broken)
    buffer = setup_logging(directory=tmp_path, env={})
    logger.bind(endpoint="x").error("still here password=Leaky-Pass-1")
    (line,) = read_lines(tmp_path / "combined.log")
    assert line["message"] == "still here password=***"
    assert line["log_error"] == "could not prepare record: RuntimeError"
    assert buffer.snapshot()[-1].message == "still here password=***"
