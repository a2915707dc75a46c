"""The screenshots of docs/ui.md, made by the browser tests of the public pages on the real
cluster (they take them as they go): `python3 -m tests.browser.screenshots docs/ui`.

Needs what those tests need: the test cluster built (tests/cluster/build, or
FERRY_CLUSTER_BIN) and chromium (tests/browser/install-chromium)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser.screens import SCREENSHOTS_ENV

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests/browser/test_public_pages.py"
PICTURES = ("run-list", "run", "failing-job-log", "live-tail")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m tests.browser.screenshots DIRECTORY", file=sys.stderr)
        return 2
    directory = Path(argv[0]).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, SCREENSHOTS_ENV: str(directory)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           MODULE], cwd=REPO, env=environment, check=False)
    missing = [name for name in PICTURES if not (directory / f"{name}.png").is_file()]
    if done.returncode != 0 or missing:
        print(f"screenshots: pytest exited {done.returncode}; missing {missing}",
              file=sys.stderr)
        return 1
    for name in PICTURES:
        print(directory / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
