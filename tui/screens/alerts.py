"""5 Alerts: firing/pending alerts, history, silences and the notification outbox.

``k`` acknowledges and ``S`` silences the alert under the cursor, ``x`` resends the
notification under the outbox cursor (a dead-lettered one, or one stranded by a changed
webhook URL, which goes to its route's current destination), ``T`` sends a test alert.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Static

from core.alerting import AlertActions
from core.notify.outbox import OutboxEntry
from core.snapshot import AlertView, Severity, Snapshot
from tui.keymap import bind
from tui.render import age_between, fmt_age, fmt_when, plain, safe, severity_text, status_text
from tui.screens.base import OpsScreen
from tui.widgets.confirm_modal import ConfirmModal
from tui.widgets.fast_table import FastTable
from tui.widgets.paged_table import cursor_key, sync_table
from tui.widgets.silence_modal import SilenceModal

LIST_LIMIT = 50


def alert_key(alert: AlertView) -> str:
    return f"{alert.rule}\x00{alert.scope}"


def _value(alert: AlertView) -> str:
    if alert.value is None:
        return "—"
    threshold = "" if alert.threshold is None else f" / {alert.threshold:.4g}"
    return f"{alert.value:.4g}{threshold}"  # 13.81 / 10, not 13.8068 / 10


def _severity_cell(severity: str | None, screen: OpsScreen) -> Text:
    if severity in {s.value for s in Severity}:
        return severity_text(Severity(str(severity)), screen.palette)
    return safe(severity or "—", 12)


class AlertsScreen(OpsScreen):
    SCREEN_TITLE = "Alerts"
    BINDINGS = [
        bind("alerts.acknowledge", "k", "acknowledge", "Acknowledge"),
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

    @property
    def alerts(self) -> AlertActions:
        return self.ops.monitor.alerts

    def compose_body(self) -> ComposeResult:
        yield Static(plain("Active alerts"), classes="section-title", id="active-title")
        yield FastTable(id="alerts-active", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="alerts-lower"):
            with Vertical(classes="alerts-column"):
                yield Static(plain("History"), classes="section-title")
                yield FastTable(id="alerts-history", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="alerts-column"):
                yield Static(
                    plain("Outbox: recent notifications"), classes="section-title", id="outbox-title"
                )
                yield FastTable(id="alerts-outbox", cursor_type="row", zebra_stripes=True)
                yield Static(plain("Silences"), classes="section-title")
                yield FastTable(id="alerts-silences", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        columns = {
            "alerts-active": ("Severity", "State", "Rule", "Scope", "Value", "Age", "Ack", "Summary"),
            "alerts-history": ("When", "Rule", "Scope", "Change", "Severity"),
            "alerts-outbox": ("Id", "Created", "Status", "Route", "Kind", "Tries", "Last error"),
            "alerts-silences": ("Id", "Rule", "Scope", "Until", "By", "Reason"),
        }
        for table_id, labels in columns.items():
            self.query_one(f"#{table_id}", DataTable).add_columns(*labels)
        self.query_one("#alerts-active", DataTable).focus()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        now = self.now()
        order = {"firing": 0, "flapping": 0, "pending": 1}
        alerts = sorted(
            (a for a in snapshot.alerts if a.state != "resolved"),
            key=lambda a: (order.get(a.state, 2), -a.severity.rank, a.since),
        )
        rows = [(alert_key(a), self._alert_cells(a, now)) for a in alerts]
        sync_table(self.query_one("#alerts-active", DataTable), rows)
        outbox = snapshot.outbox
        title = plain("Outbox: recent notifications")
        if outbox is not None:
            title.append(
                f"  (pending {outbox.pending:,}, dead {outbox.dead:,}, "
                f"delivered 1 h {outbox.delivered_last_hour:,})"
            )
        if title != self._outbox_title:
            self._outbox_title = title
            self.query_one("#outbox-title", Static).update(title)
        key = (
            tuple((a.rule, a.scope, a.state, a.acknowledged_by, a.silenced) for a in snapshot.alerts),
            outbox,
        )
        if key != self._lists_key:
            self._lists_key = key
            self.load_lists()

    def _alert_cells(self, alert: AlertView, now: Any) -> list[Text]:
        sev = severity_text(alert.severity, self.palette) if alert.state != "pending" else plain("… PENDING")
        ack = safe(alert.acknowledged_by, 30) if alert.acknowledged_by else plain("—")
        if alert.silenced:
            ack.append(" silenced")
        if alert.suppressed_by:
            ack.append(" held by ")
            ack.append_text(safe(alert.suppressed_by, 40))
        return [
            sev,
            status_text(alert.state, self.palette),
            safe(alert.rule, 40),
            safe(alert.scope or "—", 40),
            plain(_value(alert)),
            plain(fmt_age(age_between(alert.since, now))),
            ack,
            safe(alert.summary, 160),
        ]

    @work(exclusive=True, group="lists", exit_on_error=False, name="alert lists")
    async def load_lists(self) -> None:
        history = await self.alerts.history(LIST_LIMIT)
        outbox = await self.alerts.outbox(None, LIST_LIMIT)
        self._outbox = {o.id: o for o in outbox}
        silences = await self.alerts.silences(True)
        with self.app.batch_update():
            sync_table(
                self.query_one("#alerts-history", DataTable),
                [
                    (
                        str(getattr(h, "id", i)),
                        [
                            plain(fmt_when(h.at)),
                            safe(h.rule, 40),
                            safe(h.scope or "—", 40),
                            plain(f"{h.from_state} → {h.to_state}"),
                            _severity_cell(h.severity, self),
                        ],
                    )
                    for i, h in enumerate(history)
                ],
            )
            sync_table(
                self.query_one("#alerts-outbox", DataTable),
                [
                    (
                        str(o.id),
                        [
                            plain(str(o.id)),
                            plain(fmt_when(o.created_at)),
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
            sync_table(
                self.query_one("#alerts-silences", DataTable),
                [
                    (
                        str(s.id),
                        [
                            plain(str(s.id)),
                            safe(s.rule or "any", 40),
                            safe(s.scope or "any", 40),
                            plain(fmt_when(s.ends_at)),
                            safe(s.created_by, 30),
                            safe(s.reason, 120),
                        ],
                    )
                    for s in silences
                ],
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

    def _tell(self, result: Any) -> None:
        severity: SeverityLevel = "information" if result.outcome == "applied" else "warning"
        self.ops.report(f"{result.outcome}: {result.message}", severity=severity)

    async def _after(self) -> None:
        await self.ops.refresh_monitor()
        self.load_lists()
