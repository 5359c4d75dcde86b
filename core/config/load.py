"""Loading the config: find the file, read it, validate it; every problem is one ``ConfigError``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pydantic

from core.config.errors import ConfigError
from core.config.explain import validation_error
from core.config.sections import Config
from core.config.source import YamlDocument, parse_yaml, read_yaml

__all__ = ["default_config", "find_config_path", "load_config", "loads_config"]


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; bad input raises :class:`ConfigError`."""
    doc = read_yaml(Path(path), os.environ if env is None else env)
    return _validate(doc)


def loads_config(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """Like :func:`load_config` for YAML text; ``source`` names it in error messages."""
    doc = parse_yaml(text, source, os.environ if env is None else env)
    return _validate(doc)


def _validate(doc: YamlDocument) -> Config:
    data = doc.data
    if not isinstance(data, dict):
        found = type(data).__name__ if data is not None else "nothing"
        raise ConfigError(
            doc.file, doc.line_for(()), "", f"expected a mapping of sections at the top, got {found}"
        )
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, doc, Config) from None


def default_config() -> Config:
    """Everything at its default: no endpoints, embedded database (dsn None), seed alert rules."""
    return Config()


def find_config_path(cli_path: str | None, env: Mapping[str, str] = os.environ) -> Path | None:
    """The config file to use: ``--config``, ``$OPSWATCH_CONFIG``, ``./opswatch.yaml``, then
    ``$XDG_CONFIG_HOME/opswatch/config.yaml`` (default ``~/.config``).

    Explicit choices (the flag, the variable) are returned even if missing so that loading reports
    the missing file; the implicit locations only when they exist. None: no config, use defaults.
    """
    if cli_path:
        return Path(cli_path).expanduser()
    if env.get("OPSWATCH_CONFIG"):
        return Path(env["OPSWATCH_CONFIG"]).expanduser()
    local = Path("opswatch.yaml")
    if local.is_file():
        return local
    xdg = env.get("XDG_CONFIG_HOME", "")
    if not xdg or not Path(xdg).is_absolute():
        home = env.get("HOME") or str(Path.home())
        xdg = str(Path(home) / ".config")
    user = Path(xdg) / "opswatch" / "config.yaml"
    return user if user.is_file() else None
