"""Typed reads from the node tree that record a problem instead of raising.

Every reader returns `None` (or a safe default) when the node has the wrong shape, after
adding an error that names the dotted path and points at the offending node. The linter can
then carry on and report everything that is wrong in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pipelines.parsing import MappingNode, Node, ScalarNode, SequenceNode
from pipelines.problems import Position, Problem, Severity

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


class Collector:
    """The problems found so far, in the order found (`SpecError` sorts them)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    @property
    def has_errors(self) -> bool:
        return any(p.severity == Severity.ERROR for p in self.problems)

    def error(self, where: Node | Position, path: str, message: str, *,
              hint: str | None = None) -> None:
        self._add(Severity.ERROR, where, path, message, hint)

    def warn(self, where: Node | Position, path: str, message: str, *,
             hint: str | None = None) -> None:
        self._add(Severity.WARNING, where, path, message, hint)

    def _add(self, severity: Severity, where: Node | Position, path: str, message: str,
             hint: str | None) -> None:
        position = where if isinstance(where, Position) else where.position
        self.problems.append(
            Problem(severity=severity, message=message, position=position, path=path, hint=hint)
        )


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def suggestion(word: str, choices: Collection[str]) -> str | None:
    """"did you mean `steps`?" for a near miss, else None."""
    import difflib  # noqa: PLC0415 (only a spec with a mistake pays for it: 2.5 ms to import)

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _got(node: Node) -> str:
    return f"got a {node.kind}" if not isinstance(node, ScalarNode) or node.value is not None \
        else "got nothing (null)"


def mapping(out: Collector, node: Node, path: str, *,
            allowed: Collection[str] | None = None) -> MappingNode | None:
    """The node as a mapping; with `allowed`, unknown keys are reported (with a hint)."""
    if not isinstance(node, MappingNode):
        out.error(node, path, f"`{path}` must be a mapping, {_got(node)}")
        return None
    if allowed is not None:
        for entry in node.entries:
            if entry.name not in allowed:
                where = f" in `{path}`" if path else ""
                out.error(entry.key, join(path, entry.name),
                          f"unknown key `{entry.name}`{where}",
                          hint=suggestion(entry.name, allowed)
                          or f"allowed keys: {', '.join(sorted(allowed))}")
    return node


def sequence(out: Collector, node: Node, path: str) -> SequenceNode | None:
    if not isinstance(node, SequenceNode):
        out.error(node, path, f"`{path}` must be a list, {_got(node)}")
        return None
    return node


def string(out: Collector, node: Node, path: str, *, allow_empty: bool = False) -> str | None:
    """A text value. Numbers and booleans are refused: `image: 3.10` is always a mistake."""
    if not isinstance(node, ScalarNode) or not isinstance(node.value, str):
        out.error(node, path, f"`{path}` must be a string, {_got(node)}",
                  hint="quote it" if isinstance(node, ScalarNode) and node.value is not None
                  else None)
        return None
    if not allow_empty and not node.value.strip():
        out.error(node, path, f"`{path}` must not be empty")
        return None
    return node.value


def scalar_text(out: Collector, node: Node, path: str) -> str | None:
    """Any scalar but null, as written: `PORT: 5432` and `PYTHON: 3.10` keep their text."""
    if not isinstance(node, ScalarNode) or node.value is None:
        out.error(node, path, f"`{path}` must be a string, number or boolean, {_got(node)}",
                  hint='use "" for an empty value' if isinstance(node, ScalarNode) else None)
        return None
    return node.text


def boolean(out: Collector, node: Node, path: str) -> bool | None:
    if not isinstance(node, ScalarNode) or not isinstance(node.value, bool):
        out.error(node, path, f"`{path}` must be true or false, {_got(node)}")
        return None
    return node.value


def integer(out: Collector, node: Node, path: str, *, minimum: int,
            maximum: int | None = None) -> int | None:
    if (not isinstance(node, ScalarNode) or isinstance(node.value, bool)
            or not isinstance(node.value, int)):
        out.error(node, path, f"`{path}` must be a whole number, {_got(node)}")
        return None
    value = node.value
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None \
            else f"at least {minimum}"
        out.error(node, path, f"`{path}` is {value}; it must be {bounds}")
        return None
    return value


def strings(out: Collector, node: Node, path: str) -> tuple[str, ...] | None:
    """One string or a list of them (`needs: lint` or `needs: [lint, build]`)."""
    if isinstance(node, ScalarNode):
        value = string(out, node, path)
        return None if value is None else (value,)
    items = sequence(out, node, path)
    if items is None:
        return None
    values = [string(out, item, join(path, index)) for index, item in enumerate(items.items)]
    if any(value is None for value in values):
        return None
    return tuple(value for value in values if value is not None)


def duration(out: Collector, node: Node, path: str, *, maximum: int) -> int | None:
    """`90` (seconds), `"90s"`, `"10m"`, `"1h30m"` -> whole seconds, within (0, maximum]."""
    seconds: int | None = None
    if isinstance(node, ScalarNode) and isinstance(node.value, int) \
            and not isinstance(node.value, bool):
        seconds = node.value
    elif isinstance(node, ScalarNode) and isinstance(node.value, str):
        match = _DURATION.fullmatch(node.value.strip().lower())
        if match and any(match.groups()):
            hours, minutes, secs = (int(group or 0) for group in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if seconds is None:
        out.error(node, path, f"`{path}` must be a duration like `90s`, `10m` or `1h30m`, "
                              "or a number of seconds", hint=None if not isinstance(
                                  node, ScalarNode) else f"got `{node.text}`")
        return None
    if not 0 < seconds <= maximum:
        out.error(node, path,
                  f"`{path}` is {seconds}s; it must be more than 0 and at most {maximum}s "
                  f"({maximum // 3600}h)")
        return None
    return seconds
