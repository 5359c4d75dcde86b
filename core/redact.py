"""Secret redaction for everything opswatch writes: log files, Sentry events, the screen.

Two entry points:

* :func:`redact` masks secrets *inside free text* (log messages, exception messages,
  URLs, header dumps, ``repr()`` of dicts).  It is pattern based and runs on every log
  record, so every pattern is precompiled and guarded by a cheap substring test.
* :func:`scrub` walks nested data (dicts, lists, tuples, sets) and returns a deep copy in
  which values stored under secret-looking *keys* are replaced by :data:`MASK`, and every
  other string has been passed through :func:`redact`.

Exact values that are known to be secret (the database password, a Slack webhook, the
PagerDuty routing key ...) can be registered with :func:`register_secret`; from then on
they are masked wherever they appear, even when no pattern would recognise them.

What is masked by :func:`redact`:

* URL credentials: ``postgres://ops:secret@db/pos`` -> ``postgres://ops:***@db/pos``
  (any ``scheme://user:password@``)
* Slack / Discord / Teams webhooks and other URLs with a ``hook`` segment:
  ``https://hooks.slack.com/services/T0/B0/xyz`` -> ``https://hooks.slack.com/services/***``
* token-like query parameters: ``?token=``, ``api_key=``, ``key=``, ``sig=``, ``access_token=`` ...
* ``Authorization: Bearer xxx`` / ``Basic xxx`` and bare ``Bearer xxx``
* ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key looks like a password,
  secret, token, api key, routing key (PagerDuty), private key, cookie ...
* self-identifying tokens: JWTs, Slack ``xox?-`` tokens, GitHub ``ghp_`` tokens, Stripe keys
* e-mail addresses (local part only): ``jane@example.com`` -> ``***@example.com``
* card numbers (PAN): 13-19 digits, bare or in card grouping (``4111 1111 1111 1111``,
  ``3782-822463-10005``), that pass the Luhn check -> ``[card]``; other digit runs (order ids,
  timestamps) stay

Redaction is idempotent: ``redact(redact(s)) == redact(s)``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "clear_secrets",
    "dsn_keyword_password",
    "is_secret_header",
    "is_sensitive_key",
    "mask_dsn",
    "mask_url",
    "mask_url_credentials",
    "redact",
    "register_secret",
    "registered_secret_count",
    "scrub",
    "url_parts",
]

MASK = "***"
"""Replacement for every masked value."""

MIN_SECRET_LENGTH = 6
"""Registered secrets shorter than this are ignored (too likely to mask innocent text)."""

_MAX_DEPTH = 32

# --------------------------------------------------------------------------- patterns

# scheme://user:password@host  ->  scheme://user:***@host
# The password may contain '@' (greedy up to the last '@' before the path).
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"'<>]*:)(?P<pw>[^\s/?#\"'<>]*)@"
)

# Slack incoming webhooks / workflow triggers (also Slack GovSlack).
_SLACK_WEBHOOK = re.compile(
    r"(?P<prefix>https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)"
    r"[^\s\"'<>)\]}]+",
    re.IGNORECASE,
)

# Discord (api/webhooks/<id>/<token>) and Microsoft Teams (webhookb2/..., IncomingWebhook/...).
# Generic: everything after a path segment containing "hook", or the whole path when the
# host name contains "hook" (hooks.zapier.com, hooks.example.org ...).
_HOOK_PATH = re.compile(
    r"(?P<prefix>https?://[^\s/?#\"'<>]+/(?:[^\s?#\"'<>]*/)?[^\s/?#\"'<>]*hook[^\s/?#\"'<>]*/)"
    r"(?P<rest>[^\s\"'<>)\]}]+)",
    re.IGNORECASE,
)
_HOOK_HOST = re.compile(
    r"(?P<prefix>https?://(?!hooks\.slack(?:-gov)?\.com/)[^\s/?#\"'<>]*hook[^\s/?#\"'<>]*/)"
    r"(?P<rest>[^\s\"'<>)\]}]+)",
    re.IGNORECASE,
)

# Token-ish query parameters in URLs (also catches form-encoded bodies after '&').
_QUERY_SECRET = re.compile(
    r"(?P<prefix>[?&;](?:[\w.\-]*(?:token|secret|password|passwd|pwd|api[_\-]?key|apikey|"
    r"routing[_\-]?key|private[_\-]?key|access[_\-]?key|signature)[\w.\-]*|key|sig|auth|"
    r"client_secret|session|sessionid|jwt)=)(?P<val>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)

# Authorization: <scheme> <credentials>   (header dumps, repr() of header dicts, JSON).
_AUTH_HEADER = re.compile(
    r"(?P<prefix>\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?:bearer|basic|digest|token|negotiate|ntlm|apikey|dsn)[ \t]+)?)"
    r"(?P<val>[^\s\"',;}\]]+)",
    re.IGNORECASE,
)

# Bare "Bearer <token>" anywhere.
_BEARER = re.compile(r"(?P<prefix>\bbearer[ \t]+)(?P<val>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)

# Bare "Basic <base64>"; only when the credential looks like base64 (so that
# "basic setup failed" is left alone).
_BASIC = re.compile(r"(?P<prefix>\bbasic[ \t]+)(?P<val>[A-Za-z0-9+/]{6,}={0,2})(?![\w+/=])", re.IGNORECASE)
_BASE64_HINT = re.compile(r"[0-9+/=]|.[A-Z]")

# Cookie headers in header dumps ("Cookie: a=1; b=2" up to the end of the line).
_COOKIE_HEADER = re.compile(r"(?P<prefix>\b(?:set-)?cookie[ \t]*:[ \t]*)(?P<val>[^\r\n\"']+)", re.IGNORECASE)

# key=value, key: value, "key": "value", 'key': 'value'.  DSN / webhook keys are not
# listed: their values are URLs, masked (more informatively) by the URL patterns.
_KV_KEY = (
    r"[\w.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|routing[_\-]?key|"
    r"private[_\-]?key|access[_\-]?key|credential|cookie)[\w.\-]*"
)
_KEY_VALUE = re.compile(
    r"(?P<prefix>(?<![\w.\-])(?P<q1>[\"']?)" + _KV_KEY + r"(?P=q1)[ \t]*[:=][ \t]*)"
    r"(?:\"(?P<dq>[^\"\r\n]*)\"|'(?P<sq>[^'\r\n]*)'|(?P<bare>[^\s\"',;&)}\]]+))",
    re.IGNORECASE,
)

# Well-known self-identifying token formats: JWTs, Slack tokens, GitHub tokens, Stripe keys.
_KNOWN_TOKENS = re.compile(
    r"\b(?:eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,})"
)

# e-mail addresses: mask the local part only.
_EMAIL = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9._%+\-]+@(?=[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b)"
)

# Candidate card numbers: 13+ digits with single space/dash separators, not part of a word or
# a decimal number; _mask_cards() keeps only card-shaped, Luhn-valid windows.
_DIGIT_RUN = re.compile(r"(?<![\w.])\d(?:[ \-]?\d){12,}(?!\w|[.,]\d)")
_SEPARATOR = re.compile(r"[ \-]")
CARD_MASK = "[card]"

_KEY_HINTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "bearer",
    "basic",
    "cookie",
    "routing",
    "private",
    "access",
    "credential",
    "key=",
    "sig=",
    "auth=",
    "session",
    "jwt",
)

# --------------------------------------------------------------------------- registry

_registry_lock = threading.Lock()
_registered: set[str] = set()
_registered_pattern: re.Pattern[str] | None = None


def _token_like(segment: str) -> bool:
    """A path segment that is an id or a key rather than a word (``T0A1B2C3D``, ``Xq9...``)."""
    return len(segment) >= 20 or (len(segment) >= 8 and any(ch.isdigit() for ch in segment))


def url_parts(value: str) -> list[str]:
    """The parts of an http(s) URL that a receiver may echo on their own: its path (with and
    without the query), the query and its values, token-like path segments and the userinfo.
    Empty for anything else."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return []
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return []
    found = [parts.path, unquote(parts.path)]
    if parts.query:
        found += [f"{parts.path}?{parts.query}", parts.query]
        found += [item for _key, item in parse_qsl(parts.query, keep_blank_values=False)]
    found += [unquote(seg) for seg in parts.path.split("/") if _token_like(unquote(seg))]
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at:
        found += [unquote(piece) for piece in userinfo.split(":", 1)]
    return [piece for piece in found if len(piece.strip()) >= MIN_SECRET_LENGTH]


