"""YAML text -> a small tree of nodes that remember where they came from.

We read libyaml's event stream ourselves instead of calling `yaml.compose`, for three reasons:

- Hostile input is refused while reading, not after: nesting deeper than `MAX_NESTING_DEPTH`
  and documents over `MAX_YAML_NODES` stop the reader at the offending event, so a billion
  laughs or `[[[[...` costs microseconds (libyaml's scanner is quadratic in flow nesting, and
  PyYAML's composer is recursive; neither must see the whole file).
- Aliases are allowed, because teams share blocks with anchors and `<<` merge keys, but every
  use of an alias counts the full size of the node it repeats against `MAX_YAML_NODES`. Nodes
  are immutable and shared, so memory stays linear in the file.
- Duplicate mapping keys, which YAML accepts silently (the last one wins), are reported.

Scalars keep both their resolved value (YAML 1.1, as PyYAML resolves it) and their text as
written, so `python: 3.10` can still mean "3.10" to the matrix and `on:` stays a string key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Protocol

import yaml
from msgspec import Struct, field
from yaml.constructor import SafeConstructor

from pipelines.problems import Position, Problem, Severity, SpecError
from pipelines.records import ComparedWithout
from pipelines.spec import MAX_NESTING_DEPTH, MAX_SPEC_BYTES, MAX_YAML_NODES

ScalarValue = str | int | float | bool | None

_TAG_PREFIX = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (
    f"{_TAG_PREFIX}{name}" for name in ("str", "int", "float", "bool", "null")
)
_TIMESTAMP = f"{_TAG_PREFIX}timestamp"
_MERGE = f"{_TAG_PREFIX}merge"
_SEQ = f"{_TAG_PREFIX}seq"
_MAP = f"{_TAG_PREFIX}map"
# Timestamps stay text: a date in a spec is a label, not a datetime.
_TEXT_TAGS = frozenset({_STR, _TIMESTAMP})


class ScalarNode(NamedTuple):
    position: Position
    value: ScalarValue
    text: str  # as written (after YAML unquoting/folding)

    @property
    def size(self) -> int:
        return 1  # nodes, counting every use of an alias in full

    @property
    def height(self) -> int:
        return 0  # collections above the deepest scalar

    @property
    def kind(self) -> str:
        return _kind_of(self.value)


class SequenceNode(Struct, frozen=True):
    position: Position
    items: tuple[Node, ...]
    size: int = 1
    height: int = 1

    @property
    def kind(self) -> str:
        return "list"


class Entry(NamedTuple):
    """One `key: value` pair. Keys are always scalars, kept by their text."""

    key: ScalarNode
    value: Node
    # The key's text: what the linter reads most, so a field rather than a property.
    name: str


class MappingNode(ComparedWithout, frozen=True):
    __left_out__ = frozenset({"by_name"})

    position: Position
    entries: tuple[Entry, ...]
    size: int = 1
    height: int = 1
    # The entries by name (names are unique in a mapping), for `get`.
    by_name: Mapping[str, Entry] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "mapping"

    def get(self, name: str) -> Entry | None:
        return self.by_name.get(name)


Node = ScalarNode | SequenceNode | MappingNode


def _kind_of(value: ScalarValue) -> str:
    # Names a developer recognises in "expected a string, got a number".
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def decode_source(source: str | bytes, *, filename: str) -> str:
    """Size and encoding checks, before any YAML is read. Raises `SpecError`."""
    size = len(source) if isinstance(source, bytes) else _utf8_length(source, filename=filename)
    if size > MAX_SPEC_BYTES:
        raise _refuse(
            Position(filename, 1, 1),
            f"the file is {size} bytes, over the limit of {MAX_SPEC_BYTES} bytes",
            hint="a spec this large is almost certainly not hand-written",
        )
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _refuse(
            _offset_position(source, error.start, filename=filename),
            f"the file is not valid UTF-8: byte 0x{source[error.start]:02x} "
            f"at offset {error.start}",
            hint="save the file as UTF-8",
        ) from None


def _utf8_length(text: str, *, filename: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        # Only lone surrogates get here: text that came from broken bytes upstream.
        raise _refuse(
            _offset_position(text, error.start, filename=filename),
            "the text contains a character that cannot be encoded as UTF-8",
        ) from None


def _offset_position(data: str | bytes, offset: int, *, filename: str) -> Position:
    newline: str | bytes = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    line_start = data.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return Position(filename, line, offset - line_start + 1)


def _refuse(position: Position, message: str, *, hint: str | None = None) -> SpecError:
    return SpecError([Problem(severity=Severity.ERROR, message=message, position=position,
                              hint=hint)])


def parse_yaml(source: str | bytes, *, filename: str = ".ci.yaml") -> MappingNode:
    """Parse one YAML document whose root is a mapping. Raises `SpecError`, nothing else.

    Problems that leave a usable tree (duplicate keys) are collected and raised together at
    the end; problems that make reading pointless (syntax, limits) stop at once.
    """
    text = decode_source(source, filename=filename)
    return _Reader(text, filename=filename).read()


class _Mark(Protocol):
    """What we read of a libyaml or PyYAML mark (both are 0-based)."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


