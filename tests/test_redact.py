"""Unit tests for core.redact (pure, no I/O)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from core.redact import (
    MASK,
    clear_secrets,
    dsn_keyword_password,
    is_sensitive_key,
    mask_dsn,
    mask_url,
    mask_url_credentials,
    redact,
    register_secret,
    registered_secret_count,
    scrub,
    url_parts,
)


@pytest.fixture(autouse=True)
def _empty_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


REDACTIONS = [
    # URL credentials
    ("postgres://ops:secret@db/pos", "postgres://ops:***@db/pos"),
    (
        "postgresql://ops:secret@db:5432/pos?sslmode=require",
        "postgresql://ops:***@db:5432/pos?sslmode=require",
    ),
    ("dsn=postgres://ops:p@ss@db/pos", "dsn=postgres://ops:***@db/pos"),
    ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ("amqp://guest:guest@mq//", "amqp://guest:***@mq//"),
    ("connect to 'postgres://ops:secret@db/pos' failed", "connect to 'postgres://ops:***@db/pos' failed"),
    # webhooks
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "https://hooks.slack.com/services/***"),
    (
        "post to https://hooks.slack.com/services/T0/B0/x. done",
        "post to https://hooks.slack.com/services/*** done",
    ),
    ("https://discord.com/api/webhooks/1234/abcDEF", "https://discord.com/api/webhooks/***"),
    ("https://hooks.zapier.com/hooks/catch/1/abc/", "https://hooks.zapier.com/***"),
    ("https://example.com/notify?token=abc123&x=1", "https://example.com/notify?token=***&x=1"),
    ("https://example.com/a?api_key=zzz&key=kkk", "https://example.com/a?api_key=***&key=***"),
    ("https://example.com/a?access_token=zzz#frag", "https://example.com/a?access_token=***#frag"),
    # authorization
    ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "{'Authorization': 'Basic ***'}"),
    ("authorization=xyz123", "authorization=***"),
    ("sent header Bearer eyJabc.def", "sent header Bearer ***"),
    ("Basic dXNlcjpwYXNz", "Basic ***"),
    ("Cookie: session=abc; csrftoken=def", "Cookie: ***"),
    # key/value pairs
    ("password=hunter2 user=ops", "password=*** user=ops"),
    ("host=db user=ops password=s3cr3t dbname=pos", "host=db user=ops password=*** dbname=pos"),
    ("token: abcd", "token: ***"),
    ('{"password": "x y z", "ok": 1}', '{"password": "***", "ok": 1}'),
    ("{'api_key': 'K-123'}", "{'api_key': '***'}"),
    ('{"routing_key": "R0123456789abcdef"}', '{"routing_key": "***"}'),
    ("routing_key=R0123456789", "routing_key=***"),
    ("PGPASSWORD=secret psql", "PGPASSWORD=*** psql"),
    ("client_secret: abc", "client_secret: ***"),
    # e-mails
    ("notify jane.doe+pos@example.com now", "notify ***@example.com now"),
    ("<ops@shop.example.co.uk>", "<***@shop.example.co.uk>"),
    # well-known token formats
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "jwt ***"),
    ("xoxb-1234567890-abcdefghij", "***"),
]


@pytest.mark.parametrize(("text", "expected"), REDACTIONS)
def test_redact_masks(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), REDACTIONS)
def test_redact_is_idempotent(text: str, expected: str) -> None:
    assert redact(redact(text)) == redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GET /api/v1/sales returned 503 in 1234 ms",
        "http://localhost:8080/test/health",
        "https://pos.example.com/api/v1/worker/steps?page=2&limit=50",
        "basic setup failed",
        "Basic Authentication required",
        "authorization failed for business 42",
        "ratio 3:1 at 12:30:45",
        "user@localhost",
        "dead_letter_messages id=17 status=pending",
        "ÄÖÜ ünïcödé ✓",
    ],
)
def test_redact_leaves_innocent_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_accepts_non_str() -> None:
    assert redact(12) == "12"  # type: ignore[arg-type]


def test_redact_multiline_does_not_leak_into_next_line() -> None:
    assert redact("password:\nnext line") == "password:\nnext line"
    assert redact("Cookie: a=1\nnext") == "Cookie: ***\nnext"


# --------------------------------------------------------------------------- registry


def test_registered_secret_is_masked_everywhere() -> None:
    register_secret("Zq8-unguessable-Value!")
    assert redact("value Zq8-unguessable-Value! in text") == f"value {MASK} in text"
    # URL-encoded form (as it appears inside a DSN) too
    assert "unguessable" not in redact("postgres://u:Zq8-unguessable-Value%21@h/d")
    assert "unguessable" not in redact("x=Zq8-unguessable-Value%21")


def test_registered_dsn_keeps_its_shape() -> None:
    register_secret("postgres://ops:Pg-Pass-1@db/pos")
    register_secret("Pg-Pass-1")
    assert redact("dsn postgres://ops:Pg-Pass-1@db/pos") == "dsn postgres://ops:***@db/pos"
    assert redact("password was Pg-Pass-1.") == "password was ***."


def test_short_secrets_are_ignored() -> None:
    register_secret("abc12")
    register_secret("   ")
    assert registered_secret_count() == 0
    assert redact("abc12 stays") == "abc12 stays"


def test_longer_secret_wins_over_prefix() -> None:
    register_secret("abcdef")
    register_secret("abcdefghij")
    assert redact("abcdefghij") == MASK


def test_registry_is_thread_safe() -> None:
    secrets = [f"thread-secret-{i:04d}-x" for i in range(200)]
    errors: list[BaseException] = []

    def register(chunk: list[str]) -> None:
        try:
            for value in chunk:
                register_secret(value)
                redact(f"uses {value}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(secrets[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    text = " ".join(secrets)
    assert "thread-secret" not in redact(text)


def test_redact_is_fast() -> None:
    register_secret("some-registered-secret")
    messages = [
        "GET /api/v1/sales returned 200 in 35 ms",
        "dlq message 17 moved: Max retries exceeded",
        "db error postgres://ops:secret@db/pos password=x jane@example.com",
    ] * 1000
    start = time.perf_counter()
    for message in messages:
        redact(message)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"3000 redactions took {elapsed:.3f}s"


def test_redact_is_linear_on_hostile_input() -> None:
    for text in ("a://" * 50_000, "password" * 50_000, "a@" * 50_000, "Bearer " * 50_000):
        start = time.perf_counter()
        redact(text)
        assert time.perf_counter() - start < 1.0


def test_hostile_digit_runs_stay_linear() -> None:
    for text in ("1 " * 50_000, "1-" * 50_000, "1234567890" * 10_000, "4111 " * 50_000):
        start = time.perf_counter()
        redact(text)
        assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- card numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111", "card [card]"),
        ("4111111111111111", "[card]"),
        ("pan=4111-1111-1111-1111;", "pan=[card];"),
        ('syntax for type integer: "card 4111 1111 1111 1111"', 'syntax for type integer: "card [card]"'),
        ("amex 3782-822463-10005, visa 4012888888881881.", "amex [card], visa [card]."),
        ("19 digits 6011 0009 9013 9424 009", "19 digits [card]"),
        ("order 12 4111 1111 1111 1111 ok", "order 12 [card] ok"),
        ("two 4111111111111111 5555555555554444", "two [card] [card]"),
    ],
)
def test_card_numbers_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "order 100000000000123 shipped",  # 15 digits, not Luhn-valid
        "at 2026-12-04 15:43:34.123 (1764863014123)",  # a timestamp and an epoch, not Luhn-valid
        "run 2026-12-04 2026-12-05",  # dates are not card-shaped groups
        "latency 0.4111111111111111 s",  # a fraction, not a number of its own
        "id 41111111111111111111111",  # 23 digits: too long for a card
        "sha 4111111111111111abc",  # part of a word
        "12 34 56 78 90 12 34 56",  # short groups are not a card layout
    ],
)
def test_other_digit_runs_are_kept(text: str) -> None:
    assert redact(text) == text


# --------------------------------------------------------------------------- URL parts


WEBHOOK = "https://hooks.slack.com/services/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"


def test_url_parts() -> None:
    parts = url_parts("https://bot:pa55word@hooks.example.com/in/abc/Tok3nValue9?sig=Zz9Yy8Xx&v=1")
    for piece in ("/in/abc/Tok3nValue9", "/in/abc/Tok3nValue9?sig=Zz9Yy8Xx&v=1", "sig=Zz9Yy8Xx&v=1",
                  "Zz9Yy8Xx", "Tok3nValue9", "pa55word"):  # fmt: skip
        assert piece in parts, piece
    assert "in" not in parts and "abc" not in parts  # short words are not secrets
    assert url_parts("postgres://ops:pw@db/pos") == [] and url_parts("not a url") == []


def test_registered_webhook_masks_an_echoed_path_and_its_token() -> None:
    register_secret(WEBHOOK)
    path = WEBHOOK.removeprefix("https://hooks.slack.com")
    token = path.rsplit("/", 1)[1]
    for text in (
        f"HTTP 404: no webhook for POST {path}",
        f"unknown token {token}",
        f"path={path.replace('/', '%2F')}",
        "team T0A1B2C3D",
    ):
        out = redact(text)
        assert token not in out and "T0A1B2C3D" not in out and "%2Fservices" not in out, out
    assert redact("POST /services failed") == "POST /services failed"  # a bare word stays


# --------------------------------------------------------------------------- scrub


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "Passwd",
        "client-secret",
        "X-Api-Key",
        "apiKey",
        "api_key",
        "APIKEY",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "sentry_dsn",
        "SLACK_WEBHOOK_URL",
        "routing_key",
        "routingKey",
        "private_key",
        "accessToken",
        "refresh-token",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)
    assert scrub({key: "value"}) == {key: MASK}


@pytest.mark.parametrize("key", ["endpoint", "rule", "dlq_id", "business_id", "author", "status", "url"])
def test_innocent_keys(key: str) -> None:
    assert not is_sensitive_key(key)
    assert scrub({key: "value"}) == {key: "value"}


def test_scrub_nested_structures() -> None:
    data = {
        "endpoint": "sales",
        "extra": {"deep": {"password": "p4ss", "note": "mail jane@example.com"}},
        "items": [{"token": "t"}, "postgres://ops:secret@db/pos", 3, None, True],
        "pair": ("Bearer abcdef", 1.5),
        "tags": {"Authorization: Basic dXNlcjpwYXNz"},
        "empty_password": "",
        "unset_token": None,
    }
    result = scrub(data)
    assert result == {
        "endpoint": "sales",
        "extra": {"deep": {"password": MASK, "note": "mail ***@example.com"}},
        "items": [{"token": MASK}, "postgres://ops:***@db/pos", 3, None, True],
        "pair": ("Bearer ***", 1.5),
        "tags": {"Authorization: Basic ***"},
        "empty_password": "",
        "unset_token": None,
    }
    assert isinstance(result["pair"], tuple)
    # the input is untouched (deep copy)
    assert data["extra"]["deep"]["password"] == "p4ss"  # type: ignore[index]
    assert data["items"][1] == "postgres://ops:secret@db/pos"  # type: ignore[index]


def test_scrub_masks_whole_container_under_sensitive_key() -> None:
    assert scrub({"cookies": {"session": "abc"}, "headers": {"Cookie": "a=b"}}) == {
        "cookies": MASK,
        "headers": {"Cookie": MASK},
    }


def test_scrub_uses_registered_secrets() -> None:
    register_secret("plain-looking-value")
    assert scrub({"note": ["x plain-looking-value y"]}) == {"note": [f"x {MASK} y"]}


def test_scrub_handles_cycles_and_depth() -> None:
    cyclic: dict[str, object] = {"name": "a"}
    cyclic["self"] = cyclic
    assert scrub(cyclic) == {"name": "a", "self": "<cycle>"}

    deep: list[object] = []
    node = deep
    for _ in range(100):
        child: list[object] = []
        node.append(child)
        node = child
    scrub(deep)  # no RecursionError

    shared = ["x"]
    assert scrub({"a": shared, "b": shared}) == {"a": ["x"], "b": ["x"]}  # not a cycle


def test_scrub_leaves_other_objects() -> None:
    marker = object()
    assert scrub(marker) is marker
    assert scrub(42) == 42


# --------------------------------------------------------------------------- URLs and DSNs


MASKED_URLS: list[tuple[Callable[[str], str], str, str]] = [
    (mask_url, "https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/***"),
    (mask_url, "https://hooks.slack.com/services", "https://hooks.slack.com/services"),
    (mask_url, "https://example.com/hook?token=abc", "https://example.com/hook/***"),
    (mask_url, "https://user:pw@example.com/a/b", "https://user:***@example.com/a/***"),
    (mask_url, "https://k3y@o1.ingest.sentry.io/42", "https://***@o1.ingest.sentry.io/42"),
    (mask_url, "https://example.com", "https://example.com"),
    (mask_url, "not a url", "***"),
    (mask_dsn, "postgres://ops:secret@db/pos", "postgres://ops:***@db/pos"),
    (mask_dsn, "postgresql://ops@db:5432/pos", "postgresql://ops@db:5432/pos"),
    (
        mask_dsn,
        "postgresql://ops@db/pos?password=secret&sslmode=require",
        "postgresql://ops@db/pos?password=***&sslmode=require",
    ),
    (mask_dsn, "host=db user=ops password=secret dbname=pos", "host=db user=ops password=*** dbname=pos"),
    (mask_dsn, "host=db password='se cret' dbname=pos", "host=db password=*** dbname=pos"),
    # only the password and secret query values: the rest stays readable
    (mask_url_credentials, "https://a:b@x.io/p?api_key=1&page=2", "https://a:***@x.io/p?api_key=***&page=2"),
]


@pytest.mark.parametrize(("mask", "text", "masked"), MASKED_URLS)
def test_url_and_dsn_masking(mask: Callable[[str], str], text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("host=db user=ops password=secret dbname=pos", "secret"),
        ("host=db password='se cret' dbname=pos", "se cret"),
        ("host=db user=ops dbname=pos", None),
    ],
)
def test_dsn_keyword_password(dsn: str, password: str | None) -> None:
    assert dsn_keyword_password(dsn) == password
