"""Tests for core.telemetry with a capturing transport of the real sentry-sdk."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from loguru import logger
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core.config import Config
from core.db import Database
from core.logging import reset_logging, setup_logging
from core.redact import MASK, clear_secrets, register_secret
from core.runtime import MonitorRole, build_services
from core.telemetry import init_sentry, scrub_breadcrumb, scrub_event, shutdown_sentry

TEST_DSN = "https://publickey@o0.ingest.sentry.io/0"

# Planted secrets, assembled at run time so they never appear verbatim in source lines
# (Sentry ships source context around every frame).
_PARTS = {
    "db_password": ("Pg", "Pass", "7731"),
    "webhook_token": ("Slk", "Tok", "9d8e7f"),
    "bearer": ("Brr", "Token", "5521"),
    "cookie": ("sessionid", "Cookie", "4412"),
    "email_local": ("jane", "doe", "pos"),
    "api_key": ("Api", "Key", "3310"),
    "deep_password": ("Deep", "Pass", "0077"),
    "exc_secret": ("Exc", "Registered", "8812"),
    "loguru_secret": ("Log", "Registered", "6650"),
    "header_key": ("Hdr", "Key", "2209"),
    "tag_token": ("Tag", "Tok", "1188"),
}
SECRET = {name: "-".join(parts) for name, parts in _PARTS.items()}
DSN = f"postgres://ops:{SECRET['db_password']}@db.internal/pos"
WEBHOOK = f"https://hooks.slack.com/services/T000/B000/{SECRET['webhook_token']}"
EMAIL = f"{SECRET['email_local']}@example.com"


class CapturingTransport(Transport):
    """Keeps every envelope the SDK would send."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def items(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = []
        for envelope in self.envelopes:
            for item in envelope.items:
                if kind is None or item.type == kind:
                    found.append(json.loads(item.get_bytes()))
        return found

    def serialized(self) -> str:
        chunks = []
        for envelope in self.envelopes:
            chunks.append(json.dumps(envelope.headers, default=str))
            chunks.extend(item.get_bytes().decode("utf-8", "replace") for item in envelope.items)
        return "\n".join(chunks)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    logger.remove()
    yield
    shutdown_sentry()
    reset_logging()
    logger.remove()
    clear_secrets()
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


@pytest.fixture()
def transport() -> CapturingTransport:
    return CapturingTransport()


def start(transport: CapturingTransport) -> None:
    assert init_sentry(
        dsn=TEST_DSN,
        environment="test",
        release="opswatch@0.1.0",
        traces_sample_rate=0.0,
        transport=transport,
    )


# --------------------------------------------------------------------------- init


@pytest.mark.parametrize("dsn", [None, "", "   "])
def test_no_dsn_means_no_sentry(dsn: str | None, transport: CapturingTransport) -> None:
    assert (
        init_sentry(dsn=dsn, environment="test", release="x", traces_sample_rate=0.1, transport=transport)
        is False
    )
    assert not sentry_sdk.get_client().is_active()
    logger.add(lambda _m: None)
    logger.error("nothing is sent")
    sentry_sdk.capture_message("nothing")
    assert transport.envelopes == []


def test_malformed_dsn_does_not_crash(transport: CapturingTransport) -> None:
    buffer = setup_logging(directory=None, env={})
    assert init_sentry(dsn="not a dsn", environment="t", release="x", traces_sample_rate=0.0) is False
    assert "Sentry error tracking disabled" in buffer.snapshot()[-1].message


def test_traces_sample_rate_is_validated() -> None:
    with pytest.raises(ValueError):
        init_sentry(dsn=TEST_DSN, environment="t", release="x", traces_sample_rate=1.5)


def test_options(transport: CapturingTransport) -> None:
    start(transport)
    options = sentry_sdk.get_client().options
    assert options["environment"] == "test"
    assert options["release"] == "opswatch@0.1.0"
    assert not options.get("send_default_pii")
    if "data_collection" in options:  # sentry-sdk >= 2.5x
        assert options["data_collection"]["user_info"] is False
        assert options["data_collection"]["stack_frame_variables"] is False
    assert options["include_local_variables"] is False
    assert options["before_send"] is scrub_event
    assert options["before_send_transaction"] is scrub_event
    assert options["before_breadcrumb"] is scrub_breadcrumb
    assert sentry_sdk.get_client().get_integration("loguru") is None  # replaced by our sink


# --------------------------------------------------------------------------- scrub_event


