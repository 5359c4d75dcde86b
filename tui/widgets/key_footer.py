"""The footer as one line of text: ``1234567 Screens  ? Help  a Acknowledge ...  q Quit``.

Textual's Footer mounts a widget per key and rebuilds them on every screen switch; with the
screen keys shown that doubled the time to switch screens. One Static, rewritten only when the
line changes, costs next to nothing. Keys are not clickable (every one is a keyboard key).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.render import Palette


def footer_text(screen: Screen[object], palette: Palette, width: int = 0) -> Text:
    """Shown bindings in binding order; a group's keys together under its description. Items are
    two spaces apart, one when that is what fits ``width`` (Quit, the last, stays in view)."""
    items: list[tuple[str, str, Binding.Group | None, bool]] = []
    seen: set[str] = set()
    for _node, binding, enabled, _tooltip in screen.active_bindings.values():
        if not binding.show or binding.action in seen:
            continue
        seen.add(binding.action)
        key = binding.key_display or screen.app.get_key_display(binding)
        group = binding.group
        if group is not None and items and items[-1][2] is group:
            keys, description, _, was_enabled = items[-1]
            items[-1] = (keys + ("" if group.compact else " ") + key, description, group, was_enabled)
            continue
        items.append((key, group.description if group else binding.description, group, enabled))
    for gap in ("  ", " "):
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        for index, (keys, description, _, enabled) in enumerate(items):
            if index:
                line.append(gap)
            line.append(keys, style=f"bold {palette.accent}" if enabled else palette.muted)
            line.append(f" {description}", style="" if enabled else palette.muted)
        if not width or line.cell_len <= width:
            break
    return line


class KeyFooter(Footer):
    def __init__(self) -> None:
        super().__init__(show_command_palette=False, compact=True)
        self._line = Static(id="key-footer-line")
        self._text: Text | None = None

    def compose(self) -> ComposeResult:
        yield self._line

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._show)

    def on_mount(self) -> None:
        self.call_after_refresh(self._show)

    def on_resize(self) -> None:
        self.call_after_refresh(self._show)

    def _show(self) -> None:
        if not self.is_attached:
            return
        palette = getattr(self.app, "palette", None) or Palette()
        text = footer_text(self.screen, palette, self._line.content_region.width)
        if text != self._text:
            self._text = text
            self._line.update(text)