def register_secret(value: str) -> None:
    """Mask ``value`` (and its URL-encoded forms) wherever it appears from now on.

    For an http(s) URL (a webhook) its :func:`url_parts` are masked too, so that a receiver
    echoing the request path (``no webhook for POST /services/T../B../token``) reveals nothing.
    Values shorter than :data:`MIN_SECRET_LENGTH` characters (after stripping whitespace)
    are ignored.  Thread-safe.
    """
    global _registered_pattern
    if not isinstance(value, str):
        return
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    variants: set[str] = set()
    for piece in (value, *url_parts(value)):
        variants.update((piece, quote(piece, safe=""), quote_plus(piece, safe="")))
    with _registry_lock:
        if variants <= _registered:
            return
        _registered.update(variants)
        ordered = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests and configuration reloads)."""
    global _registered_pattern
    with _registry_lock:
        _registered.clear()
        _registered_pattern = None


def registered_secret_count() -> int:
    """Number of registered values (including URL-encoded variants)."""
    with _registry_lock:
        return len(_registered)


# --------------------------------------------------------------------------- redact


def _mask_kv(match: re.Match[str]) -> str:
    prefix = match.group("prefix")
    if match.group("dq") is not None:
        return f'{prefix}"{MASK}"'
    if match.group("sq") is not None:
        return f"{prefix}'{MASK}'"
    if match.group("bare").startswith(MASK):
        return match.group(0)  # already masked (e.g. by the URL query rule): keep "#fragment"
    return prefix + MASK


def _mask_basic(match: re.Match[str]) -> str:
    value = match.group("val")
    if value == MASK or not _BASE64_HINT.search(value):
        return match.group(0)
    return match.group("prefix") + MASK


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_shaped(lengths: list[int]) -> bool:
    """Group lengths of one run of 13-19 digits, or of card grouping: 4-4-4-4(-1..4), 4-6-4/5."""
    if len(lengths) == 1:
        return True
    if all(n == 4 for n in lengths[:-1]) and lengths[-1] <= 4:
        return True
    return lengths[:2] == [4, 6] and len(lengths) == 3 and lengths[2] in (4, 5)


def _mask_cards(match: re.Match[str]) -> str:
    text = match.group(0)
    groups = _SEPARATOR.split(text)
    seps = _SEPARATOR.findall(text)
    lengths = [len(group) for group in groups]
    out: list[str] = []
    i = 0
    while i < len(groups):
        masked = False
        if lengths[i] == 4 or lengths[i] >= 13:  # a card starts with 4 digits or is unspaced
            end, digits = i, 0
            while end < len(groups) and digits + lengths[end] <= 19:  # a PAN has at most 19 digits
                digits += lengths[end]
                end += 1
            for j in range(end, i, -1):  # the longest card-shaped window starting at i
                if digits >= 13 and _card_shaped(lengths[i:j]) and _luhn("".join(groups[i:j])):
                    masked = True
                    break
                digits -= lengths[j - 1]
        if masked:
            out.append(CARD_MASK)
            i = j
        else:
            out.append(groups[i])
            i += 1
        if i < len(groups):
            out.append(seps[i - 1])
    return "".join(out)


_PREFIX_MASK = r"\g<prefix>" + MASK


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by :data:`MASK`.

    Never raises for ``str`` input; non-``str`` input is converted with ``str()``.
    """
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text

    if "://" in text:
        text = _URL_CREDENTIALS.sub(_PREFIX_MASK + "@", text)
        lowered = text.lower()
        if "slack" in lowered:
            text = _SLACK_WEBHOOK.sub(_PREFIX_MASK, text)
        if "hook" in lowered:
            text = _HOOK_PATH.sub(_PREFIX_MASK, text)
            text = _HOOK_HOST.sub(_PREFIX_MASK, text)

    lowered = text.lower()
    if any(hint in lowered for hint in _KEY_HINTS):
        if "=" in text:
            text = _QUERY_SECRET.sub(_PREFIX_MASK, text)
        if "authorization" in lowered:
            text = _AUTH_HEADER.sub(_PREFIX_MASK, text)
        if "bearer" in lowered:
            text = _BEARER.sub(_PREFIX_MASK, text)
        if "basic" in lowered:
            text = _BASIC.sub(_mask_basic, text)
        if "cookie" in lowered:
            text = _COOKIE_HEADER.sub(_PREFIX_MASK, text)
        if ":" in text or "=" in text:
            text = _KEY_VALUE.sub(_mask_kv, text)

    text = _KNOWN_TOKENS.sub(MASK, text)
    text = _DIGIT_RUN.sub(_mask_cards, text)

    if "@" in text:
        text = _EMAIL.sub(MASK + "@", text)

    # Registered values last, so that a registered DSN or webhook URL keeps its readable
    # shape ("postgres://ops:***@db/pos") when a pattern already masked its secret part.
    pattern = _registered_pattern  # read once: the registry may be swapped concurrently
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return text


