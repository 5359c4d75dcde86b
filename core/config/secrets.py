"""The secrets of a config, found through the ``Secret`` markers of its field types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel

from core.config.types import Secret
from core.redact import MIN_SECRET_LENGTH, dsn_keyword_password, is_secret_header, register_secret

__all__ = ["header_secrets", "register_secrets", "secret_values"]


def register_secrets(model: BaseModel) -> None:
    """Every secret of ``model`` is redacted from now on."""
    for secret in secret_values(model):
        register_secret(secret)


def secret_values(model: BaseModel) -> Iterator[str]:
    """Every secret in ``model`` (a :class:`Config` or a section), found by its ``Secret`` marker.

    What :func:`core.redact.register_secret` should mask: secret values, secret URLs (the
    registry adds their paths, queries and token-like segments), a DSN and its password, the
    password and secret query values of other URLs, and credential header values (with the bare
    token of ``Bearer <token>``).
    """
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        marker = next((m for m in info.metadata if isinstance(m, Secret)), None)
        if marker is not None:
            yield from _secrets_of(marker.kind, value)
        elif isinstance(value, BaseModel):
            yield from secret_values(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from secret_values(item)


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, and the token alone (``Bearer <token>``)."""
    values: list[str] = []
    for name, value in headers.items():
        if is_secret_header(str(name)) and value:
            values.append(str(value))
            token = str(value).split()[-1]
            if token != value and len(token) >= MIN_SECRET_LENGTH:
                values.append(token)
    return values


def _secrets_of(kind: str, value: object) -> Iterator[str]:
    if isinstance(value, Mapping):
        if kind == "headers":
            yield from header_secrets(value)
        return
    if not isinstance(value, str) or not value:
        return
    if kind in ("value", "url"):
        yield value
        return
    if kind == "dsn":
        yield value
        password = dsn_keyword_password(value)
        if password:
            yield password
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return
    if password:
        yield password
    for key, item in parse_qsl(parts.query, keep_blank_values=False):
        if is_secret_header(key):
            yield item
