"""A job as the linter reads it: the `Job`, and the nodes the cross-job checks point at.

Its own module so that the linter (which fills it) and `dependencies` (which checks `needs`
across jobs) both import it, and neither imports the other.
"""

from __future__ import annotations

from msgspec import Struct, field

from pipelines.parsing import Node, ScalarNode
from pipelines.problems import Position
from pipelines.spec import Job


class JobSource(Struct):
    """A job with the positions the cross-job checks point at."""

    job: Job
    key: ScalarNode
    needs: tuple[tuple[str, Position], ...] = ()
    needs_node: Node | None = None
    placeholders: list[tuple[str, Node, str]] = field(default_factory=list)
    has_matrix: bool = False
