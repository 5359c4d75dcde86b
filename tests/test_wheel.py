"""The wheel, not only the editable install, carries styles and SQL and runs the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_built_wheel_installs_and_runs(tmp_path: Path) -> None:
    build_src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        build_src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "logs", "bench"
        ),
    )
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(build_src)],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(dist.glob("opswatch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("styles/") and n.endswith(".tcss") for n in names), names
    assert "core/migrations/0001_init.sql" in names
    assert "core/schema/app_schema.sql" in names

    venv = tmp_path / "venv"
    # --system-site-packages lets the fresh venv reuse already-installed dependencies (no network);
    # opswatch itself comes only from the wheel.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if "site-packages" in p)
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    opswatch = venv / "bin" / "opswatch"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = subprocess.run(
        [str(opswatch), "--version"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("opswatch ")
    check = subprocess.run(
        [str(opswatch), "config", "check", str(ROOT / "config.example.yaml")],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert check.returncode == 0, check.stderr
    assert "endpoints" in check.stdout
    located = subprocess.run(
        [str(py), "-c", "import core, styles; print(core.__file__); print(styles.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        check=True,
    )
    assert str(ROOT) not in located.stdout, "imported from the source tree instead of the wheel"
