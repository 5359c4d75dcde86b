"""Moved to ``tui.screens.triage`` (one screen class for both kinds); kept for import compatibility."""

from tui.screens.triage import EventsScreen

__all__ = ["EventsScreen"]
