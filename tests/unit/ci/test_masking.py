"""The one masking rule: every printed form of a secret, in whole texts and in streams."""

from __future__ import annotations

import base64
import itertools
import urllib.parse
from collections.abc import Iterable, Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from ci.logs import Redactor
from ci.masking import MASK, Masker

TOKEN = "ghp_S3cr3tT0kenValue"



def mask_chunks(masker: Masker, chunks: Iterable[str]) -> Iterator[str]:
    """`chunks` through one stream, as the archive and the live view feed a step's log."""
    stream = masker.stream()
    for chunk in chunks:
        masked = stream.feed(chunk)
        if masked:
            yield masked
    rest = stream.finish()
    if rest:
        yield rest

def test_the_value_and_its_stripped_form_are_masked() -> None:
    masker = Masker([TOKEN + "\n"])
    assert masker.mask(f"token={TOKEN} done") == f"token={MASK} done"


def test_base64_forms_are_masked_as_echo_and_base64_print_them() -> None:
    masker = Masker([TOKEN])
    echoed = base64.b64encode(TOKEN.encode() + b"\n").decode()
    printf = base64.b64encode(TOKEN.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=")
    for text in (echoed, printf, urlsafe):
        assert TOKEN not in masker.mask(text)
        assert masker.mask(f"x {text} y") == f"x {MASK} y"


def test_url_encoded_forms_are_masked() -> None:
    secret = "p@ss word/with:colons"
    masker = Masker([secret])
    for text in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        url = f"https://ferry:{text}@git.example/repo.git"
        assert masker.mask(url) == f"https://ferry:{MASK}@git.example/repo.git"


def test_each_line_of_a_multi_line_secret_is_masked_wherever_it_appears() -> None:
    key = ("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7\n"
           "-----END KEY-----")
    masker = Masker([key])
    printed = "step 1\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nstep 2\nAASCBKcwggSjAgEAAoIBAQC7\n"
    masked = masker.mask(printed)
    assert "MIIEvQ" not in masked and "AASCBK" not in masked
    assert masked.splitlines() == ["step 1", MASK, "step 2", MASK]


def test_longest_first_so_a_secret_containing_another_is_masked_whole() -> None:
    masker = Masker(["hunter2", "hunter2-long"])
    assert masker.mask("hunter2-long hunter2") == f"{MASK} {MASK}"


def test_short_values_are_not_masked_since_they_would_blank_ordinary_words() -> None:
    assert Masker(["ci", "abc"]).mask("ci abc on") == "ci abc on"


def test_ferrys_own_logs_follow_the_same_rule() -> None:
    redactor = Redactor([TOKEN])
    echoed = base64.b64encode(TOKEN.encode() + b"\n").decode()
    assert redactor.mask(f"{TOKEN} {echoed}") == f"{MASK} {MASK}"


def test_a_secret_cut_by_a_chunk_boundary_is_masked() -> None:
    masker = Masker([TOKEN])
    chunks = ["before ghp_S3cr", "3tT0ken", "Value after"]
    assert "".join(mask_chunks(masker, chunks)) == f"before {MASK} after"


def test_a_stream_holds_back_only_what_could_begin_a_secret() -> None:
    # A live view shows a quiet step's last line at once: only a possible secret's start waits.
    stream = Masker([TOKEN]).stream(eager=True)
    assert stream.feed("step done\n") == "step done\n"
    assert stream.feed("value ghp_S3") == "value "
    assert stream.feed("x") == "ghp_S3x"
    assert stream.finish() == ""


def test_a_stream_with_nothing_to_mask_passes_through() -> None:
    assert list(mask_chunks(Masker(), ["a", "b"])) == ["a", "b"]


secrets_strategy = st.lists(st.text(alphabet="ab\n=%x", min_size=4, max_size=9), max_size=4)


@settings(max_examples=300, deadline=None)
@given(secrets=secrets_strategy, text=st.text(alphabet="ab\n=%xy", max_size=80),
       cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_streaming_masks_exactly_as_masking_the_whole_text(
    secrets: list[str], text: str, cuts: list[int]
) -> None:
    masker = Masker(secrets)
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    chunks = [text[start:end] for start, end in itertools.pairwise(bounds)]
    assert "".join(mask_chunks(masker, chunks)) == masker.mask(text)
    eager = masker.stream(eager=True)
    given = ""
    for chunk in chunks:
        given += eager.feed(chunk)
        assert masker.mask(text).startswith(given)  # never a byte the whole would not give
    assert given + eager.finish() == masker.mask(text)
