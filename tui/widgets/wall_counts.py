"""The wall's headline: a few counts in large digits (``✖ CRITICAL 1  ▲ WARNING 1``), readable
from across a room. Shown only on the wall (``Screen.-wall``, styles/wall.tcss)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Static

from tui.render import plain

Count = tuple[str, int, str]
"""(label with its icon, count, tile class: -ok, -warning, -critical, -info, -stale)"""
TILE_CLASSES = ("-ok", "-warning", "-critical", "-info", "-stale")


class WallCounts(Horizontal):
    def __init__(self, slots: int, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wall-counts")
        self._tiles = [Vertical(classes="tile wall-count") for _ in range(slots)]
        self._labels = [Static(classes="tile-title") for _ in range(slots)]
        self._inline = [Static(classes="wall-inline") for _ in range(slots)]
        self._digits = [Digits("", classes="wall-digits") for _ in range(slots)]
        self._shown: tuple[Count, ...] | None = None

    def compose(self) -> ComposeResult:
        for tile, label, inline, digits in zip(
            self._tiles, self._labels, self._inline, self._digits, strict=True
        ):
            with tile:
                with Horizontal(classes="wall-count-head"):
                    yield label
                    yield inline  # the count beside its label where there is no room for digits
                yield digits

    @property
    def shown(self) -> tuple[Count, ...]:
        return self._shown or ()

    def show(self, counts: Sequence[Count]) -> None:
        """One tile per count (extra tiles hidden); redraws only what changed."""
        shown = tuple(counts[: len(self._tiles)])
        if shown == self._shown:
            return
        self._shown = shown
        for index, tile in enumerate(self._tiles):
            tile.display = index < len(shown)
            if index >= len(shown):
                continue
            label, count, kind = shown[index]
            self._labels[index].update(plain(label))
            number = str(count) if count >= 0 else "?"
            self._digits[index].update(number)
            self._inline[index].update(plain(f" {number}"))
            for name in TILE_CLASSES:
                tile.set_class(name == kind, name)
