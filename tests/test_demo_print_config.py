"""``opswatch demo --print-config`` next to a running demo: real ports, secrets as ${ENV}, and it works.

The printed config (with the exported values) passes ``config check`` and lets ``check`` probe the
demo's endpoints, the Authorization header included (it was sent as the literal ``***`` before).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.db import display_dsn
from core.demo.environment import DemoEnvironment
from tests.cli import run_in_thread
from tests.tui.support import build_app
from tui.screens.help import HelpScreen


@pytest_asyncio.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoEnvironment]:
    env = DemoEnvironment(tmp_path / "demo", seed=1, speed=30, traffic=False)
    await env.start()
    try:
        yield env
    finally:
        await env.stop()


cli = run_in_thread


def exports(err: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in err.splitlines():
        match = re.fullmatch(r"export (OPSWATCH_DEMO_[A-Z0-9_]+)=(.*)", line)
        if match:
            [value] = shlex.split(match[2])
            found[match[1]] = value
    return found


async def test_printed_config_works_against_the_running_demo(
    tmp_path: Path, demo: DemoEnvironment, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert demo.sink is not None
    code, out, err = await cli(capsys, "demo", "--print-config", "--data-dir", str(demo.data_dir))
    assert code == 0
    assert "***" not in out and "placeholder" not in out + err
    assert f"127.0.0.1:{demo.postgres.port}/pos" in out and f"127.0.0.1:{demo.backend.port}/" in out
    assert "Bearer demo-session-token" not in out and demo.sink.url("critical") not in out
    values = exports(err)
    assert values["OPSWATCH_DEMO_ENDPOINTS_AUTH_SESSION_HEADERS_AUTHORIZATION"] == "Bearer demo-session-token"
    assert values["OPSWATCH_DEMO_NOTIFICATIONS_SLACK_WEBHOOKS_CRITICAL"] == demo.sink.url("critical")
    assert all(f"${{{name}}}" in out for name in values)

    path = tmp_path / "from-demo.yaml"
    path.write_text(out, encoding="utf-8")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    code, checked, warnings = await cli(capsys, "config", "check", str(path))
    assert (code, warnings) == (0, "") and "***" in checked  # masked on display only

    code, out, _ = await cli(capsys, "check", "--config", str(path), "--only", "endpoint-probe", "-t", "20")
    assert out.startswith(("OPSWATCH OK - ", "OPSWATCH CRITICAL - ")), out
    assert "auth-session" not in out.split("\n", 1)[0].split(" | ")[0], out  # the header was sent as is
    assert "'auth-session_up'=1;" in out


async def test_reveal_writes_the_values(demo: DemoEnvironment, capsys: Any) -> None:
    code, out, err = await cli(capsys, "demo", "--print-config", "--reveal", "--data-dir", str(demo.data_dir))
    assert code == 0 and "Bearer demo-session-token" in out and "${" not in out and err == ""


async def test_without_a_running_demo_ports_are_flagged(tmp_path: Path, capsys: Any) -> None:
    code, out, err = await cli(capsys, "demo", "--print-config", "--data-dir", str(tmp_path / "none"))
    assert code == 0 and "ports are placeholders" in out and "no demo runs" in err and "***" not in out
    assert not (tmp_path / "none").exists()


def test_display_dsn_masks_the_password() -> None:
    assert display_dsn("postgresql://bob:s3cr3t@db:5432/pos") == "postgresql://bob:***@db:5432/pos"
    assert (
        display_dsn("postgresql://bob@db/pos?password=s3cr3t&x=1")
        == "postgresql://bob@db/pos?password=***&x=1"
    )
    assert (
        display_dsn("postgresql://postgres@127.0.0.1:5432/pos") == "postgresql://postgres@127.0.0.1:5432/pos"
    )


async def test_help_shows_the_database(db_dsn: str) -> None:
    with_password = db_dsn.replace("://postgres@", "://postgres:not-shown@")
    app, _, db = build_app(with_password)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            line = str(app.screen.query_one("#help-database").render())
            assert line == f"Database: {db_dsn.replace('://postgres@', '://postgres:***@')}"
    finally:
        await db.close()
