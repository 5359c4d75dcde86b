"""5 Alerts: firing/pending alerts, history, silences and the notification outbox.

``a`` acknowledges (after a confirmation) and ``S`` silences the alert under the cursor, ``x``
resends the notification under the outbox cursor (a dead-lettered one, or one stranded by a
changed webhook URL, which goes to its route's current destination), ``T`` sends a test alert.
``j``/``k`` move on every list, as on the triage screens. History and Outbox are newest first
and follow their head (see ``LiveTable``). On the wall only the active alerts are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Static

from core.api import AlertActionResult, AlertActions, OutboxEntry
from core.snapshot import AlertView, Severity, Snapshot
from tui.keymap import bind
from tui.render import (
    age_between,
    alerts_unknown,
    fmt_age,
    fmt_when,
    local,
    plain,
    safe,
    severity_text,
    status_text,
)
from tui.screens.base import OpsScreen
from tui.widgets.column_fit import Col
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.live_table import LiveTable
from tui.widgets.paged_table import Cells, cursor_key
from tui.widgets.silence_modal import SilenceModal
from tui.widgets.wall_counts import WallCounts

LIST_LIMIT = 50
NARROW_BELOW = 140
"""Narrower than this, History and Outbox stack instead of sitting side by side."""

COLUMNS: dict[str, tuple[tuple[Col, ...], int]] = {
    # (columns, index of the flexible one: free text that gives way first)
    "alerts-active": (
        (
            Col("Alert"),
            Col("Rule", 12),
            Col("Scope", 10),
            Col("Value"),
            Col("Age"),
            Col("Ack", 10),
            Col("Summary", 12),
        ),
        6,
    ),
    "alerts-history": (
        (Col("When"), Col("Rule", 12), Col("Scope", 10), Col("Change"), Col("Severity")),
        2,
    ),
    "alerts-outbox": (
        (
            Col("Id"),
            Col("Created"),
            Col("Status"),
            Col("Route", 14),
            Col("Kind"),
            Col("Tries"),
            Col("Last error", 12),
        ),
        6,
    ),
    "alerts-silences": (
        (Col("Id"), Col("Rule", 12), Col("Scope", 10), Col("Until"), Col("By", 10), Col("Reason", 12)),
        5,
    ),
}
WALL_ACTIVE = (0, 1, 2, 4, 6)
"""The wall's active-alerts columns: severity, rule, scope, age, summary."""


def alert_key(alert: AlertView) -> str:
    return f"{alert.rule}\x00{alert.scope}"


def _value(alert: AlertView) -> str:
    if alert.value is None:
        return "—"
    threshold = "" if alert.threshold is None else f" / {alert.threshold:.4g}"
    return f"{alert.value:.4g}{threshold}"  # 13.81 / 10, not 13.8068 / 10


def _when(at: datetime | None, now: datetime) -> str:
    """Short time for lists: the time today, the date too otherwise (the year only if not this one)."""
    if at is None:
        return "—"
    when, today = local(at), local(now)
    if when.date() == today.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%m-%d %H:%M" if when.year == today.year else "%Y-%m-%d %H:%M")


def _counts(alerts: list[AlertView]) -> tuple[int, int, int]:
    """(critical firing, warning firing, pending)."""
    firing = [a for a in alerts if a.state != "pending"]
    return (
        sum(a.severity is Severity.CRITICAL for a in firing),
        sum(a.severity is Severity.WARNING for a in firing),
        len(alerts) - len(firing),
    )


def _tile(count: int, alarm: str) -> str:
    return alarm if count else "-ok"


def _severity_cell(severity: str | None, screen: OpsScreen) -> Text:
    if severity in {s.value for s in Severity}:
        return severity_text(Severity(str(severity)), screen.palette)
    return safe(severity or "—", 12)


