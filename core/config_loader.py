"""YAML reading for the config: ``${VAR}`` interpolation, key-path -> line map, error mapping.

Kept apart from :mod:`core.config` (the models) so each stays readable. Everything here
reports problems as :class:`ConfigError`, a single line ``file:line: key: message``.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "ConfigError",
    "LocatedValueError",
    "Secret",
    "YamlDocument",
    "format_key",
    "iter_errors",
    "parse_yaml",
    "read_yaml",
    "suggest",
    "validation_error",
]

PathPart = str | int
KeyPath = tuple[PathPart, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# ${NAME}, ${NAME:-default} (default when unset or empty), ${NAME-default} (default when unset).
_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?", re.DOTALL)


class ConfigError(Exception):
    """A configuration problem: ``str(err)`` is one line ``{file}:{line}: {key}: {message}``.

    ``line`` is 1-based or ``None`` (missing file, environment); ``key`` is a dotted path such as
    ``endpoints[1].interval`` or ``""`` for the whole document; absent parts are left out of the
    line. ``others`` holds further problems found in the same pass (the first by line is raised).
    """

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.others: tuple[ConfigError, ...] = ()
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where, self.key, self.message] if self.key else [where, self.message]
        return ": ".join(parts)

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, int | None, str, str]]:
        return (type(self), (self.file, self.line, self.key, self.message))

    def __repr__(self) -> str:
        return f"ConfigError({self.file!r}, {self.line!r}, {self.key!r}, {self.message!r})"


class LocatedValueError(ValueError):
    """Raised from a model validator to blame a key below the model (``loc`` is relative to it)."""

    def __init__(self, loc: KeyPath, message: str) -> None:
        self.loc = loc
        super().__init__(message)


@dataclass(frozen=True)
class Secret:
    """``Annotated`` marker of a field that holds a secret.

    Its value is never shown in a config error (only the key and the expected type), and
    :func:`core.config.secret_values` hands it to the redaction registry. ``kind`` says which
    part is secret: ``value`` (all of it), ``url`` (a secret URL: the whole URL, its path and
    query), ``credentials`` (only a URL's user:password and secret query values), ``dsn`` (the
    DSN and its password), ``headers`` (the values of credential headers).
    """

    kind: typing.Literal["value", "url", "credentials", "dsn", "headers"]


def format_key(path: Sequence[PathPart]) -> str:
    """``("endpoints", 1, "interval") -> "endpoints[1].interval"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


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


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- pydantic errors

_TYPE_MESSAGES = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a text value",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "frozen_set_type": "expected a list",
    "dict_type": "expected a mapping of key: value",
    "model_type": "expected a mapping of key: value",
    "model_attributes_type": "expected a mapping of key: value",
}


def validation_error(
    exc: pydantic.ValidationError, doc: YamlDocument, root: type[pydantic.BaseModel]
) -> ConfigError:
    """Map every pydantic error to the YAML line of its key; the first (by line) carries the rest."""
    errors = [_one_error(err, doc, root) for err in exc.errors()]
    errors.sort(key=lambda e: (e.line is None, e.line or 0))
    first = errors[0]
    first.others = tuple(errors[1:])
    return first


def _one_error(err: Any, doc: YamlDocument, root: type[pydantic.BaseModel]) -> ConfigError:
    loc: KeyPath = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    located = ctx.get("error")
    if isinstance(located, LocatedValueError):
        loc = (*loc, *located.loc)
    path = _data_path(loc, doc.data)
    kind = err["type"]
    value = err.get("input")
    secret = _is_secret(root, path)
    hidden = secret or (isinstance(value, dict | list) and _holds_secrets(root, path))
    if kind == "extra_forbidden":
        message = f"unknown key {path[-1]!r}" + suggest(str(path[-1]), _field_names(root, path[:-1]))
    elif kind == "missing":
        message = "required key is missing"
    elif kind in _TYPE_MESSAGES and hidden:
        found, hint = _kind_of(value)
        why = "secret, value not shown" if secret else "value not shown: it may hold secrets"
        message = f"{_TYPE_MESSAGES[kind]}, got {found} ({why}{hint})"
    elif kind in _TYPE_MESSAGES:
        message = f"{_TYPE_MESSAGES[kind]}, got {_show(value)}"
    elif kind == "too_short":
        count = ctx.get("min_length", 1)
        message = f"needs at least {count} item{'s' if count != 1 else ''}"
    elif kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        message = f"must be one of {', '.join(expected)}, got {_show(value)}" + suggest(
            str(value), expected, list_allowed=False
        )
    else:
        message = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        if not isinstance(located, ValueError):
            message = message[:1].lower() + message[1:]
            if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
                message += f", got {_show(value)}"
    return ConfigError(doc.file, doc.line_for(path), format_key(path), message)


