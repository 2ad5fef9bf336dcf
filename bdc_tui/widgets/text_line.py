"""A fixed-height text widget that repaints without a layout pass.

``Static.update`` asks for a full layout refresh (its size might change), which makes the
screen re-measure every widget — expensive next to a big inspector. Status lines have a
fixed height, so they only need a repaint.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = "TextLine { height: 1; }"

    def __init__(self, content: RenderableType = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content: RenderableType = content

    def set(self, content: RenderableType) -> None:
        key = content.plain + repr(content.spans) if isinstance(content, Text) else str(content)
        if key != getattr(self, "_key", None):
            self._key = key
            self._content = content
            self.refresh()

    def render(self) -> RenderableType:
        return self._content

    @property
    def plain(self) -> str:
        c = self._content
        return c.plain if isinstance(c, Text) else str(c)