def test_scrub_event_unit() -> None:
    event: dict[str, Any] = {
        "message": f"failed {DSN}",
        "logentry": {"message": f"post {WEBHOOK}", "params": []},
        "request": {
            "url": "https://pos.example.com/api/v1/sales?token=abc",
            "cookies": {"sessionid": SECRET["cookie"]},
            "headers": {
                "Authorization": f"Bearer {SECRET['bearer']}",
                "Cookie": f"sessionid={SECRET['cookie']}",
                "X-Api-Key": SECRET["header_key"],
                "User-Agent": "opswatch",
            },
            "data": {"password": SECRET["deep_password"], "business_id": 1},
        },
        "user": {"id": "42", "email": EMAIL, "ip_address": "10.1.2.3"},
        "extra": {"api_key": SECRET["api_key"], "nested": {"deep": {"password": SECRET["deep_password"]}}},
        "tags": {"endpoint": "sales", "auth_token": SECRET["tag_token"]},
        "contexts": {"db": {"dsn": DSN, "pool": 5}},
        "breadcrumbs": {"values": [{"message": f"to {EMAIL}", "data": {"url": WEBHOOK}}]},
        "exception": {
            "values": [
                {
                    "type": "ConnectionError",
                    "value": f"cannot connect to {DSN}",
                    "stacktrace": {
                        "frames": [{"function": "probe", "vars": {"password": "'x'", "dsn": f"'{DSN}'"}}]
                    },
                }
            ]
        },
    }
    original = copy.deepcopy(event)
    result = scrub_event(event, {})
    assert event == original  # input untouched

    assert "cookies" not in result["request"]
    assert result["request"]["headers"] == {"User-Agent": "opswatch"}
    assert result["request"]["url"] == "https://pos.example.com/api/v1/sales?token=***"
    assert result["request"]["data"] == {"password": MASK, "business_id": 1}
    assert result["user"] == {"id": "42"}
    assert result["extra"] == {"api_key": MASK, "nested": {"deep": {"password": MASK}}}
    assert result["tags"] == {"endpoint": "sales", "auth_token": MASK}
    assert result["contexts"]["db"] == {"dsn": MASK, "pool": 5}
    assert result["message"] == "failed postgres://ops:***@db.internal/pos"
    assert result["logentry"]["message"] == "post https://hooks.slack.com/services/***"
    assert result["breadcrumbs"]["values"][0] == {
        "message": "to ***@example.com",
        "data": {"url": "https://hooks.slack.com/services/***"},
    }
    exc = result["exception"]["values"][0]
    assert exc["value"] == "cannot connect to postgres://ops:***@db.internal/pos"
    assert exc["stacktrace"]["frames"][0]["vars"] == {"password": MASK, "dsn": MASK}

    text = json.dumps(result)
    for secret in SECRET.values():
        assert secret not in text


def test_scrub_event_header_list_form() -> None:
    result = scrub_event({"request": {"headers": [["authorization", "x"], ["Accept", "json"]]}}, {})
    assert result["request"]["headers"] == [["Accept", "json"]]


# --------------------------------------------------------------------------- end to end