class AlertsScreen(OpsScreen):
    SCREEN_TITLE = "Alerts"
    BINDINGS = [
        bind("alerts.acknowledge", "a", "acknowledge", "Acknowledge"),
        bind("alerts.silence", "S", "silence", "Silence", key_display="S"),
        bind("alerts.resend", "x", "resend", "Resend"),
        bind("alerts.send_test", "T", "send_test", "Test alert", key_display="T"),
        bind("alerts.focus", "f", "focus_next_table", "Next table", show=False),
        bind("alerts.reload", "ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._lists_key: object = None
        self._outbox_title: Text | None = None
        self._outbox: dict[int, OutboxEntry] = {}
        self._head: Text | None = None

    @property
    def alerts(self) -> AlertActions:
        return self.ops.services.alerts

    def compose_body(self) -> ComposeResult:
        yield Static(plain("Active alerts"), classes="section-title", id="active-title")
        if self.ops.wall:
            yield WallCounts(3, id="alerts-wall-counts")
        yield LiveTable(id="alerts-active")
        with Horizontal(id="alerts-lower"):
            with Vertical(classes="alerts-column"):
                yield Static(plain("History"), classes="section-title", id="history-title")
                yield LiveTable(id="alerts-history", follow_head=True)
            with Vertical(classes="alerts-column"):
                yield Static(
                    plain("Outbox: recent notifications"), classes="section-title", id="outbox-title"
                )
                yield LiveTable(id="alerts-outbox", follow_head=True)
                yield Static(plain("Silences"), classes="section-title", id="silences-title")
                yield LiveTable(id="alerts-silences")

    def on_mount(self) -> None:
        super().on_mount()
        for table_id, (cols, flex) in COLUMNS.items():
            table = self.query_one(f"#{table_id}", LiveTable)
            if table_id == "alerts-active" and self.ops.wall:
                table.set_columns([cols[i] for i in WALL_ACTIVE], len(WALL_ACTIVE) - 1)
            else:
                table.set_columns(cols, flex)
        for which in ("history", "outbox"):
            table = self.query_one(f"#alerts-{which}", LiveTable)
            self.watch(table, "new_above", self._show_markers, init=False)
        self.query_one("#alerts-active", DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")

    def _sync(self, table_id: str, rows: Sequence[tuple[str, Cells]]) -> None:
        self.query_one(f"#{table_id}", LiveTable).sync(rows)

    def _show_markers(self) -> None:
        self._show_marker("history")
        self._show_marker("outbox")

    def _show_marker(self, which: str) -> None:
        table = self.query_one(f"#alerts-{which}", LiveTable)
        title = plain("History") if which == "history" else self._outbox_title or plain("Outbox")
        marker = table.marker()
        if marker:
            title = title.copy()
            title.append(f"  · {marker}", style=f"bold {self.palette.warning}")
        self.query_one(f"#{which}-title", Static).update(title)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        now = self.now()
        order = {"firing": 0, "flapping": 0, "pending": 1}
        alerts = sorted(
            (a for a in snapshot.alerts if a.state != "resolved"),
            key=lambda a: (order.get(a.state, 2), -a.severity.rank, a.since),
        )
        rows = [(alert_key(a), self._alert_cells(a, now)) for a in alerts]
        self._sync("alerts-active", rows)
        self._show_head(snapshot, alerts)
        if self.ops.wall:
            return  # the wall shows active alerts only: no history, outbox or silences to load
        outbox = snapshot.outbox
        title = plain("Outbox: recent notifications")
        if outbox is not None:
            title.append(
                f"  (pending {outbox.pending:,}, dead {outbox.dead:,}, "
                f"delivered 1 h {outbox.delivered_last_hour:,})"
            )
        if title != self._outbox_title:
            self._outbox_title = title
            self._show_marker("outbox")
        key = (
            tuple((a.rule, a.scope, a.state, a.acknowledged_by, a.silenced) for a in snapshot.alerts),
            outbox,
        )
        if key != self._lists_key:
            self._lists_key = key
            self.load_lists()

    def _show_head(self, snapshot: Snapshot, alerts: list[AlertView]) -> None:
        """Counts by state in the section title (and big on the wall); unknown is never green."""
        unknown = alerts_unknown(snapshot.db)
        critical, warning, pending = _counts(alerts)
        head = Text(end="")
        if unknown:
            head.append(f"? UNKNOWN: {unknown}", style=f"bold {self.palette.warning}")
        elif not alerts:
            head.append("✔ no active alerts", style=f"bold {self.palette.ok}")
        for count, word, colour in (
            (critical, "✖ {} critical", self.palette.error),
            (warning, "▲ {} warning", self.palette.warning),
            (pending, "… {} pending", self.palette.muted),
        ):
            if count and not unknown:
                head.append(word.format(count) + "   ", style=f"bold {colour}")
        if head != self._head:
            self._head = head
            title = plain("Active alerts  ")
            title.append_text(head)
            self.query_one("#active-title", Static).update(title)
        if self.ops.wall:
            self.query_one(WallCounts).show(
                [
                    ("? CRITICAL", -1, "-stale")
                    if unknown
                    else ("✖ CRITICAL", critical, _tile(critical, "-critical")),
                    ("? WARNING", -1, "-stale")
                    if unknown
                    else ("▲ WARNING", warning, _tile(warning, "-warning")),
                    ("? PENDING", -1, "-stale")
                    if unknown
                    else ("… PENDING", pending, _tile(pending, "-info")),
                ]
            )

    def _alert_cells(self, alert: AlertView, now: Any) -> list[Text]:
        """State and severity share the first cell: ``✖ CRITICAL``, ``… PENDING``, ``≈ WARNING``
        (flapping), so the table fits 80 columns with the summary still readable."""
        if alert.state == "pending":
            sev = plain("… PENDING")
        else:
            sev = severity_text(alert.severity, self.palette)
            if alert.state == "flapping":
                sev = Text("≈" + sev.plain[1:], style=sev.style, end="")
        ack = safe(alert.acknowledged_by, 30) if alert.acknowledged_by else plain("—")
        if alert.silenced:
            ack.append(" silenced")
        if alert.suppressed_by:
            ack.append(" held by ")
            ack.append_text(safe(alert.suppressed_by, 40))
        cells = [
            sev,
            safe(alert.rule, 40),
            safe(alert.scope or "—", 40),
            plain(_value(alert)),
            plain(fmt_age(age_between(alert.since, now))),
            ack,
            safe(alert.summary, 160),
        ]
        return [cells[i] for i in WALL_ACTIVE] if self.ops.wall else cells

    @work(exclusive=True, group="lists", exit_on_error=False, name="alert lists")
    async def load_lists(self) -> None:
        history = await self.alerts.history(LIST_LIMIT)
        outbox = await self.alerts.outbox(None, LIST_LIMIT)
        self._outbox = {o.id: o for o in outbox}
        silences = await self.alerts.silences(True)
        now = self.now()
        with self.app.batch_update():
            self._sync(
                "alerts-history",
                [
                    (
                        str(getattr(h, "id", i)),
                        [
                            plain(_when(h.at, now)),
                            safe(h.rule, 40),
                            safe(h.scope or "—", 40),
                            plain(f"{h.from_state} → {h.to_state}"),
                            _severity_cell(h.severity, self),
                        ],
                    )
                    for i, h in enumerate(history)
                ],
            )
            self._sync(
                "alerts-outbox",
                [
                    (
                        str(o.id),
                        [
                            plain(str(o.id)),
                            plain(_when(o.created_at, now)),
                            status_text("stranded" if self.alerts.stranded(o) else o.status, self.palette),
                            safe(o.route, 30),
                            safe(o.kind, 12),
                            plain(str(o.attempts)),
                            safe(o.last_error or "", 160),
                        ],
                    )
                    for o in outbox
                ],
            )
            self._sync(
                "alerts-silences",
                [
                    (
                        str(s.id),
                        [
                            plain(str(s.id)),
                            safe(s.rule or "any", 40),
                            safe(s.scope or "any", 40),
                            plain(_when(s.ends_at, now)),
                            safe(s.created_by, 30),
                            safe(s.reason, 120),
                        ],
                    )
                    for s in silences
                ],
            )
            self.set_class(not silences, "-no-silences")
            self.query_one("#silences-title", Static).update(
                plain(f"Silences ({len(silences)} active)" if silences else "Silences: none active")
            )

    def _current_alert(self) -> AlertView | None:
        key = cursor_key(self.query_one("#alerts-active", DataTable))
        return next((a for a in self.ops.snapshot.alerts if alert_key(a) == key), None)

    def action_focus_next_table(self) -> None:
        tables = list(self.query(DataTable))
        focused = self.focused
        index = tables.index(focused) if isinstance(focused, DataTable) and focused in tables else -1
        tables[(index + 1) % len(tables)].focus()

    def action_reload(self) -> None:
        self.load_lists()

    def action_acknowledge(self) -> None:
        alert = self._current_alert()
        if alert is None:
            self.ops.report("no alert under the cursor", severity="warning")
            return
        self._acknowledge(alert)

    @work(exclusive=True, group="action", exit_on_error=False, name="acknowledge")
    async def _acknowledge(self, alert: AlertView) -> None:
        target = safe(f"{alert.rule} {alert.scope}".strip(), 90).plain
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f"Acknowledge {target}?",
                [
                    plain("Repeat notifications stop until it resolves; a PagerDuty incident"),
                    plain("already opened for it is acknowledged too."),
                ],
                confirm_label="Acknowledge",
            )
        )
        if not sure:
            self.ops.report(f"acknowledge {target}: cancelled")
            return
        result = await self.alerts.acknowledge(alert.rule, alert.scope)
        self._tell(result)
        await self._after()

    def action_silence(self) -> None:
        alert = self._current_alert()
        self._silence(alert)

    @work(exclusive=True, group="action", exit_on_error=False, name="silence")
    async def _silence(self, alert: AlertView | None) -> None:
        target = "every alert" if alert is None else f"{alert.rule} {alert.scope}".strip()
        request = await self.app.push_screen_wait(SilenceModal(target))
        if request is None:
            return
        silence = await self.alerts.silence(
            alert.rule if alert else None,
            (alert.scope or None) if alert else None,
            request.duration_s,
            request.reason,
        )
        self.ops.report(f"silence #{silence.id}: {target} until {fmt_when(silence.ends_at)}")
        await self._after()

    def action_resend(self) -> None:
        key = cursor_key(self.query_one("#alerts-outbox", DataTable))
        if key is None:
            self.ops.report("no notification selected (f moves between tables)", severity="warning")
            return
        entry = self._outbox.get(int(key))
        if entry is not None and entry.status not in ("dead", "pending"):
            self.ops.report(f"notification #{entry.id} is {entry.status}; only dead ones are resent")
            return
        stranded = entry is not None and self.alerts.stranded(entry)
        if entry is not None and entry.status == "pending" and not stranded:
            self.ops.report(f"notification #{entry.id} is still being delivered", severity="warning")
            return
        self._resend(int(key), stranded)

    @work(exclusive=True, group="action", exit_on_error=False, name="resend")
    async def _resend(self, outbox_id: int, retarget: bool) -> None:
        where = (
            "It was queued for a destination this configuration does not have (a webhook URL changed); "
            "it goes to the route's current destination."
            if retarget
            else "It is queued for delivery again."
        )
        sure = await self.app.push_screen_wait(
            ConfirmModal(f"Resend notification #{outbox_id}?", [plain(where)], confirm_label="Resend")
        )
        if sure:
            self._tell(await self.alerts.resend(outbox_id, retarget=retarget))
            await self._after()

    def action_send_test(self) -> None:
        self._send_test()

    @work(exclusive=True, group="action", exit_on_error=False, name="test alert")
    async def _send_test(self) -> None:
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                "Send a test alert?",
                [plain("A 'warning' test notification goes to every route configured for warnings.")],
                confirm_label="Send",
            )
        )
        if sure:
            ids = await self.alerts.send_test("warning")
            if ids:
                self.ops.report(
                    f"test alert queued for {len(ids)} route(s): outbox #{', #'.join(map(str, ids))}"
                )
            else:
                self.ops.report("no notification route takes warnings: nothing queued", severity="warning")
            await self._after()

    def _tell(self, result: AlertActionResult) -> None:
        severity: SeverityLevel = "information" if result.outcome == "applied" else "warning"
        self.ops.report(f"{result.outcome}: {result.message}", severity=severity)

    async def _after(self) -> None:
        await self.ops.refresh_monitor()
        self.load_lists()