class _EventSource(Protocol):
    """The part of `CSafeLoader` / `SafeLoader` we use; both have it, the stubs lack types."""

    def check_event(self) -> bool: ...
    def get_event(self) -> yaml.Event: ...
    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str: ...
    def dispose(self) -> None: ...


# Positions, scalars and entries, most of the parser's objects, are named tuples made by
# `tuple.__new__(cls, (a, b, c))`: one call into C, where a frozen dataclass costs a Python
# call and a descriptor call per field (2.5 times as long).
_new_tuple = tuple.__new__


class _Frame:
    """A collection being read: its start event, and what has been read into it so far."""

    __slots__ = ("anchor", "entries", "height", "is_mapping", "items", "merge_pending",
                 "merges", "pending_key", "position", "seen", "size")

    def __init__(self, position: Position, is_mapping: bool, anchor: str | None) -> None:
        self.position = position
        self.is_mapping = is_mapping
        self.anchor = anchor
        self.items: list[Node] = []
        self.merges: list[tuple[ScalarNode, Node]] = []
        self.pending_key: ScalarNode | None = None
        self.merge_pending = False
        self.seen: dict[str, Entry] = {}  # the entries so far, by name
        self.entries: list[Entry] = []
        # Of the items or entries so far: their nodes, and the tallest value.
        self.size = 0
        self.height = 0


# Values YAML 1.1 gives plain text besides strings; each is a pure function of the text.
_CONSTRUCTED_TAGS = frozenset({_INT, _BOOL, _NULL})


