"""YAML text for a compiled run: the bytes PyYAML's libyaml dumper writes, without PyYAML.

`dump(data)` returns exactly what `pyyaml_dump(data)` returns, which is
`yaml.dump(data, Dumper=<CSafeDumper, str with a newline as a `|` literal>, sort_keys=False,
default_flow_style=False, allow_unicode=True, width=100)`: the text every golden file and
every `ferry render` has always shown. Writing a 20-job run that way cost four times the
whole lint + plan + compile: half of it in PyYAML's Python representer (a few Python calls
per node), most of the rest in the two resolver calls its serializer makes per scalar.

A compiled run is a JSON-like tree: dicts with string keys, lists, strings, ints, bools and
None. `dump` walks it once and makes the choices libyaml 0.2.5 (the one PyYAML's wheels
bundle) makes for those settings:

- Block mappings and sequences, indented by 2; a sequence that is a mapping's value is not
  indented (`key:` then `- item` in the same column); empty ones are `{}` and `[]`.
- A string is written plain unless libyaml's analysis of its characters forbids it (leading
  or trailing spaces, `: ` or ` #`, an indicator first, a character it will not print) or
  it would read back as something else (`yes`, `1.0`, `~`, `null`, `0x1F`, a date: PyYAML's
  resolver decides); then in single quotes, unless those cannot hold it either; then in
  double quotes, with libyaml's escapes. A string with a newline is a `|` literal (with
  libyaml's indentation and chomping indicators) unless libyaml refuses the block style for
  it, when it is double-quoted too.
- Plain and quoted values are folded at spaces once a line passes 100 columns, as libyaml
  folds them; keys never are.

`emit` refuses (`OutsideSubsetError`) anything else, which `dump` hands to `pyyaml_dump`, so no
output ever differs:
floats, tuples and other types, a container reached twice (PyYAML writes an anchor and an
alias), and a key that is not a simple key (multi-line, or over 128 bytes: `? key`).
`tests/unit/pipelines/test_emitting.py` compares the two on random trees.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol

import yaml

_STR_TAG = "tag:yaml.org,2002:str"
_WIDTH = 100  # libyaml folds at a space once the column is past this
_INDENT = 2
_MAX_SIMPLE_KEY_BYTES = 128

# libyaml's line breaks, and the characters it prints as they are (with allow_unicode):
# LF, ASCII 0x20-0x7E, U+00A0-U+D7FF and U+E000-U+FFFD without the BOM U+FEFF. Tabs,
# carriage returns, NEL (U+0085) and characters beyond U+FFFF are not printable to it.
_BREAKS = "\n\r\x85\u2028\u2029"
_NOT_PRINTABLE = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_LINE_BREAK = re.compile("[\n\r\x85\u2028\u2029]")
_SPACE_THEN_BREAK = re.compile(" [\n\r\x85\u2028\u2029]")
_BREAK_THEN_SPACE = re.compile("[\n\r\x85\u2028\u2029] ")
_BLANK = " \t\n\r\x85\u2028\u2029\x00"  # libyaml's blank-or-break-or-end
# What keeps a string from being a plain scalar in block context (libyaml's
# "block indicators"): `---` or `...` first, an indicator character first, `- `, `? ` or
# `: ` first, `: ` or a final `:` anywhere, ` #` anywhere.
_BLOCK_INDICATOR = re.compile(
    rf"\A(?:---|\.\.\.|[#,\[\]{{}}&*!|>'\"%@`]|[-?:](?=[{_BLANK}]|\Z))"
    rf"|:(?=[{_BLANK}]|\Z)|(?<=[{_BLANK}])#"
)
# What double quotes escape: anything not printable, line breaks, `"` and `\`.
_DOUBLE_ESCAPED = re.compile(
    '[^\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]|["\\\\\u2028\u2029]'
)
_SHORT_ESCAPES = {
    "\x00": "0", "\x07": "a", "\x08": "b", "\t": "t", "\n": "n", "\x0b": "v", "\x0c": "f",
    "\r": "r", "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\u2028": "L",
    "\u2029": "P",
}
_LITERAL_LINES = re.compile("([\n\u2028\u2029])")

# How a string is written.
_PLAIN, _SINGLE, _DOUBLE, _LITERAL = range(4)

class _Resolver(Protocol):
    """The part of PyYAML's `Resolver` we use; the stubs lack its types."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str: ...


