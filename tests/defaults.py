"""Component settings as the servers build them from `ci.settings`' defaults (the one home of
every default), for tests that need a `ControllerSettings` or an `ArchiveSettings` without a
config file; `changes` replace fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ci.archive.configured import ArchiveSettings, archive_settings
from ci.controller.settings import ControllerSettings, controller_settings
from ci.settings import ArchiveGroupSettings, Settings


def controller_defaults(**changes: Any) -> ControllerSettings:
    return dataclasses.replace(controller_settings(Settings()), **changes)


def archive_defaults(directory: Path, **changes: Any) -> ArchiveSettings:
    archive = archive_settings(ArchiveGroupSettings(store="directory", directory=directory))
    assert archive is not None
    return dataclasses.replace(archive, **changes)
