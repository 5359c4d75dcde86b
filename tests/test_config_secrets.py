"""core.config: secrets never echoed in errors, secrets found through their types, names inert."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from cli.main import main
from core.config import iter_errors, load_config, secret_values
from core.notify.email import EmailNotifier
from core.notify.pagerduty import PagerDutyNotifier
from core.notify.slack import SlackNotifier
from core.notify.webhook import WebhookNotifier
from core.redact import clear_secrets, redact, register_secret, registered_secret_count
from tests.config_support import DATA, SECRETS, error_of, write

# --------------------------------------------------------------------------- secret values in errors

SECRET_TYPE_ERRORS = [
    (
        "notifications:\n  email:\n    password: ['SmtpPw_9f8e7d']\n",
        "SmtpPw_9f8e7d",
        "3: notifications.email.password: expected a text value, got a list (secret, value not shown)",
    ),
    (
        "notifications:\n  email:\n    password: 2024-03-09\n",
        "2024",
        "3: notifications.email.password: expected a text value, got a date "
        "(secret, value not shown; quote it to keep it as text)",
    ),
    (
        "notifications:\n  pagerduty:\n    routing_key: {key: R0uting_5a4b3c}\n",
        "R0uting_5a4b3c",
        "3: notifications.pagerduty.routing_key: expected a text value, got a mapping "
        "(secret, value not shown)",
    ),
    (
        "endpoints:\n  - name: api\n    url: http://127.0.0.1/x\n    headers:\n"
        "      Authorization: ['Bearer Hdr_7g6h5i']\n",
        "Hdr_7g6h5i",
        "5: endpoints[0].headers.Authorization: expected a text value, got a list (secret, value not shown)",
    ),
    (
        "notifications:\n  slack:\n    webhooks:\n"
        "      critical: ['https://hooks.slack.com/services/T0/B0/Slk_3j2k1l']\n",
        "Slk_3j2k1l",
        "4: notifications.slack.webhooks.critical: expected a text value, got a list "
        "(secret, value not shown)",
    ),
    (
        "database:\n  dsn: {url: 'postgresql://ops:Pg_1m2n3o@db/pos'}\n",
        "Pg_1m2n3o",
        "2: database.dsn: expected a text value, got a mapping (secret, value not shown)",
    ),
    (
        "notifications:\n  webhook: {name: bridge, url: 'https://bridge.example.com/in/Wh_4p5q6r'}\n",
        "Wh_4p5q6r",
        "2: notifications.webhook: expected a list, got a mapping (value not shown: it may hold secrets)",
    ),
]


@pytest.mark.parametrize(("body", "secret", "message"), SECRET_TYPE_ERRORS)
def test_type_errors_on_secret_fields_never_echo_the_value(
    tmp_path: Path, body: str, secret: str, message: str
) -> None:
    path = write(tmp_path, body)
    err = error_of(path)
    assert str(err) == f"{path}:{message}"
    assert all(secret not in str(e) for e in iter_errors(err))


def test_config_check_does_not_echo_a_secret_of_the_wrong_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "notifications:\n  email:\n    password: ['SmtpPw_9f8e7d']\n")
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"opswatch: {path}:3: notifications.email.password: expected a text value")
    assert "SmtpPw_9f8e7d" not in captured.out + captured.err


def test_type_errors_on_plain_fields_still_show_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "notifications:\n  email:\n    username: [alerts]\n")
    assert str(error_of(path)).endswith("notifications.email.username: expected a text value, got ['alerts']")


# --------------------------------------------------------------------------- the redaction set


def test_secret_values_come_from_the_config_types() -> None:
    """Every secret of the fixture is found through the ``Secret`` markers, and nothing public."""
    config = load_config(DATA / "secrets.yaml", env={})
    found = set(secret_values(config))
    assert not found & {"alerts", "application/json", "opswatch@example.com", "sales", "bridge"}
    clear_secrets()
    try:
        for value in found:
            register_secret(value)
        dump = str(config.model_dump())
        for secret in SECRETS:
            assert secret in dump
            assert secret not in redact(dump), secret
        # a webhook's path alone, as a receiver may echo it, is masked too
        assert "w3bhook-path" not in redact("no webhook for POST /hooks/abc/w3bhook-path")
    finally:
        clear_secrets()


def test_each_notifier_registers_what_its_section_types_name() -> None:
    """The notifiers find their secrets the one way, through ``secret_values`` of their section."""
    n = load_config(DATA / "secrets.yaml", env={}).notifications
    cases: list[tuple[Callable[[], object], BaseModel, tuple[str, ...]]] = [
        (lambda: SlackNotifier(n.slack), n.slack, ("sl4ck-critical", "sl4ck-default")),
        (lambda: PagerDutyNotifier(n.pagerduty), n.pagerduty, ("pd-r0uting",)),
        (lambda: EmailNotifier(n.email), n.email, ("smtp-passw0rd",)),
        (lambda: WebhookNotifier(n.webhook), n.webhook[0], ("w3bhook-path", "w3bhook-token")),
    ]
    try:
        for build, section, planted in cases:
            clear_secrets()
            for value in secret_values(section):
                register_secret(value)
            by_type = registered_secret_count()
            clear_secrets()
            assert all(redact(f"got {secret} back") == f"got {secret} back" for secret in planted)
            build()
            assert registered_secret_count() == by_type > 0
            for secret in planted:
                assert secret not in redact(f"got {secret} back"), secret
    finally:
        clear_secrets()


# --------------------------------------------------------------------------- URL credentials + Authorization


def test_endpoint_with_url_credentials_and_authorization_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        endpoints:
          - name: health
            url: http://127.0.0.1:3000/test/health
          - name: sales
            url: https://ops:Pw_8s7t6u@pos.example.com/api/v1/sales
            headers:
              authorization: ${TOKEN}
        """,
    )
    err = error_of(path, env={"TOKEN": "Bearer Tok_5v4w3x"})
    assert str(err) == (
        f"{path}:5: endpoints[1].url: endpoint 'sales' has credentials in the URL (user:password@) "
        "and an Authorization header; every request would fail: keep only one of them"
    )
    # an unset token leaves no header (empty headers are dropped): the URL credentials alone are fine
    assert load_config(path, env={"TOKEN": ""}).endpoints[1].headers == {}


