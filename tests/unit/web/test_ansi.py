"""ANSI colours as escaped HTML spans; every other escape dropped; markup never passes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from webhooks.web.ansi import Colours, plain


def test_colours_become_spans_and_carry_over_lines() -> None:
    colours = Colours()
    assert colours.line("\x1b[31mred\x1b[0m plain") == '<span class="fg-red">red</span> plain'
    assert colours.line("\x1b[1;92mbold green") == (
        '<span class="b fg-bright-green">bold green</span>')
    assert colours.line("still\x1b[39m") == '<span class="b fg-bright-green">still</span>'
    assert colours.line("x\x1b[m") == '<span class="b">x</span>'
    assert colours.line("y") == "y"


def test_256_and_rgb_colours_are_inline_styles() -> None:
    colours = Colours()
    assert colours.line("\x1b[38;5;196mA\x1b[0m") == '<span style="color:#ff0000">A</span>'
    assert colours.line("\x1b[48;2;1;2;3mB\x1b[0m") == '<span style="background:#010203">B</span>'
    assert colours.line("\x1b[38;5;244mC\x1b[0m") == '<span style="color:#808080">C</span>'
    assert colours.line("\x1b[38;5mD\x1b[0m") == "D"  # malformed: ignored


def test_other_escapes_and_overwritten_progress_are_dropped() -> None:
    colours = Colours()
    assert colours.line("\x1b]0;title\x07\x1b[2Kdone\x1b[1A") == "done"
    assert colours.line("10%\r50%\r100%") == "100%"
    assert colours.line("bell\x07 back\x08") == "bell back"
    assert plain("\x1b[31m<b>\x1b[0m") == "<b>"


def test_markup_is_escaped() -> None:
    assert Colours().line('<script>alert("x")</script> & \x1b[31m<img src=x>') == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
        '<span class="fg-red">&lt;img src=x&gt;</span>')


@given(st.text(alphabet=st.sampled_from(["<", ">", "&", '"', "'", "\x1b", "[", "]", ";",
                                         "3", "8", "m", "1", "a", "\r", "\x07", "5", "2"]),
               max_size=60))
def test_no_text_ever_opens_a_tag_of_its_own(text: str) -> None:
    html = Colours().line(text)
    stripped = html.replace("</span>", "")
    for tag in ("<span", ):
        while tag in stripped:
            start = stripped.index(tag)
            end = stripped.index(">", start)
            opened = stripped[start:end + 1]
            assert opened.startswith(('<span class="', '<span style="')), html
            assert "<" not in opened[1:] and "'" not in opened, html
            stripped = stripped[:start] + stripped[end + 1:]
    assert "<" not in stripped and ">" not in stripped, html
    assert html.count("<span") == html.count("</span>")


def test_lines_not_shown_still_carry_their_colours() -> None:
    colours = Colours()
    colours.advance("\x1b[33mwarning starts")
    colours.advance("no escape here")
    assert colours.line("still yellow") == '<span class="fg-yellow">still yellow</span>'
