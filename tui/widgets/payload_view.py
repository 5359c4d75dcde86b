"""Detail pane: full error, pretty-printed payload and the row's action history."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from core.api import AuditEntry
from tui.render import fmt_when, plain, safe, safe_block

ERROR_LINES = 30
PAYLOAD_LINES = 60


def history_text(history: Sequence[AuditEntry]) -> Text:
    if not history:
        return plain("no actions yet")
    text = Text(end="")
    for i, entry in enumerate(history):
        if i:
            text.append("\n")
        text.append(f"{fmt_when(entry.at)}  ")
        text.append_text(safe(entry.action, 40))
        text.append(" by ")
        text.append_text(safe(entry.actor, 60))
        text.append(f" → {entry.outcome}")
        if entry.reason:
            text.append(" — ")
            text.append_text(safe(entry.reason, 200))
    return text


class PayloadView(VerticalScroll):
    DEFAULT_CSS = """
    PayloadView > Static { height: auto; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="payload-view")
        self.can_focus = False

    def compose(self) -> ComposeResult:
        yield Static(plain("select a row to see its details"), classes="detail-header")
        yield Static(plain("Error"), classes="detail-section")
        yield Static(classes="detail-error")
        yield Static(plain("Payload"), classes="detail-section")
        yield Static(classes="detail-payload")
        yield Static(plain("History"), classes="detail-section")
        yield Static(classes="detail-history")

    def show(
        self,
        header: Text,
        error: str,
        payload: str,
        *,
        truncated: bool,
        history: Sequence[AuditEntry],
        stack: str | None = None,
    ) -> None:
        self.query_one(".detail-header", Static).update(header)
        error_text = safe_block(error, 8000, max_lines=ERROR_LINES)
        if stack:
            error_text.append("\n")
            error_text.append_text(safe_block(stack, 8000, max_lines=ERROR_LINES))
        self.query_one(".detail-error", Static).update(error_text)
        payload_text = safe_block(payload, 16000, max_lines=PAYLOAD_LINES)
        if truncated or payload_text.plain.endswith("…") or "more lines)" in payload_text.plain[-40:]:
            payload_text.append("\n")
            payload_text.append("(truncated — press v for the full view)", style="italic")
        self.query_one(".detail-payload", Static).update(payload_text)
        self.query_one(".detail-history", Static).update(history_text(history))
        self.scroll_home(animate=False)

    def clear_detail(self, message: str) -> None:
        self.query_one(".detail-header", Static).update(plain(message))
        for name in (".detail-error", ".detail-payload", ".detail-history"):
            self.query_one(name, Static).update(Text(""))
