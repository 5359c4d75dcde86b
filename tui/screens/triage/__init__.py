"""The triage screen of each kind (3 Dead letters, 4 Event failures): one class, built per kind."""

from tui.screens.triage.screen import DeadLettersScreen, EventsScreen, TriageScreen, triage_screen

__all__ = ["DeadLettersScreen", "EventsScreen", "TriageScreen", "triage_screen"]
