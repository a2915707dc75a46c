"""The docs show real files: a stale example in the docs is a bug."""

from pathlib import Path

import yaml

from pipelines.linting import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_spec_doc_opens_with_the_hello_example_as_it_is() -> None:
    text = (ROOT / "docs" / "spec.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    example = (ROOT / "examples" / "hello" / ".ci.yaml").read_text()
    assert yaml.safe_load(block) == yaml.safe_load(example)
    load_spec(block, filename="docs/spec.md")  # and it is valid


def test_readme_spec_example_is_valid() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    load_spec(block, filename="README.md")