class _Reader:
    def __init__(self, text: str, *, filename: str) -> None:
        self._text = text
        self._filename = filename
        # libyaml when it is installed (PyYAML wheels ship it); the pure reader otherwise.
        loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        self._loader: _EventSource = loader_class(text)
        self._constructor = SafeConstructor()
        self._anchors: dict[str, Node] = {}
        self._open_anchors: set[str] = set()
        self._stack: list[_Frame] = []
        self._nodes = 0
        self._problems: list[Problem] = []
        self._root: Node | None = None
        self._documents = 0
        # The same text resolves to the same tag and value: specs repeat keys and words.
        self._plain_tags: dict[str, str] = {}
        self._quoted_tags: dict[str, str] = {}
        self._values: dict[tuple[str, str], ScalarValue] = {}

    def read(self) -> MappingNode:
        try:
            self._read_events()
        except yaml.MarkedYAMLError as error:
            position = self._mark(error.problem_mark or error.context_mark)
            message = error.problem or error.context or "invalid YAML"
            if "nesting depth" in message:
                # libyaml 0.2.6+ (PyYAML 6.0.4 wheels) stops deep flow collections in its
                # scanner, before our own check sees the events: say the same thing.
                raise _refuse(position,
                              f"the spec nests deeper than {MAX_NESTING_DEPTH} levels") from None
            raise _refuse(position, f"YAML syntax error: {message}") from None
        except yaml.reader.ReaderError as error:
            position = _offset_position(self._text, error.position, filename=self._filename)
            raise _refuse(position, f"the file contains a character YAML does not allow "
                                    f"(code point {error.character!r})") from None
        except yaml.YAMLError as error:  # anything else libyaml reports, without a mark
            raise _refuse(Position(self._filename, 1, 1), f"YAML error: {error}") from None
        finally:
            self._loader.dispose()
        root = self._root
        if root is None or (isinstance(root, ScalarNode) and root.value is None):
            raise _refuse(Position(self._filename, 1, 1), "the spec is empty",
                          hint="start with `jobs:` or `steps:`; see docs/spec.md")
        if not isinstance(root, MappingNode):
            raise _refuse(root.position,
                          f"the top level of the spec must be a mapping, not a {root.kind}",
                          hint="start with `jobs:` or `steps:`")
        if self._problems:
            raise SpecError(self._problems)
        return root

    def _mark(self, mark: _Mark | None) -> Position:
        if mark is None:
            return Position(self._filename, 1, 1)
        return _new_tuple(Position, (self._filename, mark.line + 1, mark.column + 1))

    def _read_events(self) -> None:
        get_event = self._loader.get_event
        stack, filename, plain_tags, quoted_tags = (
            self._stack, self._filename, self._plain_tags, self._quoted_tags)
        new_tuple = _new_tuple  # a local: read for every scalar
        while (event := get_event()) is not None:
            if isinstance(event, yaml.ScalarEvent):
                # Most scalars are text already resolved once, in a collection, without a
                # tag or an anchor: `_scalar` and `_add` for that case, inline (the same
                # checks in the same order; nothing to refuse but the node count).
                text = event.value
                mark = event.start_mark
                if event.anchor is not None or event.tag is not None or not stack \
                        or mark is None or (plain_tags if event.implicit[0] else quoted_tags
                                            ).get(text) not in _TEXT_TAGS:
                    self._add(self._scalar(event), anchor=event.anchor)
                    continue
                position = new_tuple(Position, (filename, mark.line + 1, mark.column + 1))
                self._nodes += 1
                if self._nodes > MAX_YAML_NODES:
                    self._count(0, position)
                node = new_tuple(ScalarNode, (position, text, text))
                frame = stack[-1]
                key = frame.pending_key
                if not frame.is_mapping:
                    frame.items.append(node)
                    frame.size += 1
                elif key is None:
                    frame.pending_key = node
                elif frame.merge_pending or key.text in frame.seen:
                    self._add(node, anchor=None)
                else:
                    frame.pending_key = None
                    entry = frame.seen[key.text] = new_tuple(Entry, (key, node, key.text))
                    frame.entries.append(entry)
                    frame.size += 2  # the key and the value
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                self._start(event)
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                self._end()
            elif isinstance(event, yaml.AliasEvent):
                self._add(self._alias(event), anchor=None)
            elif isinstance(event, yaml.DocumentStartEvent):
                self._document(event)

    def _document(self, event: yaml.DocumentStartEvent) -> None:
        self._documents += 1
        if self._documents > 1:
            raise _refuse(self._mark(event.start_mark),
                          "the file holds more than one YAML document",
                          hint="a spec is one document; remove the second `---`")

    def _count(self, size: int, position: Position) -> None:
        self._nodes += size
        if self._nodes > MAX_YAML_NODES:
            raise _refuse(position,
                          f"the spec has more than {MAX_YAML_NODES} YAML nodes "
                          "(counting every use of an alias in full)",
                          hint="this looks like an alias bomb or a generated file")

    def _check_depth(self, height: int, position: Position) -> None:
        if len(self._stack) + height > MAX_NESTING_DEPTH:
            raise _refuse(position,
                          f"the spec nests deeper than {MAX_NESTING_DEPTH} levels")

    def _tag_problem(self, tag: str, position: Position) -> None:
        raise _refuse(position, f"the YAML tag `{tag}` is not supported in a spec",
                      hint="remove the tag; quote the value if it must stay text")

    def _scalar(self, event: yaml.ScalarEvent) -> ScalarNode:
        position = self._mark(event.start_mark)
        self._count(1, position)
        tag = event.tag
        text: str = event.value
        if tag is None or tag == "!":
            # Plain or quoted, the tag depends on nothing but the text (SafeLoader has no
            # path resolvers).
            tags = self._plain_tags if event.implicit[0] else self._quoted_tags
            found = tags.get(text)
            if found is None:
                found = tags[text] = self._loader.resolve(yaml.ScalarNode, text, event.implicit)
            tag = found
        value: ScalarValue
        if tag in _TEXT_TAGS:
            value = text
        elif tag in _CONSTRUCTED_TAGS or tag == _FLOAT:
            value = self._value(tag, text, position)
        elif tag == _MERGE:
            value = text  # the key `<<`; handled by the mapping it sits in
        else:
            self._tag_problem(tag, position)
        node = _new_tuple(ScalarNode, (position, value, text))
        if tag == _MERGE and self._stack and self._stack[-1].is_mapping \
                and self._stack[-1].pending_key is None:
            self._stack[-1].merge_pending = True
        return node

    def _value(self, tag: str, text: str, position: Position) -> ScalarValue:
        key = (tag, text)
        if key in self._values:
            return self._values[key]
        try:
            value: ScalarValue = self._constructor.construct_object(yaml.ScalarNode(tag, text))
        except (ValueError, yaml.YAMLError):
            # Python refuses to parse ints of more than 4300 digits, for the same reason.
            raise _refuse(position, "this number is too long or malformed",
                          hint="quote it if it is meant as text") from None
        if tag in _CONSTRUCTED_TAGS:  # not floats: each NaN stays its own object
            self._values[key] = value
        return value

    def _alias(self, event: yaml.AliasEvent) -> Node:
        position = self._mark(event.start_mark)
        anchor = event.anchor or ""
        if anchor in self._open_anchors:
            raise _refuse(position, f"the alias `*{anchor}` refers to a node that contains it")
        node = self._anchors.get(anchor)
        if node is None:
            raise _refuse(position, f"the alias `*{anchor}` has no anchor `&{anchor}` before it")
        self._count(node.size, position)
        self._check_depth(node.height, position)
        return node

    def _start(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        mark = event.start_mark
        position = self._mark(None) if mark is None else \
            _new_tuple(Position, (self._filename, mark.line + 1, mark.column + 1))
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            self._count(0, position)
        is_mapping = type(event) is yaml.MappingStartEvent
        tag = event.tag
        if tag is not None and tag not in ("!", _MAP if is_mapping else _SEQ):
            self._tag_problem(tag, position)
        if len(self._stack) >= MAX_NESTING_DEPTH:
            self._check_depth(1, position)
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        self._stack.append(_Frame(position, is_mapping, event.anchor))

    def _end(self) -> None:
        stack = self._stack
        frame = stack.pop()
        node: Node
        if frame.is_mapping:
            entries = frame.entries
            size, height = frame.size, frame.height
            if frame.merges:
                merged = self._merged(frame)
                entries += merged
                size += sum(e.key.size + e.value.size for e in merged)
                height = max(height, *(e.value.height for e in merged), 0)
            node = MappingNode(frame.position, tuple(entries), 1 + size, 1 + height,
                               MappingProxyType(frame.seen))
        else:
            node = SequenceNode(frame.position, tuple(frame.items), 1 + frame.size,
                                1 + frame.height)
        if frame.anchor is not None:
            self._open_anchors.discard(frame.anchor)
            self._add(node, anchor=frame.anchor)
            return
        # `_add` for a collection without an anchor, as most are: an item, or a value after
        # its key (a key is never a collection: `_add` refuses that).
        parent = stack[-1] if stack else None
        if parent is None or not parent.is_mapping:
            if parent is None:
                self._root = node
                return
            parent.items.append(node)
        else:
            key = parent.pending_key
            if key is None or parent.merge_pending or key.text in parent.seen:
                self._add(node, anchor=None)
                return
            parent.pending_key = None
            entry = parent.seen[key.text] = _new_tuple(Entry, (key, node, key.text))
            parent.entries.append(entry)
            parent.size += 1
        parent.size += node.size
        parent.height = max(parent.height, node.height)

    def _merged(self, frame: _Frame) -> list[Entry]:
        """Entries that `<<: *defaults` brings in: keys written in the mapping win."""
        taken = frame.seen
        merged: list[Entry] = []
        for key, value in frame.merges:
            sources = value.items if isinstance(value, SequenceNode) else (value,)
            for source in sources:
                if not isinstance(source, MappingNode):
                    self._error(key.position, "`<<` merges only mappings (or a list of them)")
                    continue
                for entry in source.entries:
                    if entry.name not in taken:
                        taken[entry.name] = entry
                        merged.append(entry)
        return merged

    def _add(self, node: Node, *, anchor: str | None) -> None:
        if anchor is not None:
            self._anchors[anchor] = node
        if not self._stack:
            self._root = node
            return
        frame = self._stack[-1]
        if not frame.is_mapping:
            frame.items.append(node)
            frame.size += node.size
            frame.height = max(frame.height, node.height)
            return
        key = frame.pending_key
        if key is None:
            if type(node) is not ScalarNode:
                raise _refuse(node.position, f"a mapping key must be plain text, not a {node.kind}")
            frame.pending_key = node
            return
        frame.pending_key = None
        if frame.merge_pending:
            frame.merge_pending = False
            frame.merges.append((key, node))
            return
        text = key.text
        first = frame.seen.get(text)
        if first is not None:
            self._error(key.position,
                        f"duplicate key `{text}` (first at line {first.key.position.line})",
                        hint="YAML would silently keep only the last one")
            return
        entry = frame.seen[text] = _new_tuple(Entry, (key, node, text))
        frame.entries.append(entry)
        frame.size += key.size + node.size
        frame.height = max(frame.height, node.height)

    def _error(self, position: Position, message: str, *, hint: str | None = None) -> None:
        self._problems.append(
            Problem(severity=Severity.ERROR, message=message, position=position, hint=hint)
        )
