"""Field types of the config: validation, JSON serialisation (masked on request) and the
``Secret`` marker, plus :class:`Section`, the base of every section model."""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    model_validator,
)

from core.config.errors import LocatedValueError
from core.durations import format_duration, format_size, parse_duration, parse_size
from core.log_levels import LEVELS, normalise_level
from core.redact import MASK, is_secret_header, mask_dsn, mask_url, mask_url_credentials, redact

__all__ = [
    "Dsn",
    "Duration",
    "Email",
    "Headers",
    "HttpMethod",
    "HttpUrl",
    "Identifier",
    "JsonScalar",
    "LogLevel",
    "Name",
    "OptionalHttpUrl",
    "OptionalSecret",
    "OptionalSecretUrl",
    "PositiveDuration",
    "ScreenName",
    "Secret",
    "SecretUrl",
    "Section",
    "Severity",
    "Size",
    "StatusSet",
    "check_url_auth",
]

Severity = Literal["critical", "warning", "info"]
ScreenName = Literal["overview", "endpoints", "dead_letters", "events", "alerts", "database", "audit"]


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


# --------------------------------------------------------------------------- masked serialisation


def _masking(info: SerializationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("mask_secrets"))


def _masked(mask: Callable[[str], str]) -> PlainSerializer:
    def serialize(value: str | None, info: SerializationInfo) -> str | None:
        return mask(value) if value is not None and _masking(info) else value

    return PlainSerializer(serialize)


def _drop_empty_headers(value: dict[str, str]) -> dict[str, str]:
    """A header whose value is empty (e.g. an unset ``${TOKEN:-}``) is not sent."""
    return {k: v for k, v in value.items() if v.strip()}


def _serialize_headers(value: dict[str, str], info: SerializationInfo) -> dict[str, str]:
    if not _masking(info):
        return dict(value)
    return {k: MASK if is_secret_header(k) else v for k, v in value.items()}


# --------------------------------------------------------------------------- field types


def _nonnegative_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return seconds


def _positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return size


def _shown_url(text: str) -> str:
    """A bad URL as it may appear in an error: credentials and webhook tokens masked."""
    masked = mask_url(text)
    if masked != MASK:
        return masked
    if "://" in text:
        return redact(text)[:120]
    head, slash, _rest = text.partition("/")
    return redact(head + (f"/{MASK}" if slash else ""))[:120]


def _http_url(value: object) -> object:
    if value is None or not isinstance(value, str):
        return value  # None for optional fields; other types get pydantic's type error
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {_shown_url(text)!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid URL {_shown_url(text)!r}: must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"invalid URL {_shown_url(text)!r}: no host name")
    if any(ch.isspace() for ch in text) or port == 0:
        raise ValueError(f"invalid URL {_shown_url(text)!r}")
    return text


def _postgres_dsn(value: object) -> object:
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"invalid DSN {mask_dsn(text)!r}: must start with postgresql:// or postgres://")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError as exc:
            raise ValueError(f"invalid DSN {mask_dsn(text)!r}: {exc}") from None
    elif "=" not in text:
        raise ValueError("invalid DSN: use postgresql://user:password@host:5432/dbname")
    return text