# --------------------------------------------------------------------------- scrub

_SENSITIVE_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",  # also set-cookie, cookies
    "dsn",
    "webhook",
    "routingkey",
    "privatekey",
    "accesskey",
    "credential",
)
_KEY_NORMALISE = re.compile(r"[\s_\-.]")


def is_sensitive_key(key: object) -> bool:
    """True when a mapping key's name looks like it holds a secret.

    Case-insensitive substring match, ignoring ``-``, ``_``, ``.`` and spaces, so
    ``X-Api-Key``, ``api_key``, ``apiKey``, ``SLACK_WEBHOOK_URL``, ``set-cookie`` and
    ``db_password`` all match.
    """
    return _is_sensitive_name(key if isinstance(key, str) else str(key))


@lru_cache(maxsize=4096)
def _is_sensitive_name(name: str) -> bool:
    normalised = _KEY_NORMALISE.sub("", name.lower())
    return any(part in normalised for part in _SENSITIVE_KEY_PARTS) or normalised == "pwd"


def scrub(obj: Any) -> Any:
    """Deep copy of ``obj`` with secrets removed.

    * mappings -> ``dict``; values under a sensitive key (:func:`is_sensitive_key`) become
      :data:`MASK` (``None`` and empty values are kept: they reveal nothing);
    * lists, tuples, sets and frozensets keep their type;
    * strings pass through :func:`redact`;
    * anything else (numbers, booleans, ``None``, other objects) is returned unchanged.

    Cycles and nesting deeper than 32 levels are replaced by a marker string.
    """
    return _scrub(obj, 0, set())