def _plant_everything() -> None:
    """Send secrets to Sentry through every channel the app could use."""
    register_secret(SECRET["exc_secret"])
    register_secret(SECRET["loguru_secret"])

    def add_request(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event["request"] = {
            "url": WEBHOOK,
            "method": "POST",
            "cookies": {"sessionid": SECRET["cookie"]},
            "headers": {
                "Authorization": f"Bearer {SECRET['bearer']}",
                "Cookie": f"sessionid={SECRET['cookie']}",
                "X-Api-Key": SECRET["header_key"],
            },
        }
        return event

    scope = sentry_sdk.get_isolation_scope()
    scope.add_event_processor(add_request)
    sentry_sdk.set_user({"id": "op-1", "email": EMAIL, "ip_address": "10.0.0.9"})
    sentry_sdk.set_tag("endpoint", "sales-endpoint")
    sentry_sdk.set_tag("auth_token", SECRET["tag_token"])
    sentry_sdk.set_extra("api_key", SECRET["api_key"])
    sentry_sdk.set_extra("nested", {"deep": {"password": SECRET["deep_password"]}})
    sentry_sdk.set_context("database", {"dsn": DSN, "note": f"fallback {DSN}"})
    sentry_sdk.add_breadcrumb(category="http", message=f"POST {WEBHOOK}", data={"Authorization": "Bearer x"})

    try:
        raise ConnectionError(f"cannot connect to {DSN} with key {SECRET['exc_secret']}")
    except ConnectionError as exc:
        sentry_sdk.capture_exception(exc)

    sentry_sdk.capture_message(f"notify {EMAIL} via {WEBHOOK} using Bearer {SECRET['bearer']}")

    bound = logger.bind(endpoint="sales-endpoint", dsn=DSN, api_key=SECRET["api_key"])
    bound.info(f"about to probe {DSN}")  # breadcrumb
    bound.error(f"probe failed, token={SECRET['loguru_secret']} cookie: {SECRET['cookie']}")
    try:
        raise RuntimeError(f"crash with {SECRET['loguru_secret']} and {WEBHOOK}")
    except RuntimeError:
        bound.exception("worker crashed")


@pytest.mark.parametrize("with_logging_setup", [True, False])
def test_planted_secrets_never_reach_sentry(transport: CapturingTransport, with_logging_setup: bool) -> None:
    # with_logging_setup=False: only the Sentry bridge sees loguru records (no patcher),
    # so this proves before_send alone is enough.
    if with_logging_setup:
        setup_logging(directory=None, env={})
    start(transport)
    with sentry_sdk.isolation_scope():
        _plant_everything()
    sentry_sdk.flush()

    events = transport.items("event")
    assert len(events) == 4
    text = transport.serialized()
    for name, secret in SECRET.items():
        assert secret not in text, f"planted {name} leaked"
    assert "10.0.0.9" not in text and EMAIL not in text

    # ... while the useful, non-secret content survives
    assert "sales-endpoint" in text
    assert "cannot connect to postgres://ops:***@db.internal/pos" in text
    assert "https://hooks.slack.com/services/***" in text
    assert "worker crashed" in text and "RuntimeError" in text
    for event in events:
        assert event["environment"] == "test" and event["release"] == "opswatch@0.1.0"
        assert event["user"] == {"id": "op-1"}
        assert "cookies" not in event["request"]
        assert not {"authorization", "cookie", "x-api-key"} & {h.lower() for h in event["request"]["headers"]}


def test_loguru_errors_become_events(transport: CapturingTransport) -> None:
    setup_logging(directory=None, env={})
    start(transport)
    with sentry_sdk.isolation_scope():
        logger.bind(endpoint="sales", rule="latency").info("context line")
        logger.warning("just a warning")
        logger.bind(endpoint="sales", rule="latency").error("endpoint down")
        try:
            {}["missing"]
        except KeyError:
            logger.bind(dlq_id=17).exception("dlq handler failed")
    sentry_sdk.flush()

    plain, with_exc = transport.items("event")
    assert plain["logentry"]["message"] == "endpoint down"
    assert plain["level"] == "error"
    assert plain["logger"] == __name__
    assert plain["extra"]["endpoint"] == "sales" and plain["extra"]["rule"] == "latency"
    assert not any(k.startswith("_opswatch") for k in plain["extra"])
    crumbs = [c["message"] for c in plain["breadcrumbs"]["values"]]
    assert crumbs[-2:] == ["context line", "just a warning"]

    assert with_exc["logentry"]["message"] == "dlq handler failed"
    assert with_exc["exception"]["values"][0]["type"] == "KeyError"
    assert with_exc["exception"]["values"][0]["mechanism"] == {"type": "loguru", "handled": True}
    assert with_exc["extra"]["dlq_id"] == 17


def test_bridge_is_order_independent_and_not_duplicated(transport: CapturingTransport) -> None:
    start(transport)
    start(transport)  # re-init replaces the sink instead of adding a second one
    setup_logging(directory=None, env={})  # after init: must not remove the Sentry sink
    logger.error("exactly once")
    sentry_sdk.flush()
    assert [e["logentry"]["message"] for e in transport.items("event")] == ["exactly once"]


def test_shutdown_stops_sending(transport: CapturingTransport) -> None:
    start(transport)
    shutdown_sentry()
    assert not sentry_sdk.get_client().is_active()
    logger.add(lambda _m: None)
    logger.error("after shutdown")
    assert transport.items("event") == []


# --------------------------------------------------------------------------- card numbers


async def test_card_number_from_a_failing_custom_metric_reaches_no_event_or_log(
    database: Database, transport: CapturingTransport, tmp_path: Path
) -> None:
    """A metric's SQL fails on DLQ-like text holding a PAN: the error goes to Sentry and both log
    files with the card number replaced; other digits (the metric's interval, order ids) stay."""
    card = " ".join(["4111", "1111", "1111", "1111"])  # assembled: no source line holds it
    order = "".join(["100000", "000000123"])  # 15 digits, not Luhn-valid: kept
    config = Config.model_validate({
        "metrics": [{"name": "cards", "interval": 0.2,
                     "sql": f"SELECT 'order {order} card {card}'::int"}],
        "alerts": {"rules": []},
    })  # fmt: skip
    setup_logging(directory=tmp_path, env={})
    start(transport)
    failed = asyncio.Event()  # set from the logging call, after which every sink has the record
    logger.add(lambda m: failed.set() if "custom.cards" in m.record["message"] else None, level="ERROR")
    monitor = build_services(config, database, role=MonitorRole.PASSIVE).monitor
    await monitor.start()
    try:
        await asyncio.wait_for(failed.wait(), 10)
    finally:
        await monitor.stop()
    sentry_sdk.flush()
    sent = transport.serialized()
    logs = {name: (tmp_path / name).read_text(encoding="utf-8") for name in ("combined.log", "error.log")}
    for where, text in {"sentry": sent, **logs}.items():
        assert "invalid input syntax for type integer" in text, where
        assert f"order {order} card [card]" in text, where
        assert card not in text and card.replace(" ", "") not in text, where
