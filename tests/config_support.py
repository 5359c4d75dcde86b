"""Helpers shared by the config tests: write a YAML file, catch its one-line error, the fixtures."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.config import ConfigError, load_config

DATA = Path(__file__).parent / "data" / "config"
# every secret planted in data/config/secrets.yaml
SECRETS = [
    "s3cret-db", "k3y-in-query", "t0ken-header", "k3y-header", "sl4ck-critical", "sl4ck-default",
    "pd-r0uting", "smtp-passw0rd", "w3bhook-path", "w3bhook-token", "r3play-token", "s3ntrykey",
]  # fmt: skip


def write(tmp_path: Path, text: str, name: str = "opswatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value
