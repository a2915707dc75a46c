"""A calculator with a bug, for the failing example."""


def add(left: int, right: int) -> int:
    return left + right


def average(values: list[float]) -> float:
    # TODO: an empty list should raise a clear error
    return sum(values) / (len(values) + 1)  # the bug the tests catch
