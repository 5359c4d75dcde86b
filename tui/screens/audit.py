"""7 Audit & log: who did what (opswatch.audit_log) and opswatch's own recent log lines."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, Static

from core.api import AuditEntry, display_text
from core.snapshot import Snapshot
from tui.keymap import bind
from tui.render import fmt_clock, fmt_when, plain, safe
from tui.screens.base import OpsScreen
from tui.widgets.paged_table import PagedTable

AUDIT_PAGE = 50
AUDIT_POLL_S = 5.0


def _targets(entry: AuditEntry) -> str:
    if entry.target_key:
        return entry.target_key
    ids = entry.target_ids
    shown = ", ".join(str(i) for i in ids[:5])
    return shown + (f" … +{len(ids) - 5}" if len(ids) > 5 else "")


class AuditScreen(OpsScreen):
    SCREEN_TITLE = "Audit & log"
    BINDINGS = [bind("audit.reload", "ctrl+r", "reload", "Reload", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self._before: list[int | None] = [None]
        self._entries: list[AuditEntry] = []
        self._log_version = 0
        self._keep = True

    def compose_body(self) -> ComposeResult:
        with Vertical(id="audit-top"):
            yield Static(
                plain("Audit log (PgDn older, PgUp newer)"), classes="section-title", id="audit-title"
            )
            yield PagedTable(id="audit-table")
        with Vertical(id="log-bottom"):
            yield Static(plain("opswatch log"), classes="section-title")
            yield Log(id="own-log", max_lines=1000, auto_scroll=True)

    def on_mount(self) -> None:
        self.table.add_columns("When", "Actor", "Action", "Targets", "Outcome", "Reason")
        self.table.focus()
        self.set_interval(AUDIT_POLL_S, self._poll)

    def on_screen_resume(self) -> None:
        self.load_audit()

    def _poll(self) -> None:
        if self.is_current and self._before[-1] is None:
            self.load_audit()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self._append_log()

    def _append_log(self) -> None:
        buffer = getattr(self.ops.monitor, "logs", None)
        if buffer is None or buffer.version == self._log_version:
            return
        new = buffer.version - self._log_version
        self._log_version = buffer.version
        lines = buffer.snapshot()[-min(new, 1000) :]
        self.query_one(Log).write_lines(
            f"{fmt_clock(line.time)} {line.level:<8} {display_text(line.message, 400)}" for line in lines
        )

    @work(exclusive=True, group="audit", exit_on_error=False, name="audit")
    async def load_audit(self) -> None:
        entries = await self.ops.services.audit.read(limit=AUDIT_PAGE, before_id=self._before[-1])
        self._entries = list(entries)
        table = self.table
        table.has_prev = len(self._before) > 1
        table.has_next = len(self._entries) == AUDIT_PAGE
        table.sync(
            [
                (
                    str(e.id),
                    [
                        plain(fmt_when(e.at)),
                        safe(e.actor, 40),
                        safe(e.action, 30),
                        safe(_targets(e), 60),
                        safe(e.outcome, 12),
                        safe(e.reason or "", 120),
                    ],
                )
                for e in self._entries
            ],
            cursor=None if self._keep else 0,
        )
        self._keep = True
        page = len(self._before)
        self.query_one("#audit-title", Static).update(
            plain(f"Audit log — page {page} (PgDn older, PgUp newer)")
        )

    @property
    def table(self) -> PagedTable:
        return self.query_one("#audit-table", PagedTable)

    def on_paged_table_page_requested(self, message: PagedTable.PageRequested) -> None:
        if message.direction > 0 and len(self._entries) == AUDIT_PAGE:
            self._before.append(self._entries[-1].id)
        elif message.direction < 0 and len(self._before) > 1:
            self._before.pop()
        elif message.direction == 0:
            self._before = [None]
        else:
            return
        self._keep = False
        self.load_audit()

    def action_reload(self) -> None:
        self.load_audit()
