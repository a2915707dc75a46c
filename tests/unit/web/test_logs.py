"""A log's end, its line numbers and its failing line."""

from __future__ import annotations

from webhooks.web.logs import (
    ARCHIVED,
    EXPIRED,
    LIVE,
    LOST,
    failing_index,
    log_state,
    read_text,
    render_lines,
)


def test_a_long_log_keeps_its_end_and_its_line_numbers() -> None:
    chunks = [f"line {n}\n".encode() for n in range(1, 10_001)]
    text = read_text(chunks, max_bytes=1000)
    assert text.skipped_lines > 9000
    lines = render_lines(text.text, first_number=text.skipped_lines + 1)
    assert lines[-1].number == 10_000 and lines[-1].html == "line 10000"
    assert lines[0].html == f"line {lines[0].number}"
    assert text.offset == sum(len(chunk) for chunk in chunks) == text.complete_offset


def test_the_partial_last_line_is_where_a_live_tail_goes_on() -> None:
    text = read_text([b"one\ntw", "ü\nthr".encode()])
    assert text.text == "one\ntwü\nthr" and text.offset == 12 and text.complete_offset == 9


def test_the_failing_line_is_the_last_that_says_so() -> None:
    lines = ["running", "FAILED tests/test_x.py::test_y - assert 1 == 2", "1 failed",
             "summary", ""]
    assert failing_index(lines) == 2
    assert failing_index(["compiling", "done", "  "]) == 1
    assert failing_index([]) is None
    rendered = render_lines("a\nerror: b\nc\n", failed=True)
    assert [line.failing for line in rendered] == [False, True, False]


def test_log_states() -> None:
    assert log_state(lost="pod gone", archived_size=None, running=False, empty=True) == LOST
    assert log_state(lost=None, archived_size=10, running=False, empty=False) == ARCHIVED
    assert log_state(lost=None, archived_size=0, running=False, empty=True) == ARCHIVED
    assert log_state(lost=None, archived_size=10, running=False, empty=True) == EXPIRED
    assert log_state(lost=None, archived_size=None, running=True, empty=True) == LIVE
    assert log_state(lost=None, archived_size=None, running=False, empty=True) == EXPIRED
    assert log_state(lost=None, archived_size=None, running=False, empty=False) == LIVE


def test_only_the_last_lines_are_rendered_with_their_colours() -> None:
    text = "\x1b[31mred from here\n" + "".join(f"{n}\n" for n in range(2, 101))
    lines = render_lines(text, failed=True, last=3)
    assert [line.number for line in lines] == [98, 99, 100]
    assert lines[0].html == '<span class="fg-red">98</span>' and lines[-1].failing