def _identifier(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", value):
        raise ValueError(f"{value!r} is not a valid SQL identifier (letters, digits, _; at most 63)")
    return value


# C0, DEL, C1 and the bidi controls (marks, embeddings, overrides, isolates): a name reaches
# terminals, chat messages and pager titles, where these would hide or reorder text.
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _name(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 100 or _NAME_CONTROLS.search(text):
        raise ValueError(
            f"names must be 1-100 printable characters (no control or bidi characters), got {value!r}"
        )
    return text


def check_url_auth(owner: str, url: str | None, headers: Mapping[str, str], key: str = "url") -> None:
    """HTTP clients refuse a request with both URL credentials and an Authorization header."""
    if url is None or not any(name.strip().lower() == "authorization" for name in headers):
        return
    if "@" in urlsplit(url).netloc:
        raise LocatedValueError(
            (key,),
            f"{owner}has credentials in the URL (user:password@) and an Authorization header; "
            "every request would fail: keep only one of them",
        )


def _log_level(value: object) -> object:
    """The same spellings as ``LOG_LEVEL`` (:func:`core.logging.resolve_level`)."""
    if not isinstance(value, str):
        return value
    level = normalise_level(value)
    if level is None:
        raise ValueError(f"invalid log level {value!r} (one of {', '.join(LEVELS).lower()})")
    return level


def _status_codes(value: object) -> object:
    """``200``, ``"2xx"``, ``"200-204"``, ``"200,301"`` or a list of those -> a frozenset of codes."""
    items: list[object]
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        items = [value]
    codes: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        if isinstance(item, bool) or not re.fullmatch(r"\d{3}|[1-5]xx|\d{3}\s*-\s*\d{3}", text):
            raise ValueError(f"invalid status {item!r} (use 200, '2xx' or '200-204')")
        if text.endswith("xx"):
            codes.update(range(int(text[0]) * 100, int(text[0]) * 100 + 100))
        elif "-" in text:
            low, high = (int(p) for p in text.split("-"))
            codes.update(range(low, high + 1))
        else:
            codes.add(int(text))
    if not codes or min(codes) < 100 or max(codes) > 599:
        raise ValueError(f"status codes must be within 100-599, got {value!r}")
    return frozenset(codes)


def _compact_status(codes: frozenset[int]) -> list[int | str]:
    out: list[int | str] = []
    ordered = sorted(codes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        low, high = ordered[i], ordered[j]
        while low <= high:
            if low % 100 == 0 and low + 99 <= high:
                out.append(f"{low // 100}xx")
                low += 100
            else:
                end = min(high, (low // 100) * 100 + 99) if high - low >= 99 else high
                out.append(low if end == low else f"{low}-{end}")
                low = end + 1
        i = j + 1
    return out


def _method(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _json_duration(value: float) -> str:
    return format_duration(value)


_DurationSer = PlainSerializer(_json_duration, return_type=str, when_used="json")
Duration = Annotated[float, BeforeValidator(_nonnegative_duration), _DurationSer]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration), _DurationSer]
Size = Annotated[int, BeforeValidator(_positive_size), PlainSerializer(format_size, when_used="json")]
# Secret(...) marks what is never echoed in a config error and what secret_values() registers.
HttpUrl = Annotated[str, BeforeValidator(_http_url), _masked(mask_url_credentials), Secret("credentials")]
OptionalHttpUrl = Annotated[
    str | None, BeforeValidator(_http_url), _masked(mask_url_credentials), Secret("credentials")
]
SecretUrl = Annotated[str, BeforeValidator(_http_url), _masked(mask_url), Secret("url")]
OptionalSecretUrl = Annotated[str | None, BeforeValidator(_http_url), _masked(mask_url), Secret("url")]
OptionalSecret = Annotated[str | None, _masked(lambda _: MASK), Secret("value")]
Dsn = Annotated[str | None, BeforeValidator(_postgres_dsn), _masked(mask_dsn), Secret("dsn")]
Headers = Annotated[
    dict[str, str],
    AfterValidator(_drop_empty_headers),
    PlainSerializer(_serialize_headers),
    Secret("headers"),
]
Identifier = Annotated[str, AfterValidator(_identifier)]
Name = Annotated[str, AfterValidator(_name)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
StatusSet = Annotated[frozenset[int], BeforeValidator(_status_codes), PlainSerializer(_compact_status)]
HttpMethod = Annotated[
    Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], BeforeValidator(_method)
]
LogLevel = Annotated[str, BeforeValidator(_log_level)]
JsonScalar = str | int | float | bool | None


def _allows_none(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return annotation is None or annotation is type(None)


class Section(BaseModel):
    """Base: unknown keys rejected, frozen, field docstrings become descriptions."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_by_name=True,
        validate_by_alias=True,
        coerce_numbers_to_str=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_values(cls, data: Any) -> Any:
        """``key:`` (null) takes the default; ``key: ""`` means "not configured" for optional keys."""
        if not isinstance(data, dict):
            return data
        fields = _field_table(cls)
        out = dict(data)
        for key, value in data.items():
            spec = fields.get(str(key))
            if spec is None:
                continue
            allows_none, required = spec
            if value is None and not allows_none and not required:
                del out[key]
            elif isinstance(value, str) and allows_none and not value.strip():
                out[key] = None
        return out


@functools.cache
def _field_table(cls: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    table: dict[str, tuple[bool, bool]] = {}
    for name, info in cls.model_fields.items():
        spec = (_allows_none(info.annotation), info.is_required())
        table[name] = spec
        if info.alias:
            table[info.alias] = spec
    return table
