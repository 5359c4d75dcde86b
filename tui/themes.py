"""opswatch's themes: dark, light, high-contrast (walls) and a 16-colour fallback.

``NO_COLOR`` is honoured by Textual itself (a monochrome filter); severity never relies on
colour anyway (icons and words everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from textual.theme import BUILTIN_THEMES, Theme

DARK = Theme(
    name="opswatch-dark",
    primary="#3b8eea",
    secondary="#2b5d8c",
    accent="#4fc1ff",
    warning="#f2b33d",
    error="#f14c4c",
    success="#3fb950",
    foreground="#d8dee9",
    background="#11151c",
    surface="#1a2029",
    panel="#232b36",
    dark=True,
)

LIGHT = Theme(
    name="opswatch-light",
    primary="#0a5bb5",
    secondary="#5a7fa8",
    accent="#005f87",
    warning="#9a6700",
    error="#c4141a",
    success="#1a7f37",
    foreground="#1f2328",
    background="#f6f8fa",
    surface="#ffffff",
    panel="#e6eaef",
    dark=False,
)

HIGH_CONTRAST = Theme(
    name="opswatch-high-contrast",
    primary="#00d7ff",
    secondary="#00afff",
    accent="#ffff00",
    warning="#ffd700",
    error="#ff2020",
    success="#00ff5f",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1c1c1c",
    dark=True,
    luminosity_spread=0.3,
    text_alpha=1.0,
)

ANSI = replace(
    BUILTIN_THEMES["ansi-dark"],
    name="opswatch-ansi",
    accent="ansi_bright_cyan",
    variables={**BUILTIN_THEMES["ansi-dark"].variables, "footer-key-foreground": "ansi_bright_cyan"},
)
"""16-colour fallback: Textual's ANSI theme, so the terminal's own palette is used."""

THEMES: dict[str, Theme] = {t.name: t for t in (DARK, LIGHT, HIGH_CONTRAST, ANSI)}
CONFIG_NAMES = {
    "dark": DARK.name,
    "light": LIGHT.name,
    "high-contrast": HIGH_CONTRAST.name,
    "ansi": ANSI.name,
}


def limited_colour_terminal(environ: Mapping[str, str]) -> bool:
    """True for terminals that only promise 16 colours (TERM=linux, vt100, plain xterm ...)."""
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return False
    term = environ.get("TERM", "").lower()
    if not term or "256" in term or "direct" in term or "kitty" in term:
        return False
    return term in ("linux", "vt100", "vt220", "xterm", "xterm-color", "screen", "ansi", "cons25", "rxvt")


def resolve_theme(requested: str | None, environ: Mapping[str, str]) -> str:
    """Theme name for a config/CLI value (dark, light, high-contrast, ansi or a theme name)."""
    if requested in THEMES:
        return str(requested)
    name = CONFIG_NAMES.get(requested or "dark", DARK.name)
    if name != HIGH_CONTRAST.name and limited_colour_terminal(environ):
        return ANSI.name
    return name
