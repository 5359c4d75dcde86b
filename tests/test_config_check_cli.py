"""``opswatch config check``: a valid config that cannot do its job is said so (warnings, exit 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.main import main


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "probes:\n  interval: 10s\n"])
def test_empty_config_warns_once_per_gap(tmp_path: Path, capsys: Any, text: str) -> None:
    path = tmp_path / "opswatch.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# opswatch effective configuration")
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"opswatch: warning: {path}: ") for line in lines)
    assert "database.dsn is not set" in lines[0]
    assert "no endpoints" in lines[1]
    assert "no notification route" in lines[2]


def test_complete_config_has_no_warnings(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "opswatch.yaml"
    path.write_text(
        "database:\n  dsn: postgresql://watcher@127.0.0.1:5432/pos\n"
        "endpoints:\n  - name: health\n    url: http://127.0.0.1:3000/test/health\n"
        "notifications:\n  webhook:\n    - name: ops\n      url: http://127.0.0.1:9000/hook\n",
        encoding="utf-8",
    )
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_invalid_config_still_exit_2(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "opswatch.yaml"
    path.write_text("probes:\n  interval: soon\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:2" in err and "warning" not in err
