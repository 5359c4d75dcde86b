"""Unit tests for core.safe_text (pure, no I/O)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.safe_text import ELLIPSIS, NOT_JSON_MARKER, display_text, first_line, pretty_json

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {chr(c) for c in range(0x00, 0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
FORBIDDEN |= {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}


def assert_inert(text: str, *, multiline: bool = False) -> None:
    allowed = {"\n"} if multiline else set()
    bad = {ch for ch in text if (ch in FORBIDDEN and ch not in allowed) or 0xD800 <= ord(ch) <= 0xDFFF}
    assert not bad, f"unsafe characters {sorted(map(repr, bad))} in {text!r}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x1b[31mred\x1b[0m b", "ared b"),  # CSI (SGR)
        ("\x1b[2J\x1b[Hwiped", "wiped"),  # clear screen, cursor home
        ("x\x1b]0;evil title\x07y", "xy"),  # OSC, BEL terminated
        ("x\x1b]0;evil title\x1b\\y", "xy"),  # OSC, ST terminated
        ("x\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\y", "xclicky"),  # OSC 8 hyperlink
        ("x\x1bPq#0;2;0;0;0\x1b\\y", "xy"),  # DCS (sixel)
        ("x\x1b_apc\x1b\\y", "xy"),  # APC
        ("\x9b2Jclr", "clr"),  # 8-bit CSI
        ("x\x9d0;t\x9cy", "xy"),  # 8-bit OSC + ST
        ("\x1bc reset", " reset"),  # single ESC sequence (RIS)
        ("\x1b(Bx", "x"),  # charset designation
        ("\x1b]unterminated", "unterminated"),  # unterminated OSC: introducer gone, text kept
        ("a\x00b", "a\ufffdb"),  # NUL
        ("a\x07b\x08c", "a\ufffdb\ufffdc"),  # BEL, backspace
        ("a\x7fb\x85c\x90d", "a\ufffdb c\ufffdd"),  # DEL, NEL (a line break), C1
        ("a\ud800b", "a\ufffdb"),  # lone surrogate
        ("\u202eevil\u202c \u2066x\u2069", "evil x"),  # bidi overrides / isolates
        ("line1\nline2\r\nline3\rline4", "line1 line2 line3 line4"),
        ("col1\tcol2", "col1 col2"),
        (b"bytes \xff\xfe ok", "bytes \ufffd\ufffd ok"),
        (bytearray(b"abc"), "abc"),
        (42, "42"),
        (None, "None"),
        (ValueError("bad \x1b[1mthing"), "bad thing"),
    ],
)
def test_display_text_single_line(raw: object, expected: str) -> None:
    result = display_text(raw)
    assert result == expected
    assert_inert(result)


def test_display_text_multiline_keeps_and_normalises_newlines() -> None:
    raw = "Error: boom\r\n    at a (x.js:1)\r\tat b\rc\x1b[31m\u2028d"
    result = display_text(raw, multiline=True)
    assert result == "Error: boom\n    at a (x.js:1)\n    at b\nc\nd"
    assert_inert(result, multiline=True)


def test_display_text_truncation_is_visible() -> None:
    assert display_text("abcdefghij", 5) == "abcd" + ELLIPSIS
    assert display_text("abcde", 5) == "abcde"
    assert display_text("abcdef", 1) == ELLIPSIS
    assert len(display_text("x" * 10_000, 500)) == 500


def test_display_text_huge_input_is_cheap_and_marked() -> None:
    raw = ("\x1b[31m" + "y" * 100) * 100_000  # ~10 MB
    start = time.perf_counter()
    result = display_text(raw, 50)
    assert time.perf_counter() - start < 0.5
    assert len(result) == 50 and result.endswith(ELLIPSIS)
    # mostly-escape input that shrinks below max_len still shows it was cut
    sparse = "\x1b[0m" * 1_000_000 + "tail"
    assert display_text(sparse, 100).endswith(ELLIPSIS)


def test_display_text_max_lines() -> None:
    raw = "\n".join(f"line {i}" for i in range(10))
    result = display_text(raw, 1000, multiline=True, max_lines=3)
    assert result == "line 0\nline 1\nline 2\n… (7 more lines)"
    assert display_text("a\nb", multiline=True, max_lines=1) == "a\n… (1 more line)"
    # max_lines is ignored in single-line mode; max_len still holds with the marker
    assert "\n" not in display_text(raw, max_lines=2)
    tight = display_text(raw, 20, multiline=True, max_lines=2)
    assert len(tight) <= 20 and ELLIPSIS in tight


@pytest.mark.parametrize("kwargs", [{"max_len": 0}, {"max_len": -1}, {"multiline": True, "max_lines": 0}])
def test_display_text_rejects_bad_limits(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        display_text("x", **kwargs)  # type: ignore[arg-type]


def test_display_text_unprintable_object() -> None:
    class Nasty:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            return "<Nasty \x1b[2J>"

    assert display_text(Nasty()) == "<Nasty >"


def test_display_text_redact_option() -> None:
    raw = "connect postgres://ops:secret@db/pos"
    assert "secret" in display_text(raw)
    assert display_text(raw, redact_secrets=True) == "connect postgres://ops:***@db/pos"


def test_display_text_fuzz_never_emits_controls() -> None:
    rng = random.Random(1234)
    alphabet = [chr(c) for c in range(0, 0xA0)] + ["\u202e", "\u2066", "\ud800", "\udfff", "é", "✓", "[", "]"]
    for _ in range(300):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert_inert(display_text(raw))
        assert_inert(display_text(raw, multiline=True), multiline=True)


def test_markup_is_not_touched() -> None:
    # Escaping Rich markup is the TUI's job (it renders Text objects, not markup).
    assert display_text("[bold red]x[/]") == "[bold red]x[/]"


# --------------------------------------------------------------------------- first_line


def test_first_line() -> None:
    assert first_line("\n\n  Error: boom  \n    at x") == "Error: boom" + ELLIPSIS
    assert first_line("only line") == "only line"
    assert first_line("x" * 200, 10) == "x" * 9 + ELLIPSIS
    assert first_line("") == ""
    assert first_line(" \n\t\n") == ""
    assert first_line(b"\x1b[31mred\x1b[0m\r\nmore") == "red" + ELLIPSIS
    assert first_line("a" + "\n" * 10_000 + "b") == "a" + ELLIPSIS


# --------------------------------------------------------------------------- pretty_json


def test_pretty_json_dict_sorted_and_indented() -> None:
    assert pretty_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
        '{\n  "a": {\n    "c": null,\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}'
    )


def test_pretty_json_from_text_and_bytes() -> None:
    assert pretty_json('{"z": 1, "a": "ü"}') == '{\n  "a": "ü",\n  "z": 1\n}'
    assert pretty_json(b'[1, "x"]') == '[\n  1,\n  "x"\n]'


def test_pretty_json_neutralises_escapes_in_values() -> None:
    result = pretty_json({"msg": "\x1b[2J\u202eevil\x9b"})
    assert_inert(result, multiline=True)
    assert json.loads(result)["msg"].startswith("\x1b[2J")  # still valid JSON (escaped as \u001b)


def test_pretty_json_invalid_json() -> None:
    result = pretty_json("{not json \x1b[31m\nsecond line")
    assert result == f"{NOT_JSON_MARKER}\n{{not json \nsecond line"
    assert_inert(result, multiline=True)


def test_pretty_json_mixed_keys_and_objects() -> None:
    assert json.loads(pretty_json({1: "a", "b": 2})) == {"1": "a", "b": 2}
    assert "2026" in pretty_json({"when": __import__("datetime").date(2026, 1, 8)})


def test_pretty_json_limits() -> None:
    big = {f"k{i:03d}": i for i in range(500)}
    result = pretty_json(big, max_len=200)
    assert len(result) <= 200 and result.endswith(ELLIPSIS)
    limited = pretty_json(big, max_lines=5)
    assert limited.splitlines()[-1].startswith(ELLIPSIS)
    assert len(pretty_json("x" * 10_000, max_len=100)) <= 100


def test_pretty_json_redact_option() -> None:
    result = pretty_json(
        {"api_key": "K1", "url": "https://hooks.slack.com/services/T/B/x"}, redact_secrets=True
    )
    assert "K1" not in result and "T/B/x" not in result
    assert '"api_key": "***"' in result


def test_core_does_not_import_rich_or_textual() -> None:
    code = (
        "import sys, core.redact, core.safe_text, core.logging, core.telemetry\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_inert_json_cleans_every_string_and_keeps_the_shape() -> None:
    from core.safe_text import inert_json

    value = {
        "a\x1b[2Jkey": ["line 1\nline\u202e 2\x9b31m", 1, 2.5, None, True, ("x\x07",)],
        "n": {"deep": "\x1b]8;;http://x\x07link\x1b]8;;\x07 " + "z" * 50},
    }
    cleaned = inert_json(value, 20)
    assert cleaned == {
        "akey": ["line 1\nline 2", 1, 2.5, None, True, ["x\ufffd"]],
        "n": {"deep": "link " + "z" * 14 + ELLIPSIS},
    }
    assert_inert(json.dumps(cleaned, ensure_ascii=False).replace("\\n", ""))
    plain = "nothing to clean here"
    assert display_text(plain) is plain  # the fast path returns clean text as it is