class OutsideSubsetError(Exception):
    """The data is outside what `emit` writes; `pyyaml_dump` writes it instead."""


def dump(data: Any) -> str:
    """`pyyaml_dump(data)`, byte for byte, several times faster for a compiled run."""
    try:
        return emit(data)
    except OutsideSubsetError:
        return pyyaml_dump(data)


def emit(data: Any) -> str:
    """What `pyyaml_dump(data)` returns, for data in the subset; else `OutsideSubsetError`."""
    return _Emitter().document(data)


def _represent_str(dumper: yaml.representer.BaseRepresenter, text: Any) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar(_STR_TAG, text, style=style)


class _Dumper(yaml.CSafeDumper):
    """Block style, multi-line strings as `|` literals, keys in the order they were built."""

    yaml_representers: ClassVar[dict[Any, Any]] = {
        **yaml.SafeDumper.yaml_representers,
        str: _represent_str,
    }


def pyyaml_dump(data: Any) -> str:
    """The reference output: what `dump` reproduces, and writes anything `dump` does not."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=_WIDTH,
    )


class _Analysis:
    """libyaml's verdict on a string's characters (its `yaml_emitter_analyze_scalar`)."""

    __slots__ = ("block", "block_plain", "multiline", "single_quoted")

    def __init__(self, text: str) -> None:
        if not text:
            self.multiline, self.block_plain, self.single_quoted, self.block = (
                False, True, True, False)
            return
        special = _NOT_PRINTABLE.search(text) is not None
        self.multiline = _LINE_BREAK.search(text) is not None
        # A space before a break, or a character it will not print, rules out all but
        # double quotes; a space after a break, all but those and the block styles.
        refused = special or _SPACE_THEN_BREAK.search(text) is not None
        break_space = _BREAK_THEN_SPACE.search(text) is not None
        edges = text[0] == " " or text[-1] == " " or text[0] in _BREAKS or text[-1] in _BREAKS
        self.block_plain = not (edges or break_space or refused or self.multiline
                                or _BLOCK_INDICATOR.search(text))
        self.single_quoted = not (break_space or refused)
        self.block = not (refused or text[-1] == " ")


# A value string: its style, its text between the quotes (unfolded; plain: the text), and
# whether it has a space (where libyaml may fold it).
_Scalar = tuple[int, str, bool]
_NEVER_FOLDS = 1 << 62


class _Emitter:
    """Writes a document entry by entry; `_Writer` takes over for a scalar that may fold.

    An entry of a block collection at `indent` starts with `\\n`, `indent` spaces and its
    key and `:` (or its `-`), which libyaml's `write_indent` writes in every state but two: at
    the top of the document, on the line of a sequence's `-` (where a collection in the
    sequence starts after one space) and after a literal that ended with a line break (its
    indentation only). Those callers pass `lead`, what replaces the line break and the
    indentation. Methods return whether the output ends with a line break.
    """

    __slots__ = ("heads", "limits", "literals", "open_ended", "out", "resolver", "seen",
                 "values")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.open_ended = False  # the last block scalar kept its final line breaks (`|+`)
        self.seen: set[int] = set()  # containers written so far
        self.values: dict[str, _Scalar] = {}
        # The last column a plain value may start at without libyaml folding it; -1 when it
        # is not written plain.
        self.limits: dict[str, int] = {}
        # Per indentation: key -> (`\\n`, indentation, key as written and `:`; the column after
        # `key: `).
        self.heads: dict[int, dict[str, tuple[str, int]]] = {}
        self.literals: dict[tuple[str, int], tuple[str, bool]] = {}
        self.resolver: _Resolver = yaml.resolver.Resolver()

    def document(self, data: Any) -> str:
        kind = type(data)
        if kind is dict and data:
            at_break = self.mapping(data, 0, "")
        elif kind is list and data:
            at_break = self.sequence(data, 0, "")
        else:
            at_break = self.node(data, "", column=0, indent=-1, mapping_value=False)
        if not at_break:
            self.out.append("\n")
        if self.open_ended:
            self.out.append("...\n")
        return "".join(self.out)

    # One flat loop on purpose: it runs for every entry of the run.
    def mapping(  # noqa: PLR0912
        self, data: dict[Any, Any], indent: int, lead: str | None
    ) -> bool:
        seen = self.seen
        if id(data) in seen:
            raise OutsideSubsetError  # PyYAML would write an anchor and an alias
        seen.add(id(data))
        append = self.out.append
        limits = self.limits
        heads = self.heads.get(indent)
        if heads is None:
            heads = self.heads[indent] = {}
        inner = indent + _INDENT
        at_break = False
        for key, value in data.items():
            found = heads.get(key)
            if found is None:
                found = heads[key] = self.head(key, indent)
            head, column = found
            if lead is not None:
                head = lead + head[indent + 1:]
                lead = None
            elif at_break:
                head = head[1:]  # the literal before ended the line
            kind = type(value)
            if kind is str:
                limit = limits.get(value)
                if limit is None:
                    limit = self.limit(value)
                if column <= limit:
                    append(head + " " + value)
                    at_break = False
                else:
                    at_break = self.node(value, head, column=column - 1, indent=indent,
                                         mapping_value=True)
            elif kind is dict and value:
                append(head)
                at_break = self.mapping(value, inner, None)
            elif kind is list and value:
                append(head)  # a mapping's sequence is not indented
                at_break = self.sequence(value, indent, None)
            else:
                at_break = self.node(value, head, column=column - 1, indent=indent,
                                     mapping_value=True)
        return at_break

    def sequence(self, data: list[Any], indent: int, lead: str | None) -> bool:
        seen = self.seen
        if id(data) in seen:
            raise OutsideSubsetError  # PyYAML would write an anchor and an alias
        seen.add(id(data))
        append = self.out.append
        limits = self.limits
        dash = "\n" + " " * indent + "-"
        column = indent + 2
        inner = indent + _INDENT
        at_break = False
        for item in data:
            head = dash
            if lead is not None:
                head = lead + "-"
                lead = None
            elif at_break:
                head = dash[1:]  # the literal before ended the line
            kind = type(item)
            if kind is str:
                limit = limits.get(item)
                if limit is None:
                    limit = self.limit(item)
                if column <= limit:
                    append(head + " " + item)
                    at_break = False
                else:
                    at_break = self.node(item, head, column=indent + 1, indent=indent,
                                         mapping_value=False)
            elif kind is dict and item:
                append(head)
                at_break = self.mapping(item, inner, " ")
            elif kind is list and item:
                append(head)
                at_break = self.sequence(item, inner, " ")
            else:
                at_break = self.node(item, head, column=indent + 1, indent=indent,
                                     mapping_value=False)
        return at_break

    def node(self, data: Any, lead: str, *, column: int, indent: int,
             mapping_value: bool) -> bool:
        """`lead` (ending with `key:` or `-`, which leaves the output at `column`), then
        `data` as the value of a mapping at `indent` or an item of a sequence at `indent`
        (-1: the document itself)."""
        out = self.out
        kind = type(data)
        space = " " if lead else ""  # no space before a value that starts the document
        if kind is str:
            return self.string(data, lead + space, column + len(space), indent)
        if kind is bool:
            out.append(lead + space + ("true" if data else "false"))
        elif kind is int:
            out.append(lead + space + str(data))
        elif data is None:
            out.append(lead + space + "null")
        elif kind is dict:
            if data:
                out.append(lead)
                return self.mapping(data, indent + _INDENT, None if mapping_value else " ")
            self.empty(data, lead + space + "{}")
        elif kind is list:
            if data:
                out.append(lead)
                if mapping_value:  # a mapping's sequence is not indented
                    return self.sequence(data, indent, None)
                return self.sequence(data, indent + _INDENT, " ")
            self.empty(data, lead + space + "[]")
        else:
            raise OutsideSubsetError
        return False

    def empty(self, container: object, text: str) -> None:
        if id(container) in self.seen:
            raise OutsideSubsetError  # PyYAML would write an anchor and an alias
        self.seen.add(id(container))
        self.out.append(text)

    # -- scalars ----------------------------------------------------------------------------

    def head(self, key: Any, indent: int) -> tuple[str, int]:
        """A key as written: a simple key, never folded, holding no line break."""
        if type(key) is not str:
            raise OutsideSubsetError
        analysis = _Analysis(key)
        if analysis.multiline or len(key.encode("utf-8")) > _MAX_SIMPLE_KEY_BYTES:
            raise OutsideSubsetError  # not a simple key: libyaml writes `? key`
        if key and analysis.block_plain and self.plain_implicit(key):
            text = key
        else:
            style, body, _ = self.quoted(key, analysis)
            text = f"'{body}'" if style == _SINGLE else f'"{body}"'
        return "\n" + " " * indent + text + ":", indent + len(text) + 2

    def limit(self, text: str) -> int:
        scalar = self.values.get(text)
        if scalar is None:
            scalar = self.values[text] = self.value_scalar(text)
        style, _, has_space = scalar
        limit = -1 if style != _PLAIN else _WIDTH + 1 - len(text) if has_space else _NEVER_FOLDS
        self.limits[text] = limit
        return limit

    def value_scalar(self, text: str) -> _Scalar:
        analysis = _Analysis(text)
        if "\n" in text:  # the representer asks for a literal
            return (_LITERAL, text, False) if analysis.block else _double(text)
        if analysis.block_plain and self.plain_implicit(text):
            return (_PLAIN, text, " " in text)
        return self.quoted(text, analysis)

    def quoted(self, text: str, analysis: _Analysis) -> _Scalar:
        if analysis.single_quoted:
            return (_SINGLE, text.replace("'", "''"), " " in text)
        return _double(text)

    def plain_implicit(self, text: str) -> bool:
        """Plain `text` reads back as a string (not `yes`, `1.0`, `~`, a date...)."""
        return self.resolver.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG

    def string(self, text: str, lead: str, column: int, indent: int) -> bool:
        """`lead` then `text`, starting at `column`, in a collection at `indent`."""
        scalar = self.values.get(text)
        if scalar is None:
            scalar = self.values[text] = self.value_scalar(text)
        style, body, has_space = scalar
        scalar_indent = _INDENT if indent < 0 else indent + _INDENT
        if style == _LITERAL:
            literal, ends_with_break = self.literal(text, scalar_indent)
            self.out.append(lead + literal)
            return ends_with_break
        quote = "'" if style == _SINGLE else '"' if style == _DOUBLE else ""
        start = column + len(quote)
        if (has_space and start + len(body) > _WIDTH + 1) or (
                style == _SINGLE and _LINE_BREAK.search(text)):
            writer = _Writer(start, at_start=not lead)
            if style == _PLAIN:
                writer.folded_plain(text, scalar_indent)
            elif style == _SINGLE:
                writer.folded_single(text, scalar_indent)
            else:
                writer.folded_double(text, scalar_indent)
            body = "".join(writer.out)
        self.out.append(lead + quote + body + quote)
        return False

    def literal(self, text: str, indent: int) -> tuple[str, bool]:
        """A `|` block scalar from its indicator on, its lines at `indent`; and whether it
        ends with a line break."""
        cached = self.literals.get((text, indent))
        if cached is None:
            hints = ""
            if text[0] == " " or text[0] in _BREAKS:
                hints = str(_INDENT)
            if text[-1] not in _BREAKS:
                hints += "-"
            elif len(text) == 1 or text[-2] in _BREAKS:
                hints += "+"
            pad = " " * indent
            lines = "".join(
                piece if piece in _BREAKS else pad + piece
                for piece in _LITERAL_LINES.split(text) if piece
            )
            cached = self.literals[(text, indent)] = (f"|{hints}\n{lines}", text[-1] in _BREAKS)
        self.open_ended = cached[0].startswith(("|+", "|2+"))
        return cached


class _Writer:
    """libyaml's character-by-character writing of a plain or quoted scalar that may fold
    (or, single-quoted, holds line breaks), with its column and indentation state."""

    __slots__ = ("column", "indention", "out", "whitespace")

    def __init__(self, column: int, *, at_start: bool) -> None:
        self.out: list[str] = []
        self.column = column
        # After `key:`, `-` or an opening quote, the last character written was not
        # whitespace and the line holds more than indentation; at the start of a
        # document, both hold.
        self.whitespace = self.indention = at_start

    def write(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def line_break(self) -> None:
        self.out.append("\n")
        self.column = 0

    def write_break(self, character: str) -> None:
        self.out.append(character)  # `\n` is the line break; U+2028 and U+2029 are copied
        self.column = 0

    def write_indent(self, indent: int) -> None:
        if (not self.indention or self.column > indent
                or (self.column == indent and not self.whitespace)):
            self.line_break()
        if self.column < indent:
            self.write(" " * (indent - self.column))
        self.whitespace = self.indention = True

    def folded_plain(self, text: str, indent: int) -> None:
        spaces = False
        last = len(text) - 1
        for index, character in enumerate(text):
            if character == " ":
                if not spaces and self.column > _WIDTH and (index == last
                                                            or text[index + 1] != " "):
                    self.write_indent(indent)
                else:
                    self.write(" ")
                spaces = True
            else:
                self.write(character)
                self.indention = spaces = False

    def folded_single(self, text: str, indent: int) -> None:
        spaces = breaks = False
        last = len(text) - 1
        for index, character in enumerate(text):
            if character == " ":
                if (not spaces and self.column > _WIDTH and 0 < index < last
                        and text[index + 1] != " "):
                    self.write_indent(indent)
                else:
                    self.write(" ")
                spaces = True
            elif character in _BREAKS:
                if not breaks and character == "\n":
                    self.line_break()
                self.write_break(character)
                self.indention = breaks = True
            else:
                if breaks:
                    self.write_indent(indent)
                self.write("''" if character == "'" else character)
                self.indention = spaces = breaks = False
        if breaks:
            self.write_indent(indent)

    def folded_double(self, text: str, indent: int) -> None:
        spaces = False
        last = len(text) - 1
        for index, character in enumerate(text):
            if _DOUBLE_ESCAPED.match(character):
                self.write(_escape(character))
                spaces = False
            elif character == " ":
                if not spaces and self.column > _WIDTH and 0 < index < last:
                    self.write_indent(indent)
                    if text[index + 1] == " ":
                        self.write("\\")
                else:
                    self.write(" ")
                spaces = True
            else:
                self.write(character)
                spaces = False


def _double(text: str) -> _Scalar:
    body = _DOUBLE_ESCAPED.sub(lambda match: _escape(match.group()), text)
    return (_DOUBLE, body, " " in text)


def _escape(character: str) -> str:
    short = _SHORT_ESCAPES.get(character)
    if short is not None:
        return "\\" + short
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"
