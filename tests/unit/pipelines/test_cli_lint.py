"""`ferry lint` and `ferry schema`, as a developer runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ci.cli import main

SPECS = Path(__file__).parent / "specs"
HELLO = Path(__file__).parents[3] / "examples" / "hello" / ".ci.yaml"


def test_a_clean_spec_prints_one_ok_line_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(HELLO)]) == 0
    assert capsys.readouterr().out == "ok: 1 file checked: 0 errors, 0 warnings\n"


def test_errors_print_file_line_column_and_hint_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / ".ci.yaml"
    spec.write_text("jobs:\n  test:\n    step: [pytest]\n")
    assert main(["lint", str(spec)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{spec}:2:3: error: job `test` has no `steps` (add `steps:` with at least one `run:`)",
        f"{spec}:3:5: error: unknown key `step` in `jobs.test` (did you mean `steps`?)",
        "1 file checked: 2 errors, 0 warnings",
    ]


def test_warnings_are_printed_but_do_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    path = SPECS / "invalid" / "warnings_only.yaml"
    assert main(["lint", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "ok: 1 file checked: 0 errors, 3 warnings"
    assert out[0].startswith(f"{path}:3:12: warning: image `python` is not pinned")


def test_the_default_file_is_ci_yaml_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lint"]) == 1
    assert capsys.readouterr().out.startswith(".ci.yaml: error: cannot read the file")
    shutil.copy(HELLO, tmp_path / ".ci.yaml")
    assert main(["lint"]) == 0


def test_several_files_are_all_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(HELLO), str(SPECS / "invalid" / "structure.yaml")]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "2 files checked: 1 error, 0 warnings"


def test_binary_garbage_is_a_lint_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "garbage.yaml"
    spec.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    assert main(["lint", str(spec)]) == 1
    assert "error: the file is not valid UTF-8" in capsys.readouterr().out


def test_schema_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_the_installed_command_lints_a_file(tmp_path: Path) -> None:
    spec = tmp_path / ".ci.yaml"
    spec.write_text("steps:\n  - run: make\n    nmae: build\n")
    # The console script `pip install` made, next to this interpreter when not on PATH.
    ferry = shutil.which("ferry") or str(Path(sys.executable).with_name("ferry"))
    result = subprocess.run(
        [ferry, "lint", ".ci.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        ".ci.yaml:3:5: error: unknown key `nmae` in `steps[0]` (did you mean `name`?)")
