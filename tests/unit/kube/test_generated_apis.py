"""Ferry's components never import the Kubernetes client's `CoreV1Api`: that one generated
class imports the models of the whole core API with it (254 modules, about 21 MB of a
process's memory and most of a second of its start on a slow machine). Secrets and pod logs
are read through `ci.kube.plain` instead. Read off the source's imports, lazy ones too."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HEAVY_APIS = frozenset({"CoreV1Api"})


def _uses(path: Path, root: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kubernetes"):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        found += [f"{path.relative_to(root)}:{node.lineno} {name}"
                  for name in names if name in HEAVY_APIS]
    return found


def test_no_component_imports_the_core_api_class() -> None:
    sources = sorted((REPO / "ci").rglob("*.py")) + sorted((REPO / "webhooks").rglob("*.py"))
    assert len(sources) > 100  # the walk found the packages
    uses = [use for path in sources for use in _uses(path)]
    assert not uses, f"CoreV1Api imported (use ci.kube.plain): {uses}"


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from kubernetes.client import CoreV1Api\n"
                      "def g(client):\n    return kubernetes.client.CoreV1Api(client)\n")
    assert _uses(module, tmp_path) == ["probe.py:2 CoreV1Api", "probe.py:4 CoreV1Api"]
