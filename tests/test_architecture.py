"""The one rule: core/ never imports textual or rich, so every face can drive it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parent.parent


def _core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(core.__path__, prefix="core."))


def test_core_never_imports_textual_or_rich() -> None:
    modules = _core_modules()
    assert "core.db" in modules and "core.config" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "", f"core pulled in: {result.stdout.strip()}"
