"""YAML reading for the config: ``${VAR}`` interpolation, key-path -> line map, syntax errors.

Everything here reports problems as :class:`~core.config.errors.ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.config.errors import ConfigError, KeyPath, PathPart, format_key

__all__ = ["YamlDocument", "interpolate", "parse_yaml", "read_yaml"]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# ${NAME}, ${NAME:-default} (default when unset or empty), ${NAME-default} (default when unset).
_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?", re.DOTALL)


@dataclass
class YamlDocument:
    """The constructed data plus the line of every key path (1-based)."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_for(self, path: Sequence[PathPart]) -> int | None:
        """The line of ``path`` or of its nearest ancestor that exists in the file."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


def read_yaml(path: Path, env: Mapping[str, str]) -> YamlDocument:
    """Read, compose, interpolate and construct ``path``; every failure is a :class:`ConfigError`."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, None, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, None, "", "is a directory, expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(file, None, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(file, line, "", "file is not valid UTF-8 text") from None
    return parse_yaml(text, file, env)


def parse_yaml(text: str, file: str, env: Mapping[str, str]) -> YamlDocument:
    """Like :func:`read_yaml` for text already in memory (``file`` names it in messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(text, file, exc) from None
    except yaml.YAMLError as exc:  # pragma: no cover - pyyaml marks all parse errors
        raise ConfigError(file, None, "", f"YAML syntax error: {exc}") from None
    doc = YamlDocument(file, None)
    if root is None:
        doc.data = {}
        doc.lines[()] = 1
        return doc
    _walk(root, (), doc, env, set())
    loader = yaml.SafeLoader("")
    try:
        doc.data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(text, file, exc) from None
    finally:
        loader.dispose()
    doc.lines.setdefault((), root.start_mark.line + 1)
    return doc


def _walk(node: Node, path: KeyPath, doc: YamlDocument, env: Mapping[str, str], seen: set[int]) -> None:
    """Record lines, interpolate string scalars in place, reject duplicate keys."""
    if id(node) in seen:  # an alias to a node already handled
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if node.tag == _STR_TAG and "$" in node.value:
            node.value = interpolate(node.value, env, doc.file, node.start_mark.line + 1, format_key(path))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines.setdefault((*path, index), item.start_mark.line + 1)
            _walk(item, (*path, index), doc, env, seen)
    elif isinstance(node, MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                _walk(value_node, path, doc, env, seen)
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key_node.tag != _STR_TAG:
                raise ConfigError(doc.file, line, format_key(child), f"keys must be text; quote it: '{key}'")
            if key in first_seen:
                raise ConfigError(
                    doc.file,
                    line,
                    format_key(child),
                    f"duplicate key (first defined on line {first_seen[key]})",
                )
            first_seen[key] = line
            doc.lines[child] = line
            _walk(value_node, child, doc, env, seen)


def interpolate(value: str, env: Mapping[str, str], file: str, line: int | None, key: str) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``; ``$${`` is a literal ``${``."""

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        body = match.group(1)
        parsed = _VAR_BODY.fullmatch(body) if body is not None else None
        if parsed is None:
            raise ConfigError(
                file,
                line,
                key,
                f"malformed variable reference {whole!r} (use ${{NAME}} or ${{NAME:-default}})",
            )
        name, op, default = parsed.groups()
        current = env.get(name)
        if op == ":-" and not current:
            return str(default)
        if op == "-" and current is None:
            return str(default)
        if current is None:
            raise ConfigError(
                file, line, key, f"environment variable {name} is not set (give a default: ${{{name}:-...}})"
            )
        return current

    return _VAR.sub(replace, value)


def _syntax_error(text: str, file: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or exc.context or "invalid YAML"
    column = f" (column {mark.column + 1})" if mark is not None else ""
    kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    return ConfigError(file, line, format_key(_path_before_error(text, line)), f"{kind}: {problem}{column}")


def _path_before_error(text: str, line: int | None) -> KeyPath:
    """Best-effort key path of the position where the parser stopped, from the event stream.

    When the parser stopped between keys of a mapping, the ``key:`` written on the error line
    (if any) completes the path: pyyaml fails while scanning a value, before emitting its key.
    """
    frames: list[list[Any]] = []  # [kind, key_or_index, expecting_key]

    def value_done() -> None:
        if frames and frames[-1][0] == "map":
            frames[-1][2] = True

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            top = frames[-1] if frames else None
            if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if top is not None and top[0] == "map" and top[2]:
                    top[1], top[2] = str(getattr(event, "value", "")), False
                elif top is not None and top[0] == "seq":
                    top[1] += 1
                else:
                    value_done()
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if top is not None and top[0] == "seq":
                    top[1] += 1
                kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
                frames.append([kind, None if kind == "map" else -1, True])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                if frames:
                    frames.pop()
                value_done()
    except yaml.YAMLError:
        pass
    path: list[PathPart] = []
    for depth, (kind, where, expecting_key) in enumerate(frames):
        if kind == "map" and (where is None or expecting_key):
            lines = text.splitlines()
            if depth == len(frames) - 1 and line is not None and 0 < line <= len(lines):
                match = re.match(
                    r"\s*(?:-\s+)?([^\s#:'\"{}\[\],-][^#:{}\[\],]*?)\s*:(?:\s|$)", lines[line - 1]
                )
                if match:
                    path.append(match.group(1))
            break
        if kind == "seq" and where < 0:
            break
        path.append(where)
    return tuple(path)
