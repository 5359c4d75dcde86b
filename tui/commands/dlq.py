"""Moved: the triage CLI is ``tui.commands.triage`` (both kinds), its plumbing ``tui.commands.triage_io``.

Kept so imports of the shared helpers keep working; registers no command.
"""

from tui.commands.triage_io import print_json, run, with_service

__all__ = ["print_json", "run", "with_service"]
