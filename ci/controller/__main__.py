"""`python -m ci.controller ...` is `ferry controller ...`."""

from __future__ import annotations

import sys

from ci.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["controller", *sys.argv[1:]]))