def _scrub(obj: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, Mapping | list | tuple | set | frozenset):
        if depth >= _MAX_DEPTH:
            return "<max depth>"
        ident = id(obj)
        if ident in seen:
            return "<cycle>"
        seen.add(ident)
        try:
            if isinstance(obj, Mapping):
                return {
                    key: (_mask_value(value) if is_sensitive_key(key) else _scrub(value, depth + 1, seen))
                    for key, value in obj.items()
                }
            items = [_scrub(item, depth + 1, seen) for item in obj]
            if isinstance(obj, tuple):
                return tuple(items)
            if isinstance(obj, frozenset):
                return frozenset(items)
            if isinstance(obj, set):
                return set(items)
            return items
        finally:
            seen.discard(ident)
    return obj


def _mask_value(value: Any) -> Any:
    if value is None or (isinstance(value, str | bytes | list | tuple | dict | set) and not value):
        return value
    return MASK


# --------------------------------------------------------------------------- URLs and DSNs

_SECRET_NAME = re.compile(r"auth|token|secret|key|passw|pwd|cookie|signature|credential|session", re.I)
_DSN_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def is_secret_header(name: str) -> bool:
    """True for header or parameter names that carry credentials (Authorization, X-Api-Key, ...)."""
    return bool(_SECRET_NAME.search(name))


def _mask_userinfo(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    userinfo, host = netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    return f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"


def mask_url(url: str) -> str:
    """Keep scheme, host and the first path segment; mask credentials and everything else.

    ``https://hooks.slack.com/services/T0/B1/xyz -> https://hooks.slack.com/services/***``.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return MASK
    netloc = _mask_userinfo(parts.netloc)
    segments = parts.path.split("/")[1:]
    first = segments[0] if segments else ""
    hidden = any(segments[1:]) or bool(parts.query) or bool(parts.fragment)
    path = f"/{first}" if first else ""
    if hidden:
        path += f"/{MASK}"
    elif parts.path.endswith("/") and len(segments) > 1:
        path += "/"
    return f"{parts.scheme}://{netloc}{path}"


def mask_url_credentials(url: str) -> str:
    """Mask only a URL's password and secret-looking query values; the rest stays readable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_header(k) else v) for k, v in pairs], safe="*")
    netloc = parts.netloc
    if "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
        netloc = _mask_userinfo(netloc)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_dsn(dsn: str) -> str:
    """``postgres://ops:secret@db/pos -> postgres://ops:***@db/pos``; keyword DSNs get ``password=***``."""
    if "://" not in dsn:
        return _DSN_KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, dsn)
    return mask_url_credentials(dsn)


def dsn_keyword_password(dsn: str) -> str | None:
    """The password of a keyword DSN (``host=db password='s3cret'``), unquoted; None if absent."""
    match = _DSN_KEYWORD_PASSWORD.search(dsn)
    return match.group(2).strip("'") if match else None
