"""The database-outage banner: shown while the monitored PostgreSQL is unreachable."""

from __future__ import annotations

from textual.widgets import Static

from core.snapshot import DbHealthView
from tui.render import fmt_hhmm, plain, safe


def banner_text(db: DbHealthView | None) -> str | None:
    if db is None or db.up:
        return None
    return f"✖ database unreachable since {fmt_hhmm(db.down_since or db.checked_at)}, retrying"


class DbBanner(Static):
    DEFAULT_CSS = """
    DbBanner { height: auto; width: 1fr; display: none; }
    DbBanner.-visible { display: block; }
    """

    def __init__(self) -> None:
        super().__init__(id="db-banner")
        self._shown: tuple[str | None, str | None] = (None, None)

    def show(self, db: DbHealthView | None) -> None:
        message = banner_text(db)
        error = db.error if db is not None and message else None
        if (message, error) == self._shown:
            return
        self._shown = (message, error)
        self.set_class(message is not None, "-visible")
        if message is None:
            return
        text = plain(message)
        if error:
            text.append(" — ")
            text.append_text(safe(error, 160))
        self.update(text)
