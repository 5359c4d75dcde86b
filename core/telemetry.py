"""Error tracking with Sentry (sentry-sdk 2.x), scrubbed of secrets and personal data.

:func:`init_sentry` does nothing unless a DSN is configured.  When enabled:

* no default PII (``send_default_pii=False``; SDKs that deprecate the flag in favour of
  ``data_collection`` get their default, which is the same), no frame local variables
  (``include_local_variables=False``: locals are the easiest way for a secret to slip
  out; tracebacks keep file, line and source context), and no trace headers on outgoing
  HTTP requests (``trace_propagation_targets=[]``);
* ``before_send`` / ``before_send_transaction`` run :func:`scrub_event` and
  ``before_breadcrumb`` runs :func:`scrub_breadcrumb`: cookies, ``Authorization`` /
  ``Cookie`` / API-key headers, the user's e-mail and IP address are removed, then
  :func:`core.redact.scrub` masks secret-named keys (password, token, secret, api_key,
  dsn, webhook, ...) at any depth and redacts DSN passwords, webhook URLs, bearer tokens,
  e-mails and registered secrets in every string (messages, exception values, frame
  variables, breadcrumbs, tags, contexts, extra).  If scrubbing itself fails the SDK
  drops the event (fail closed).
* loguru records become Sentry data through a loguru sink installed here: ERROR and
  above are captured as events (with the exception and its traceback when the record has
  one, and the bound context as ``extra``); INFO to WARNING become breadcrumbs.

  sentry-sdk ships ``LoguruIntegration``, but it installs its loguru sinks only once per
  process (``setup_once``), so they are lost for good after any ``logger.remove()``, and
  its events carry loguru's full formatted line (timestamp included) as the message,
  which defeats grouping.  It is therefore disabled and replaced by the sink below, which
  :func:`init_sentry` (re)installs on every call.  The stdlib ``LoggingIntegration`` is
  kept for its hooks but captures nothing itself: :func:`core.logging.setup_logging`
  routes stdlib records through loguru, so they arrive via the same sink.

Call :func:`core.logging.setup_logging` and :func:`init_sentry` in either order.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
from loguru import logger
from sentry_sdk.consts import DEFAULT_OPTIONS
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.loguru import LoguruIntegration
from sentry_sdk.utils import event_from_exception

from core.redact import scrub

if TYPE_CHECKING:
    from loguru import Message
    from sentry_sdk._types import Event

__all__ = [
    "init_sentry",
    "scrub_breadcrumb",
    "scrub_event",
    "shutdown_sentry",
]

_DROP_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)
_DROP_USER_KEYS = frozenset({"email", "ip_address", "ip"})
_SENTRY_LEVELS = {
    "TRACE": "debug",
    "DEBUG": "debug",
    "INFO": "info",
    "SUCCESS": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "fatal",
}
_ERROR_NO = 40
_INTERNAL_PREFIX = "_opswatch"

_lock = threading.Lock()
_bridge_id: int | None = None


# --------------------------------------------------------------------------- scrubbing


def _strip_request(request: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in request.items() if k != "cookies"}
    headers = cleaned.get("headers")
    if isinstance(headers, Mapping):
        cleaned["headers"] = {k: v for k, v in headers.items() if str(k).lower() not in _DROP_HEADERS}
    elif isinstance(headers, list | tuple):
        cleaned["headers"] = [
            pair
            for pair in headers
            if not (isinstance(pair, list | tuple) and pair and str(pair[0]).lower() in _DROP_HEADERS)
        ]
    return cleaned


def scrub_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``before_send`` hook: a scrubbed deep copy of ``event`` (never drops the event)."""
    cleaned = dict(event)
    request = cleaned.get("request")
    if isinstance(request, Mapping):
        cleaned["request"] = _strip_request(request)
    user = cleaned.get("user")
    if isinstance(user, Mapping):
        cleaned["user"] = {k: v for k, v in user.items() if str(k).lower() not in _DROP_USER_KEYS}
    result: dict[str, Any] = scrub(cleaned)
    return result


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``before_breadcrumb`` hook: a scrubbed deep copy of ``crumb``."""
    result: dict[str, Any] = scrub(crumb)
    return result


# --------------------------------------------------------------------------- loguru bridge


def _loguru_to_sentry(message: Message) -> None:
    """Loguru sink: ERROR+ -> Sentry event, lower levels -> breadcrumb.  Never raises."""
    try:
        record = message.record
        name = record["name"] or ""
        if name.startswith("sentry_sdk"):
            return  # the SDK's own complaints must not feed back into it
        client = sentry_sdk.get_client()
        if not client.is_active():
            return
        extra = {str(k): v for k, v in record["extra"].items() if not str(k).startswith(_INTERNAL_PREFIX)}
        level_no = record["level"].no
        level = _SENTRY_LEVELS.get(record["level"].name, "error" if level_no >= _ERROR_NO else "info")

        if level_no < _ERROR_NO:
            sentry_sdk.add_breadcrumb(
                type="log",
                category=name or "log",
                message=record["message"],
                level=level,
                data=extra,
                timestamp=record["time"],
            )
            return

        event: dict[str, Any]
        hint: dict[str, Any]
        exception = record["exception"]
        if exception is not None and exception.type is not None and exception.value is not None:
            exc_event, hint = event_from_exception(
                (exception.type, exception.value, exception.traceback),
                client_options=client.options,
                mechanism={"type": "loguru", "handled": True},
            )
            event = dict(exc_event)
        else:
            event, hint = {}, {}
        event["level"] = level
        event["logger"] = name
        event["logentry"] = {"message": record["message"], "params": []}
        if extra:
            event["extra"] = extra
        sentry_sdk.capture_event(cast("Event", event), hint=hint)
    except Exception:  # pragma: no cover - defensive: a sink must never break logging
        pass


def _install_bridge() -> None:
    global _bridge_id
    with _lock:
        _remove_bridge_locked()
        _bridge_id = logger.add(
            _loguru_to_sentry, level="INFO", format="{message}", backtrace=False, diagnose=False, catch=True
        )


def _remove_bridge_locked() -> None:
    global _bridge_id
    if _bridge_id is not None:
        try:
            logger.remove(_bridge_id)
        except ValueError:
            pass  # already removed by someone's logger.remove()
        _bridge_id = None


# --------------------------------------------------------------------------- lifecycle


def init_sentry(
    *,
    dsn: str | None,
    environment: str,
    release: str,
    traces_sample_rate: float,
    transport: Any = None,
) -> bool:
    """Initialise Sentry; return ``True`` when it is active.

    Returns ``False`` without touching the SDK when ``dsn`` is empty or ``None``, and
    also (after logging a warning) when the SDK rejects the configuration, e.g. a
    malformed DSN: error tracking is never a reason for opswatch not to start.
    ``transport`` is passed to ``sentry_sdk.init`` (tests use a capturing transport).
    """
    if dsn is None or not dsn.strip():
        return False
    if not 0.0 <= traces_sample_rate <= 1.0:
        raise ValueError("traces_sample_rate must be between 0.0 and 1.0")

    options: dict[str, Any] = {
        "dsn": dsn.strip(),
        "environment": environment,
        "release": release,
        "traces_sample_rate": traces_sample_rate,
        "include_local_variables": False,
        "before_send": scrub_event,
        "before_send_transaction": scrub_event,
        "before_breadcrumb": scrub_breadcrumb,
        # No sentry-trace / baggage headers on outgoing requests (the monitored POS API,
        # Slack, PagerDuty): they are third parties as far as opswatch's Sentry goes.
        "trace_propagation_targets": [],
        "integrations": [LoggingIntegration(level=None, event_level=None)],
        "disabled_integrations": [LoguruIntegration],
    }
    if "data_collection" not in DEFAULT_OPTIONS:
        # Older 2.x SDKs.  Newer ones deprecate the flag; their default is the same (no PII).
        options["send_default_pii"] = False
    if transport is not None:
        options["transport"] = transport
    try:
        sentry_sdk.init(**options)
    except Exception as exc:
        logger.warning("Sentry error tracking disabled: {}: {}", type(exc).__name__, exc)
        return False
    _install_bridge()
    return True


def shutdown_sentry(timeout: float = 2.0) -> None:
    """Flush pending events, close the client and remove the loguru bridge."""
    with _lock:
        _remove_bridge_locked()
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)
