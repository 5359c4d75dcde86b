"""The transition table is the single source of each kind's actions: the service's kind API,
the triage screen's keys and the CLI's subcommands all come from it (issue 16)."""

from __future__ import annotations

import argparse

import pytest
from textual.binding import Binding

from cli.main import build_parser
from core.config import Config
from core.db import Database
from core.triage import SPECS, TriageService
from core.triage.actions import TRANSITIONS
from tui.keymap import MUTATING_ACTIONS
from tui.screens.triage import DeadLettersScreen, EventsScreen


def test_specs_take_their_actions_from_the_table() -> None:
    assert [t.name for t in SPECS["dlq"].transitions] == ["retry", "abandon", "resolve", "reopen"]
    assert [t.name for t in SPECS["events"].transitions] == ["retry", "resolve"]
    assert {(s.kind, t.name) for s in SPECS.values() for t in s.transitions} == set(TRANSITIONS)
    assert [t.name for t in SPECS["dlq"].transitions if t.reason_required] == ["abandon"]
    with pytest.raises(ValueError, match=r"unknown event action 'abandon' \(one of: retry, resolve\)"):
        SPECS["events"].transition("abandon")


async def test_service_kind_is_the_one_entry_point(database: Database) -> None:
    svc = TriageService(database, Config(), actor="ops")
    dlq = svc.kind("dlq")
    assert dlq is svc.kind("dlq") and dlq.spec is SPECS["dlq"] and svc.kind("events").spec is SPECS["events"]
    with pytest.raises(ValueError, match="unknown triage kind 'alerts'"):
        svc.kind("alerts")
    with pytest.raises(ValueError, match="unknown dlq action 'explode'"):
        await dlq.act("explode", [1])
    with pytest.raises(ValueError, match="unknown raw field 'stack'"):
        await dlq.raw(1, "stack")  # type: ignore[arg-type]


@pytest.mark.parametrize(("screen", "name"), [(DeadLettersScreen, "dlq"), (EventsScreen, "events")])
def test_screen_keys_come_from_the_table(screen: type, name: str) -> None:
    bindings = {b.id: b for b in Binding.make_bindings(screen.BINDINGS)}
    for t in SPECS[name].transitions:
        row = bindings[f"{name}.{t.name}"]
        assert (row.key, row.action, row.description, row.show) == (t.key, t.name, t.label, t.shown)
        assert callable(getattr(screen, f"action_{t.name}"))
        assert t.name in MUTATING_ACTIONS
        if t.bulk_key is None:
            assert f"{name}.bulk_{t.name}" not in bindings
            continue
        every = bindings[f"{name}.bulk_{t.name}"]
        assert (every.key, every.action, every.show) == (t.bulk_key, f"bulk_{t.name}", t.bulk_shown)
        assert callable(getattr(screen, f"action_bulk_{t.name}")) and every.action in MUTATING_ACTIONS


@pytest.mark.parametrize("name", ["dlq", "events"])
def test_cli_subcommands_come_from_the_table(name: str) -> None:
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    kind = next(a for a in top.choices[name]._actions if isinstance(a, argparse._SubParsersAction))
    assert list(kind.choices) == ["list", "show", *(t.name for t in SPECS[name].transitions)]
    for t in SPECS[name].transitions:
        args = parser.parse_args([name, t.name, "1"])
        assert getattr(args, f"{name}_action") == t.name
        assert kind.choices[t.name].description.startswith(t.help)