def test_config_check_refuses_url_credentials_with_authorization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
        endpoints:
          - name: sales
            url: https://ops:Pw_8s7t6u@pos.example.com/api/v1/sales
            headers: {Authorization: Basic b3BzOnB3}
        """,
    )
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"opswatch: {path}:3: endpoints[0].url: endpoint 'sales' has credentials in the URL "
        "(user:password@) and an Authorization header; every request would fail: keep only one of them"
    )
    assert "Pw_8s7t6u" not in captured.out + captured.err and "b3BzOnB3" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            "notifications:\n  webhook:\n    - name: bridge\n      url: https://u:Pw_8s7t6u@example.com/in\n"
            "      headers: {Authorization: Bearer abcdef}\n",
            "notifications.webhook[0].url",
        ),
        (
            "triage:\n  redrive:\n    replay_url: https://u:Pw_8s7t6u@example.com/replay\n"
            "    headers: {Authorization: Bearer abcdef}\n",
            "triage.redrive.replay_url",
        ),
    ],
)
def test_url_credentials_with_authorization_elsewhere(tmp_path: Path, body: str, key: str) -> None:
    err = error_of(write(tmp_path, body))
    assert err.key == key and "Authorization header" in err.message and "Pw_8s7t6u" not in str(err)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("endpoints:\n  - name: {name}\n    url: http://127.0.0.1/x\n", "endpoints[0].name"),
        (
            "endpoints:\n  - name: api\n    url: http://127.0.0.1/x\n    service: {name}\n",
            "endpoints[0].service",
        ),
        (
            "alerts:\n  rules:\n    - name: {name}\n      metric: db.unreachable\n      critical: 0\n",
            "alerts.rules[0].name",
        ),
        (
            "notifications:\n  webhook:\n    - name: {name}\n      url: http://127.0.0.1/hook\n",
            "notifications.webhook[0].name",
        ),
    ],
)
@pytest.mark.parametrize(
    "char", ["\x1b", "\x9b", "\x85", "\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"]
)
def test_names_reject_c0_c1_and_bidi_controls(tmp_path: Path, section: str, key: str, char: str) -> None:
    escaped = char.encode("unicode_escape").decode()  # YAML double quotes read \x.. and \u....
    path = write(tmp_path, section.format(name=f'"ep{escaped}x"'))
    err = error_of(path)
    name_line = next(i for i, line in enumerate(section.split("\n"), 1) if "{name}" in line)
    assert (err.key, err.line) == (key, name_line)
    assert err.message.startswith("names must be 1-100 printable characters (no control or bidi characters)")
    assert char not in str(err)


def test_plain_unicode_names_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, 'endpoints:\n  - name: "Café ventas 東京"\n    url: http://127.0.0.1/x\n')
    assert load_config(path, env={}).endpoints[0].name == "Café ventas 東京"
