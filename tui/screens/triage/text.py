"""Display-safe text of the triage screen: previews, toasts, filter and history lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.text import Text

from core.api import ActionResult, AuditEntry, BulkPreview, DlqDetail, display_text, past_tense, pretty_json
from tui.render import fmt_when, plain, safe
from tui.widgets.text_view import FULL_VIEW_LIMIT, full_view_text

SHOWN_ROWS = 5
LABEL_CHARS = 40


def preview_lines(preview: BulkPreview, noun: str) -> list[Text]:
    lines = [plain(f"{preview.count:,} {noun} match the filter")]
    if preview.oldest or preview.newest:
        lines.append(plain(f"created {fmt_when(preview.oldest)} … {fmt_when(preview.newest)}"))
    for title, items in preview.groups():
        if items:
            line = plain(f"top {title}: ")
            for i, item in enumerate(items[:3]):
                if i:
                    line.append(", ")
                line.append_text(safe(item.key, 50))
                line.append(f" ({item.count:,})")
            lines.append(line)
    return lines


def full_view_body(error: str, payload: str) -> str:
    return full_view_text(f"Error\n{error}\n\nPayload\n{pretty_json(payload, FULL_VIEW_LIMIT)}")


def business_filter_text(business_id: int | None, label: str | None) -> Text:
    if business_id is None:
        return Text("")
    text = plain(" business:")
    if label:
        text.append_text(safe(label, 30))
        text.append(f" (#{business_id})")
    else:
        text.append(str(business_id))
    return text


def last_action_text(history: Sequence[AuditEntry], status: str, resolved_at: datetime | None) -> Text | None:
    """`retried 13:40 by alice`: the newest action applied to the row (history is newest first);
    a row whose state changed outside opswatch gets its status and resolved time."""
    for entry in history:
        if entry.outcome == "applied":
            verb = entry.action.rsplit(".", 1)[-1]
            text = plain(f"{(past_tense(verb) or verb).lower()} {fmt_when(entry.at)} by ")
            text.append_text(safe(entry.actor, 60))
            return text
    if resolved_at is not None:
        return plain(f"{status} {fmt_when(resolved_at)} (not through opswatch: no audit entry)")
    return None


def same_message_text(row_id: int, message_id: int, detail: DlqDetail) -> Text:
    """`failed 3 times: #33, #37, #41` (rows of the same message, this one in bold)."""
    total = detail.same_message_total
    if total is None:
        return plain(
            f"other failures of message {message_id}: not looked up (too slow without an index on "
            "message_id; see opswatch db advise)",
            "italic",
        )
    if total <= 1:
        return plain("failed once (no other dead letter of this message)")
    text = plain(f"failed {total:,} times: ")
    for i, other in enumerate(detail.same_message):
        if i:
            text.append(", ")
        text.append(f"#{other}", "bold" if other == row_id else "")
    if total > len(detail.same_message):
        text.append(f" … +{total - len(detail.same_message):,}")
    return text


def positive_int_or_empty(value: str) -> str | None:
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        return "enter a positive whole number, or leave empty for any"
    return None


def id_list(ids: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:limit])
    return shown + (f" … +{len(ids) - limit}" if len(ids) > limit else "")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + " …"


def result_message(result: ActionResult, label: Callable[[int], str | None]) -> str:
    """Toast text: `Retried #20 (WhatsApp 131026 …)`, `Retried 2: #3, #20`, then skipped/failed rows."""
    verb = result.action.rsplit(".", 1)[-1]
    past = past_tense(verb) or f"{verb.capitalize()}d"
    lines: list[str] = []
    applied = list(result.applied)
    if len(applied) == 1:
        name = label(applied[0])
        lines.append(f"{past} #{applied[0]}" + (f" ({_short(name)})" if name else ""))
    elif applied:
        lines.append(f"{past} {len(applied):,}: {id_list(sorted(applied))}")
    lead = "" if applied else f"{verb.capitalize()} "  # "Retry skipped #1 (…)" when nothing applied
    if result.skipped:
        named = [
            f"#{s.id} ({display_text(s.reason, 60)}" + (f" by {display_text(s.by, 60)})" if s.by else ")")
            for s in result.skipped[:SHOWN_ROWS]
        ]
        lines.append(lead + _listed("skipped", named, len(result.skipped), ", "))
        lead = ""
    if result.failed:
        named = [f"#{f.id}: {display_text(f.error, 120)}" for f in result.failed[:SHOWN_ROWS]]
        lines.append(lead + _listed("failed", named, len(result.failed), "; "))
    if not lines:
        lines.append(f"{verb.capitalize()}: nothing changed")
    if result.cancelled:
        lines.append("cancelled: rows not reached are unchanged")
    if result.stopped:
        lines.append(f"stopped: {display_text(result.stopped, 200)}")
    return "\n".join(lines)


def _listed(what: str, named: list[str], total: int, sep: str) -> str:
    head = what if total == 1 else f"{what} {total:,}:"
    more = total - len(named)
    return f"{head} " + sep.join(named) + (f" … +{more:,}" if more > 0 else "")
