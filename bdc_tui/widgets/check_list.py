"""A SelectionList whose ticked boxes carry a glyph, not only a colour.

Textual draws every box with the same ``X`` and tells ticked from unticked by colour
alone, which reads the same on a monochrome terminal or to a colour-blind user. Here a
ticked box shows ``✓`` and an unticked one is empty.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList

TICKED = "✓"
UNTICKED = " "


class CheckList(SelectionList):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        # SelectionList draws [left, inner, right, " ", *prompt]; anything else (a future
        # Textual drawing it differently) is left as Textual drew it.
        if len(segments) < 2 or segments[1].text != Checkbox.BUTTON_INNER:
            return strip
        _, scroll_y = self.scroll_offset
        try:
            value = self.get_option_at_index(scroll_y + y).value
        except Exception:  # past the last option
            return strip
        glyph = TICKED if value in self.selected else UNTICKED
        segments[1] = Segment(glyph, segments[1].style, segments[1].control)
        return Strip(segments, strip.cell_length)

    def is_ticked_on_screen(self, index: int) -> bool:
        """What the box of option ``index`` shows (for tests): True when it reads ✓."""
        _, scroll_y = self.scroll_offset
        line = self.render_line(index - scroll_y)
        return TICKED in "".join(s.text for s in list(line)[:3])
