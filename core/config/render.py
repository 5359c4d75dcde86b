"""``config print``: the effective configuration as YAML, secrets masked."""

from __future__ import annotations

import yaml

from core.config.sections import Config

__all__ = ["render_effective"]


class _EffectiveDumper(yaml.SafeDumper):
    """Block style for multi-line strings (SQL) so the output stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_EffectiveDumper.add_representer(str, _represent_str)


def render_effective(config: Config) -> str:
    """YAML of the effective configuration, secrets masked; it loads back as the same shape."""
    data = config.model_dump(mode="json", by_alias=True, context={"mask_secrets": True})
    body = yaml.dump(data, Dumper=_EffectiveDumper, sort_keys=False, allow_unicode=True, width=100)
    return "# opswatch effective configuration (secrets masked)\n" + body
