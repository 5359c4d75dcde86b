"""Binding ids, read-only filtering, ``ui.keymap`` validation and the command-palette provider.

Every binding opswatch declares has an id (``dlq.retry``, ``goto.alerts`` ...), so
``ui.keymap: {dlq.retry: "ctrl+r"}`` rebinds it through :meth:`App.set_keymap`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from core.api import SPECS

MUTATING_ACTIONS: frozenset[str] = frozenset(
    {
        *(name for spec in SPECS.values() for t in spec.transitions for name in (t.name, f"bulk_{t.name}")),
        "acknowledge",
        "silence",
        "resend",
        "send_test",
    }
)
"""Action names that change state; hidden (check_action -> False) in read-only mode. The triage
ones come from the transition table (a key per row and one for every matching row)."""


def bind(
    binding_id: str,
    key: str,
    action: str,
    description: str,
    *,
    show: bool = True,
    key_display: str | None = None,
    priority: bool = False,
    group: Binding.Group | None = None,
) -> Binding:
    return Binding(
        key,
        action,
        description,
        show=show,
        key_display=key_display,
        priority=priority,
        id=binding_id,
        group=group,
    )


SCREEN_KEYS = Binding.Group("Screens", compact=True)
"""The footer shows the screen keys together: ``1234567 Screens``."""


def bindings_of(classes: Iterable[type[DOMNode]]) -> list[Binding]:
    """All bindings declared on ``classes`` and their bases."""
    out: list[Binding] = []
    for cls in classes:
        for base in cls.__mro__:
            declared: list[BindingType] = list(base.__dict__.get("BINDINGS", []))
            out.extend(Binding.make_bindings(declared))
    return out


def known_ids(classes: Iterable[type[DOMNode]]) -> set[str]:
    return {b.id for b in bindings_of(classes) if b.id}


def validate_keymap(keymap: Mapping[str, str], ids: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``keymap`` into the entries for known binding ids and one-line problems for the rest."""
    clean: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id in ids:
            if keys.strip():
                clean[binding_id] = keys.replace(" ", "")
            else:
                problems.append(f"ui.keymap.{binding_id}: empty key")
            continue
        near = difflib.get_close_matches(binding_id, sorted(ids), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append(f"ui.keymap: unknown binding id {binding_id!r}{hint}")
    return clean, problems


class ActionsProvider(Provider):
    """Every action reachable from the current screen (with its current key), in the palette.

    Built from the screen's active bindings, so read-only mode (check_action -> False)
    removes mutating actions here exactly as it does from the footer and help.
    """

    def _commands(self) -> list[tuple[str, str, partial[Any]]]:
        seen: set[str] = set()
        out: list[tuple[str, str, partial[Any]]] = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.id or binding.id in seen or not active.enabled or not binding.description:
                continue
            seen.add(binding.id)
            display = binding.key_display or self.app.get_key_display(binding.with_key(key))
            run = partial(self.app.run_action, binding.action, active.node)
            out.append((binding.description, f"{display}  ({binding.id})", run))
        return sorted(out, key=lambda item: item[0])

    async def discover(self) -> Hits:
        for name, help_text, run in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
