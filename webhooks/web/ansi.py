"""ANSI colours (SGR escapes) in a log line as HTML: escaped text in `<span class="...">`.

Only Select Graphic Rendition is kept (bold, faint, italic, underline, the 8 + 8 colours,
256-colour and RGB colours as inline `color:` styles); every other escape (cursor moves,
erasing, OSC titles and links) is dropped. The text between escapes is HTML-escaped, so a
log can never put markup on a page. A line's state carries to the next line, as in a
terminal: `Colours` is fed the lines in order.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from html import escape

# CSI ... final byte; OSC ... BEL or ST; any other two-byte escape.
_ESCAPE = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# Other control characters (a carriage return's progress bars, backspace): not shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


@dataclass(frozen=True, slots=True)
class _Style:
    bold: bool = False
    faint: bool = False
    italic: bool = False
    underline: bool = False
    fg: str = ""  # a class suffix ("red", "bright-red") or "#rrggbb"
    bg: str = ""

    def open(self) -> str:
        classes = [name for name, on in (("b", self.bold), ("f", self.faint),
                                         ("i", self.italic), ("u", self.underline)) if on]
        styles = []
        for prefix, prop, colour in (("fg", "color", self.fg), ("bg", "background", self.bg)):
            if colour.startswith("#"):
                styles.append(f"{prop}:{colour}")
            elif colour:
                classes.append(f"{prefix}-{colour}")
        if not classes and not styles:
            return ""
        attributes = f' class="{" ".join(classes)}"' if classes else ""
        if styles:
            attributes += f' style="{";".join(styles)}"'
        return f"<span{attributes}>"


_PLAIN = _Style()


def _palette(index: int) -> str:
    """A 256-colour index as a class name (0-15) or an RGB value."""
    if index < 8:
        return _NAMES[index]
    if index < 16:
        return f"bright-{_NAMES[index - 8]}"
    if index < 232:
        cube = index - 16
        steps = [0 if value == 0 else 55 + 40 * value
                 for value in (cube // 36, cube // 6 % 6, cube % 6)]
        return "#" + "".join(f"{value:02x}" for value in steps)
    grey = 8 + 10 * (index - 232)
    return f"#{grey:02x}{grey:02x}{grey:02x}"


def _extended(codes: list[int], at: int) -> tuple[str, int]:
    """`38;5;N` or `38;2;R;G;B` from `codes[at]` (the 38 or 48): the colour and codes used."""
    if at + 2 < len(codes) and codes[at + 1] == 5:
        return _palette(max(0, min(255, codes[at + 2]))), 3
    if at + 4 < len(codes) and codes[at + 1] == 2:
        red, green, blue = (max(0, min(255, value)) for value in codes[at + 2:at + 5])
        return f"#{red:02x}{green:02x}{blue:02x}", 5
    return "", len(codes) - at  # malformed: ignore the rest


# Codes that set or clear attributes, as `dataclasses.replace` arguments.
_SIMPLE: dict[int, dict[str, bool | str]] = {
    1: {"bold": True}, 2: {"faint": True}, 3: {"italic": True}, 4: {"underline": True},
    22: {"bold": False, "faint": False}, 23: {"italic": False}, 24: {"underline": False},
    39: {"fg": ""}, 49: {"bg": ""},
    **{30 + n: {"fg": name} for n, name in enumerate(_NAMES)},
    **{90 + n: {"fg": f"bright-{name}"} for n, name in enumerate(_NAMES)},
    **{40 + n: {"bg": name} for n, name in enumerate(_NAMES)},
    **{100 + n: {"bg": f"bright-{name}"} for n, name in enumerate(_NAMES)},
}


@functools.lru_cache(maxsize=4096)  # logs repeat the same few colour changes
def _apply(style: _Style, parameters: str) -> _Style:
    codes = [int(part) if part.isdigit() else 0 for part in parameters.split(";")] if (
        parameters) else [0]
    index = 0
    while index < len(codes):
        code = codes[index]
        used = 1
        if code == 0:
            style = _PLAIN
        elif code in _SIMPLE:
            style = replace(style, **_SIMPLE[code])  # type: ignore[arg-type]
        elif code == 38:
            colour, used = _extended(codes, index)
            style = replace(style, fg=colour)
        elif code == 48:
            colour, used = _extended(codes, index)
            style = replace(style, bg=colour)
        index += used
    return style


class Colours:
    """Feed lines in order; each comes back as HTML with its colours."""

    def __init__(self) -> None:
        self._style = _PLAIN

    def line(self, text: str) -> str:
        """One line (without its newline) as HTML; a carriage return's overwritten text is
        dropped, as a terminal would show only what was printed last."""
        if "\r" in text:
            text = text.rstrip("\r").rsplit("\r", 1)[-1]
        if "\x1b" not in text:  # most lines: no escape at all
            if self._style == _PLAIN or not text:
                return _text(text)
            return f"{self._style.open()}{_text(text)}</span>"
        parts: list[str] = []
        opened = False  # a span is opened only before text, so none is ever empty

        def write(piece: str) -> None:
            nonlocal opened
            if not piece:
                return
            if not opened and self._style != _PLAIN:
                parts.append(self._style.open())
                opened = True
            parts.append(piece)

        position = 0
        for match in _ESCAPE.finditer(text):
            write(_text(text[position:match.start()]))
            position = match.end()
            if match.group(2) == "m":
                style = _apply(self._style, match.group(1))
                if style != self._style:
                    if opened:
                        parts.append("</span>")
                        opened = False
                    self._style = style
        write(_text(text[position:]))
        if opened:
            parts.append("</span>")
        return "".join(parts)


    def advance(self, text: str) -> None:
        """Take in a line that is not shown: only its colours count (for the next lines)."""
        if "\x1b" in text:
            for match in _ESCAPE.finditer(text):
                if match.group(2) == "m":
                    self._style = _apply(self._style, match.group(1))


def _text(text: str) -> str:
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return escape(text)


def plain(text: str) -> str:
    """The line without escapes or control characters (for search and the failing line)."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))
