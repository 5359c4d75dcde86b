"""pydantic validation errors -> one :class:`~core.config.errors.ConfigError` per problem.

Each error names the YAML line of its key; a value typed ``Secret`` (or a mapping or list that
may hold one) is never echoed, only what kind of value was found.
"""

from __future__ import annotations

import datetime
import re
import types
import typing
from typing import Any, Union

import pydantic
from pydantic.fields import FieldInfo

from core.config.errors import ConfigError, KeyPath, LocatedValueError, PathPart, format_key, suggest
from core.config.source import YamlDocument
from core.config.types import Secret

__all__ = ["validation_error"]

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
        if _secret_marker(_field(model, part)) is not None:
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
        info = _field(current, part)
        return info.annotation if info is not None else None
    return _item_type(current, mapping=True)


def _field(model: type[pydantic.BaseModel], key: str) -> FieldInfo | None:
    """The field a YAML key names: by field name, else by alias (``for``)."""
    fields = model.model_fields
    return fields.get(key) or next((info for info in fields.values() if info.alias == key), None)


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


def _field_names(root: type[pydantic.BaseModel], path: KeyPath) -> list[str]:
    model = _model_at(root, path)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(root: type[pydantic.BaseModel], path: KeyPath) -> type[pydantic.BaseModel] | None:
    """The model class that validates the mapping at ``path``, found through field annotations."""
    current: Any = root
    for part in path:
        current = _step(current, part)
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
