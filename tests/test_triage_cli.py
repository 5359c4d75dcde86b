"""`opswatch dlq|events|audit` and `db advise|install-notify`: output, --json, confirmation, exit codes."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import asyncpg
import pytest

from cli.commands.db_advise import add_db_actions
from cli.main import main
from tests.test_triage_support import add_dlq, add_events, reset_app, seed_base


@pytest.fixture
async def ids(db_dsn: str) -> dict[str, list[int]]:
    conn = await asyncpg.connect(db_dsn)
    try:
        await reset_app(conn)
        base = await seed_base(conn)
        dlq = await add_dlq(conn, 3, business_id=base["b1"], channel_id=base["c1"], age_s=7200)
        dlq += await add_dlq(
            conn,
            2,
            business_id=base["b2"],
            channel_id=base["c3"],
            error="\x1b[31mToken expired\x1b[0m [bold]x[/bold]",
        )
        events = await add_events(conn, 2, business_id=base["b1"])
    finally:
        await conn.close()
    return {"dlq": dlq, "events": events}


@pytest.fixture
def cfg(tmp_path: Path, db_dsn: str) -> str:
    path = tmp_path / "opswatch.yaml"
    path.write_text(f"database:\n  dsn: {db_dsn}\ntriage:\n  actor: cli-tester\n  batch_size: 2\n")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def status_of(db_dsn: str, table: str) -> dict[int, tuple[str, int]]:
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(f"SELECT id, status, retry_count FROM {table} ORDER BY id")
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["retry_count"]) for r in rows}


def test_list_and_show(capsys: pytest.CaptureFixture[str], cfg: str, ids: dict[str, list[int]]) -> None:
    code, out, _ = run(capsys, "dlq", "list", "--config", cfg)
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "AGE", "STATUS", "TRIES", "BUSINESS", "CHANNEL", "ERROR"]
    assert "\x1b" not in out and "Token expired [bold]x[/bold]" in out
    assert "5 of 5 matching" in out

    code, out, _ = run(capsys, "--config", cfg, "dlq", "list", "--older-than", "1h", "--json", "--limit", "2")
    data = json.loads(out)
    assert code == 0 and data["total"] == 3 and len(data["rows"]) == 2 and data["next_cursor"]
    code, out, _ = run(
        capsys,
        "dlq",
        "list",
        "--config",
        cfg,
        "--older-than",
        "1h",
        "--json",
        "--limit",
        "2",
        "--cursor",
        data["next_cursor"],
    )
    assert [r["id"] for r in json.loads(out)["rows"]] == [ids["dlq"][0]]

    code, out, _ = run(capsys, "dlq", "show", str(ids["dlq"][4]), "--config", cfg)
    assert code == 0 and "error:" in out and "Token expired" in out and "\x1b" not in out
    assert "history: none" in out
    code, out, _ = run(capsys, "dlq", "show", str(ids["dlq"][0]), "--raw", "--config", cfg)
    assert json.loads(out)["messageId"] > 0
    code, out, err = run(capsys, "dlq", "show", "999999", "--config", cfg)
    assert code == 1 and "not found" in err

    code, out, _ = run(capsys, "events", "list", "--config", cfg, "--json")
    assert code == 0 and len(json.loads(out)["rows"]) == 2
    code, out, _ = run(capsys, "events", "show", str(ids["events"][0]), "--config", cfg)
    assert code == 0 and "stack:" in out and "events.js" in out


def test_actions_exit_codes_and_audit(
    capsys: pytest.CaptureFixture[str], cfg: str, ids: dict[str, list[int]], db_dsn: str
) -> None:
    a, b = ids["dlq"][:2]
    code, out, _ = run(capsys, "dlq", "retry", str(a), "--config", cfg)
    assert code == 0 and out.startswith("dlq.retry: 1 applied, 0 skipped, 0 failed")
    code, out, _ = run(capsys, "dlq", "retry", f"{a},{b}", "--json", "--config", cfg)
    data = json.loads(out)
    assert code == 1 and data["applied"] == [b]
    assert data["skipped"] == [{"id": a, "reason": "already retried", "by": "cli-tester"}]
    assert data["counts"] == "1 applied, 1 skipped, 0 failed"

    code, _, err = run(capsys, "dlq", "abandon", str(ids["dlq"][2]), "--config", cfg)
    assert code == 2 and err.strip() == "opswatch: --reason is required to abandon"
    code, out, _ = run(
        capsys, "dlq", "abandon", str(ids["dlq"][2]), "--reason", "bad number", "--config", cfg
    )
    assert code == 0
    code, out, _ = run(capsys, "dlq", "reopen", str(ids["dlq"][2]), "--config", cfg)
    assert code == 0

    code, out, _ = run(capsys, "audit", "--config", cfg, "--kind", "dlq", "--json")
    entries = json.loads(out)
    assert [e["action"] for e in entries] == ["dlq.reopen", "dlq.abandon", "dlq.retry", "dlq.retry"]
    assert entries[1]["reason"] == "bad number" and entries[0]["actor"] == "cli-tester"
    code, out, _ = run(capsys, "audit", "--config", cfg, "--limit", "1")
    assert code == 0 and "dlq.reopen" in out and "older entries: --before" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "retry", "12x"], "not a dead-letter id: '12x'"),
        (["dlq", "retry"], "which rows?"),
        (["dlq", "retry", "1", "--all-matching"], "not both"),
        (["dlq", "retry", "1", "--business", "2"], "filters apply to --all-matching only"),
        (["dlq", "list", "--older-than", "soon"], "--older-than: invalid duration"),
        (["dlq", "list", "--status", "lost"], "unknown status 'lost'"),
        (["dlq", "list", "--older-than", "2h", "--newer-than", "1h"], "conflicting filters"),
        (["dlq", "retry", "--all-matching", "--status", "resolved", "--yes"], "conflicting filters"),
        (["dlq", "list", "--cursor", "nonsense"], "invalid cursor"),
        (
            ["events", "retry", "--all-matching", "--rate-limit", "0"],
            "--rate-limit must be greater than zero",
        ),
        (["--read-only", "dlq", "retry", "1"], "read-only mode"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], cfg: str, ids: dict[str, list[int]], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv, "--config", cfg)
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1


def test_bulk_by_filter_confirmation(
    capsys: pytest.CaptureFixture[str],
    cfg: str,
    ids: dict[str, list[int]],
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run(capsys, "dlq", "retry", "--all-matching", "--older-than", "1h", "--config", cfg)
    assert code == 2 and "refusing to retry 3 rows without confirmation" in err and "(add --yes)" in err
    assert "retry: 3 dead letters" in out  # the preview came first

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    code, out, err = run(capsys, "dlq", "retry", "--all-matching", "--older-than", "1h", "--config", cfg)
    assert code == 1 and "cancelled, nothing changed" in err

    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    code, out, _ = run(capsys, "dlq", "retry", "--all-matching", "--older-than", "1h", "--config", cfg)
    assert code == 0 and "dlq.retry: 3 applied, 0 skipped, 0 failed" in out

    code, out, err = run(capsys, "events", "resolve", "--all-matching", "--yes", "--json", "--config", cfg)
    assert code == 0 and json.loads(out)["applied"] == ids["events"] and "resolve: 2 event failures" in err
    code, out, err = run(capsys, "events", "resolve", "--all-matching", "--yes", "--config", cfg)
    assert code == 0 and "nothing to resolve" in out


def _db_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opswatch db")
    add_db_actions(parser.add_subparsers(dest="db_command", required=True))
    return parser


def test_db_advise_and_install_notify(capsys: pytest.CaptureFixture[str], cfg: str, db_dsn: str) -> None:
    parser = _db_parser()
    args = parser.parse_args(["advise", "--config", cfg])
    code = args.handler(args)
    out = capsys.readouterr().out
    if code == 1:
        assert "MISSING" in out and "CREATE INDEX CONCURRENTLY" in out
        args = parser.parse_args(["advise", "--apply", "--config", cfg])
        assert args.handler(args) == 0
        capsys.readouterr()
    args = parser.parse_args(["advise", "--config", cfg])
    assert args.handler(args) == 0
    assert "all recommended indexes and settings are in place" in capsys.readouterr().out

    args = parser.parse_args(["install-notify", "--config", cfg])
    assert args.handler(args) == 0 and "notify triggers installed" in capsys.readouterr().out
    args = parser.parse_args(["install-notify", "--remove", "--config", cfg])
    assert args.handler(args) == 0 and "removed" in capsys.readouterr().out
    args = parser.parse_args(["install-notify", "--sql", "--config", cfg])
    assert args.handler(args) == 0 and "CREATE TRIGGER opswatch_notify_insert" in capsys.readouterr().out
