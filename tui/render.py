"""Safe, small text helpers for the console.

Every value that reaches a widget goes through here as a ``rich.text.Text`` (never a markup
string): DataTable and Static parse ``str`` as markup, so ``[bold]`` in an error message would
otherwise be interpreted. Untrusted values are sanitised by :mod:`core.safe_text` first.
Severity and state are always an icon plus a word; colour only reinforces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError

from core.api import display_text, first_line, format_duration_compact
from core.snapshot import DbHealthView, EndpointState, Severity

DISPLAY_TZ: tzinfo | None = None
"""Time zone for clock values; ``None`` is the local zone (tests pin it to UTC)."""

SEVERITY_ICON = {
    Severity.OK: "✔",
    Severity.INFO: "•",
    Severity.WARNING: "▲",
    Severity.CRITICAL: "✖",
}
STATE_ICON = {
    EndpointState.UP: "●",
    EndpointState.FAILING: "▲",
    EndpointState.DOWN: "✖",
    EndpointState.UNKNOWN: "?",
}
ROW_STATUS_ICON = {
    "pending": "●",
    "failed": "●",
    "retried": "↻",
    "retrying": "↻",
    "resolved": "✔",
    "abandoned": "✖",
    "delivered": "✔",
    "dead": "✖",
    "stranded": "▲",  # outbox: queued for a destination no longer configured
    "firing": "✖",
    "pending_alert": "…",
    "flapping": "≈",
    "resolved_alert": "✔",
}


@dataclass(frozen=True)
class Palette:
    """Colours taken from the active theme, so rich Text follows the theme (and NO_COLOR)."""

    ok: str = "green"
    warning: str = "yellow"
    error: str = "red"
    muted: str = "bright_black"
    accent: str = "cyan"

    @classmethod
    def from_variables(cls, variables: dict[str, str]) -> Palette:
        def pick(name: str, default: str) -> str:
            try:
                return str(Color.parse(variables[name]).rich_color.name)
            except (KeyError, ColorParseError):
                return default

        return cls(
            ok=pick("success", cls.ok),
            warning=pick("warning", cls.warning),
            error=pick("error", cls.error),
            muted=pick("foreground-darken-2", cls.muted),
            accent=pick("primary", cls.accent),
        )

    def for_severity(self, severity: Severity) -> Style:
        if severity is Severity.CRITICAL:
            return Style(color=self.error, bold=True)
        if severity is Severity.WARNING:
            return Style(color=self.warning, bold=True)
        if severity is Severity.OK:
            return Style(color=self.ok)
        return Style(color=self.accent)


DEFAULT_PALETTE = Palette()


def safe(value: object, max_len: int = 200) -> Text:
    """Untrusted value as one inert line of at most ``max_len`` characters."""
    if value is None:
        return Text("")
    return Text(display_text(value, max_len), no_wrap=True, end="")


def safe_first_line(value: object, max_len: int = 120) -> Text:
    if value is None:
        return Text("")
    return Text(first_line(value, max_len), no_wrap=True, end="")


def safe_block(value: object, max_len: int = 20_000, max_lines: int | None = None) -> Text:
    """Untrusted value as inert multi-line text (line breaks kept)."""
    if value is None:
        return Text("")
    return Text(display_text(value, max_len, multiline=True, max_lines=max_lines), end="")


def plain(text: str, style: Style | str = "") -> Text:
    """Our own text, never parsed as markup."""
    return Text(text, style=style, end="")


def severity_label(severity: Severity) -> str:
    return f"{SEVERITY_ICON[severity]} {severity.value.upper()}"


def severity_text(severity: Severity, palette: Palette = DEFAULT_PALETTE) -> Text:
    return Text(severity_label(severity), style=palette.for_severity(severity), end="")


def state_label(state: EndpointState) -> str:
    return f"{STATE_ICON[state]} {state.value.upper()}"


def state_severity(state: EndpointState) -> Severity:
    return {
        EndpointState.UP: Severity.OK,
        EndpointState.FAILING: Severity.WARNING,
        EndpointState.DOWN: Severity.CRITICAL,
    }.get(state, Severity.INFO)


def state_text(state: EndpointState, palette: Palette = DEFAULT_PALETTE) -> Text:
    return Text(state_label(state), style=palette.for_severity(state_severity(state)), end="")


def status_text(status: str, palette: Palette = DEFAULT_PALETTE) -> Text:
    """A row status (pending, retried, abandoned, ...) as icon + word."""
    clean = display_text(status, 20)
    icon = ROW_STATUS_ICON.get(clean, "·")
    style: Style | str = ""
    if clean in ("abandoned", "dead", "firing"):
        style = Style(color=palette.error)
    elif clean in ("pending", "failed", "retrying", "flapping", "stranded"):
        style = Style(color=palette.warning)
    elif clean in ("resolved", "delivered", "retried"):
        style = Style(color=palette.ok)
    return Text(f"{icon} {clean}", style=style, no_wrap=True, end="")


def fmt_age(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration_compact(seconds)


def age_between(since: datetime | None, now: datetime) -> float | None:
    if since is None:
        return None
    return (now - since).total_seconds()


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:.1f}s"
    if value < 10:
        return f"{value:.1f}ms"
    return f"{value:.0f}ms"


def fmt_ratio_pct(value: float | None, digits: int = 1) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}TB"  # pragma: no cover


def fmt_count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def local(dt: datetime) -> datetime:
    return dt.astimezone(DISPLAY_TZ)


def fmt_clock(dt: datetime | None) -> str:
    return "—" if dt is None else local(dt).strftime("%H:%M:%S")


def fmt_hhmm(dt: datetime | None) -> str:
    return "—" if dt is None else local(dt).strftime("%H:%M")


def fmt_when(dt: datetime | None) -> str:
    return "—" if dt is None else local(dt).strftime("%Y-%m-%d %H:%M:%S")


def alerts_unknown(db: DbHealthView | None) -> str | None:
    """Why the alert list may be incomplete (alert state lives in the database), or None."""
    if db is None:
        return "checking the database..."
    if db.up:
        return None
    return f"database down since {fmt_clock(db.down_since or db.checked_at)}"
