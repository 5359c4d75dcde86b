"""Progress of a bulk action; Esc asks the core to stop after the current batch."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static

from core.api import BulkProgress
from tui.keymap import bind
from tui.render import plain


class ProgressModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("bulk.cancel", "escape", "cancel_bulk", "Cancel")]

    def __init__(self, title: str, total: int) -> None:
        super().__init__(classes="modal progress-modal")
        self._title = title
        self.total = total
        self.cancel_event = asyncio.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(self._title), id="dialog-title")
            yield ProgressBar(total=max(self.total, 1), show_eta=False, id="bulk-progress")
            yield Static(plain(f"0 / {self.total:,}"), id="bulk-counts")
            yield Static(plain("Esc: cancel after the current batch"), classes="dialog-hint")

    def update_progress(self, progress: BulkProgress) -> None:
        if not self.is_mounted:
            return
        bar = self.query_one(ProgressBar)
        bar.update(total=max(progress.total, 1), progress=progress.done)
        self.query_one("#bulk-counts", Static).update(
            plain(
                f"{progress.done:,} / {progress.total:,} — {progress.applied:,} applied, "
                f"{progress.skipped:,} skipped, {progress.failed:,} failed"
            )
        )

    def action_cancel_bulk(self) -> None:
        self.cancel_event.set()
        self.query_one(".dialog-hint", Static).update(plain("cancelling after the current batch..."))