def _data_path(loc: KeyPath, data: Any) -> KeyPath:
    """Drop pydantic's union/function tags from ``loc`` by walking the real data alongside it."""
    path: list[PathPart] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict) and str(part) in {str(k) for k in current}:
            key = next(k for k in current if str(k) == str(part))
            path.append(str(part))
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(part, str) and re.fullmatch(r"[A-Za-z_][\w-]*", part):
            if isinstance(current, dict) or current is None or not path:
                path.append(part)
        # anything else is a pydantic-internal tag such as 'function-after[...]' or '[key]'
    return tuple(path)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> tuple[str, str]:
    """What a misplaced secret turned out to be, and a hint, without showing it."""
    quote = "; quote it to keep it as text"
    if isinstance(value, dict):
        return "a mapping", ""
    if isinstance(value, list | tuple):
        return "a list", ""
    if isinstance(value, datetime.date):
        return "a date", quote
    if isinstance(value, bool):
        return "true/false", quote
    if isinstance(value, int | float):
        return "a number", quote
    if value is None:
        return "nothing", ""
    return ("text" if isinstance(value, str) else type(value).__name__), ""


def _secret_marker(info: Any) -> Secret | None:
    return next((m for m in getattr(info, "metadata", ()) if isinstance(m, Secret)), None)


def _is_secret(root: type[pydantic.BaseModel], path: KeyPath) -> bool:
    """True when ``path`` is a secret field or lies inside one (e.g. one header of ``headers``)."""
    for depth in range(len(path)):
        part = path[depth]
        model = _model_at(root, path[:depth])
        if model is None or not isinstance(part, str):
            continue
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        fields.update(model.model_fields)
        if _secret_marker(fields.get(part)) is not None:
            return True
    return False


def _holds_secrets(root: type[pydantic.BaseModel], path: KeyPath) -> bool:
    """True when the value expected at ``path`` has a secret field anywhere below it."""
    current: Any = root
    for part in path:
        current = _step(current, part)
        if current is None:
            return True  # unknown shape: assume the worst
    return _type_holds_secrets(current, set())


def _step(annotation: Any, part: PathPart) -> Any:
    current = _unwrap(annotation)
    if isinstance(part, int):
        return _item_type(current)
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        fields = {info.alias or name: info for name, info in current.model_fields.items()}
        fields.update(current.model_fields)
        info = fields.get(part)
        return info.annotation if info is not None else None
    return _item_type(current, mapping=True)


def _type_holds_secrets(annotation: Any, seen: set[Any]) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        if any(isinstance(m, Secret) for m in annotation.__metadata__):
            return True
        return _type_holds_secrets(typing.get_args(annotation)[0], seen)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(
            _secret_marker(info) is not None or _type_holds_secrets(info.annotation, seen)
            for info in annotation.model_fields.values()
        )
    return any(_type_holds_secrets(arg, seen) for arg in typing.get_args(annotation) if arg is not Ellipsis)


def suggest(word: str, candidates: Sequence[str], *, list_allowed: bool = True) -> str:
    """`` (did you mean 'x'?)``, else a short list of the allowed values (if ``list_allowed``)."""
    if not candidates:
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if list_allowed and len(candidates) <= 12:
        return f" (expected one of: {', '.join(candidates)})"
    return ""


def _field_names(root: type[pydantic.BaseModel], path: KeyPath) -> list[str]:
    model = _model_at(root, path)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(root: type[pydantic.BaseModel], path: KeyPath) -> type[pydantic.BaseModel] | None:
    """The model class that validates the mapping at ``path``, found through field annotations."""
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            current = _item_type(current)
        elif isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            fields.update(current.model_fields)
            info = fields.get(part)
            current = info.annotation if info is not None else None
        else:
            current = _item_type(current, mapping=True)
        if current is None:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, pydantic.BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _item_type(annotation: Any, mapping: bool = False) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if mapping:
        return args[1] if origin is dict and len(args) == 2 else None
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    return None


def iter_errors(err: ConfigError) -> Iterator[ConfigError]:
    """The error and everything it carries in ``others``."""
    yield err
    yield from err.others
